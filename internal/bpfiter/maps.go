package bpfiter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Map is one file-backed mapping of a process, a line of /proc/PID/maps
// that names a file.
type Map struct {
	PID        int
	Start, End uint64
	Pgoff      uint64 // in pages
	Flags      uint64 // vm_flags: VM_READ 1, VM_WRITE 2, VM_EXEC 4, VM_MAYSHARE 0x80
	MntID      int
	Dev, Ino   uint64
	Mode       uint32
	Size       int64
	Nlink      uint32
	Rdev       uint64
	// Path as the maps line names it; "" with NoPath when the record
	// has none: it did not fit, d_path failed, or the walk ran without
	// names.
	Path   string
	NoPath bool
	// Busy: the walk could not lock this process's address space; its
	// mappings are not reported (a record with PID and Busy only).
	Busy bool
}

// Map record: a header, then the path as a segment.
const (
	mapPID    = 0
	mapMntID  = 4
	mapStart  = 8
	mapEnd    = 16
	mapPgoff  = 24
	mapFlags  = 32
	mapIno    = 40
	mapSize   = 48
	mapDev    = 56
	mapMode   = 60
	mapNlink  = 64
	mapMagic  = 68
	mapRdev   = 72
	mapHeader = 80

	mapMagicValue = 0x4d535752 // "RWSM"
	mapBuf        = -512
)

// ctx of bpf_iter__task_vma: meta, task, vma.
const ctxVMA = 16

// mapsProgram builds the task_vma iterator program; with names, each
// record carries d_path of the mapped file. The header is written before
// d_path runs, so the path buffer may reuse its stack.
//
// vma->vm_file is a pointer the verifier of some kernels calls untrusted
// (6.18.44 does; 6.1 does not), and bpf_d_path takes only trusted ones:
// without names the program reads the file's identity with loads the
// verifier allows from any pointer, and the caller reads the names of
// the processes it wants from /proc/PID/maps.
func mapsProgram(s kernelBTF, devs []uint64, names bool) ([]byte, error) {
	f := &fields{spec: s}
	at := func(o int) int16 { return mapBuf + int16(o) }
	prog := []insn{
		movReg(r6, r1),
		ldx(sizeDW, r7, r6, ctxVMA),
		jmpImm(jmpJEQ, r7, 0, "out"),
		ldx(sizeDW, r8, r6, ctxTask),
		jmpImm(jmpJEQ, r8, 0, "out"),
	}
	prog = append(prog, leaderOnly(f, r8, "out")...) // threads share the leader's mm
	prog = append(prog,
		ldx(sizeDW, r9, r7, f.off("vm_area_struct", "vm_file")),
		jmpImm(jmpJEQ, r9, 0, "out"), // anonymous memory
		stx(sizeW, fp, at(mapPID), r1),
		st(sizeW, fp, at(mapMagic), mapMagicValue),
	)
	prog = append(prog, mapping(f, r7, r9, devs, "out")...)
	if names {
		prog = append(prog,
			ldx(sizeDW, r1, r6, ctxMeta),
			ldx(sizeDW, r1, r1, 0),
			movReg(r2, fp), addImm(r2, mapBuf),
			movImm(r3, mapHeader),
			call(fnSeqWrite),
			movReg(r1, r9), addImm(r1, int32(f.off("file", "f_path"))),
		)
		prog = append(prog, segment("path")...)
	} else {
		// The header and a segment that says "no path" (-1), in one write.
		prog = append(prog,
			st(sizeW, fp, at(mapHeader), -1),
			ldx(sizeDW, r1, r6, ctxMeta),
			ldx(sizeDW, r1, r1, 0),
			movReg(r2, fp), addImm(r2, mapBuf),
			movImm(r3, mapHeader+4),
			call(fnSeqWrite),
		)
	}
	prog = append(prog, movImm(r0, 0).at("out"), exit())
	if f.err != nil {
		return nil, f.err
	}
	return asm(prog)
}

// mapping emits the part of a map record a mapping fills: for the vma
// in register vma and its file in register file (not zero), the device
// filter (an unwanted file jumps to drop), the file's identity and the
// mapping's range, offset and flags. Clobbers r0-r5.
func mapping(f *fields, vma, file uint8, devs []uint64, drop string) []insn {
	at := func(o int) int16 { return mapBuf + int16(o) }
	code := loadInode(f, file)
	code = append(code, devFilter(devs, r4, false, 0, drop, "wanted")...)
	code = append(code, label("wanted", storeInode(f, file, identity{
		dev: at(mapDev), mode: at(mapMode), ino: at(mapIno), size: at(mapSize), nlink: at(mapNlink), mntID: at(mapMntID), rdev: at(mapRdev),
	}))...)
	return append(code,
		ldx(sizeDW, r1, vma, f.off("vm_area_struct", "vm_start")), stx(sizeDW, fp, at(mapStart), r1),
		ldx(sizeDW, r1, vma, f.off("vm_area_struct", "vm_end")), stx(sizeDW, fp, at(mapEnd), r1),
		ldx(sizeDW, r1, vma, f.off("vm_area_struct", "vm_pgoff")), stx(sizeDW, fp, at(mapPgoff), r1),
		ldx(sizeDW, r1, vma, f.off("vm_area_struct", "vm_flags")), stx(sizeDW, fp, at(mapFlags), r1),
	)
}

// Maps returns every file-backed mapping of every process, in pid order
// and, within a process, by address; with devs, only mappings of files
// on those filesystems (see Files).
//
// Three programs can do it; each the kernel refuses is noted and the next
// tried. "maps" names every mapping (d_path), which spares reading
// /proc/PID/maps; "vmas" (Linux 6.7+) walks each process's mappings
// itself, several times faster, without names; "maps_nameless" is the
// task_vma walk without names, for kernels that have neither. Narrowed to
// devices, few processes need names, so the fast walk goes first.
func (k *Kernel) Maps(devs []uint64) ([]Map, error) {
	type way struct {
		name, attach string
		build        func(kernelBTF) ([]byte, error)
	}
	named := way{"maps", "bpf_iter_task_vma", func(s kernelBTF) ([]byte, error) { return mapsProgram(s, devs, true) }}
	vmas := way{"vmas", "bpf_iter_task", func(s kernelBTF) ([]byte, error) { return vmasProgram(s, devs) }}
	nameless := way{"maps_nameless", "bpf_iter_task_vma", func(s kernelBTF) ([]byte, error) { return mapsProgram(s, devs, false) }}
	ways := []way{named, vmas, nameless}
	if len(devs) > 0 {
		ways = []way{vmas, named, nameless}
	}
	var err error
	for i, w := range ways {
		var maps []Map
		maps, err = walk(k, w.name, w.attach, w.build, readMaps)
		if err == nil || i == len(ways)-1 || !errors.Is(err, ErrUnsupported) {
			return maps, err
		}
		k.note(fmt.Sprintf("%v; trying the %s program", err, ways[i+1].name))
	}
	return nil, err
}

func readMaps(r io.Reader) ([]Map, error) {
	var out []Map
	st, err := readStream(r)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	for {
		h, err := st.next(mapHeader)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		magic := le.Uint32(h[mapMagic:])
		if magic != mapMagicValue && magic != mapBusyMagicValue {
			return nil, fmt.Errorf("bpf maps iterator: malformed record")
		}
		kdev := le.Uint32(h[mapDev:])
		m := Map{
			PID:   int(le.Uint32(h[mapPID:])),
			MntID: int(int32(le.Uint32(h[mapMntID:]))),
			Start: le.Uint64(h[mapStart:]),
			End:   le.Uint64(h[mapEnd:]),
			Pgoff: le.Uint64(h[mapPgoff:]),
			Flags: le.Uint64(h[mapFlags:]),
			Ino:   le.Uint64(h[mapIno:]),
			Size:  int64(le.Uint64(h[mapSize:])),
			Dev:   userDev(kdev),
			Mode:  le.Uint32(h[mapMode:]),
			Nlink: le.Uint32(h[mapNlink:]),
			Rdev:  userDev(le.Uint32(h[mapRdev:])),
		}
		path, ok, err := st.segment()
		if err != nil {
			return nil, err
		}
		m.Path, m.NoPath = path, !ok || path == ""
		if magic == mapBusyMagicValue {
			m = Map{PID: m.PID, Busy: true}
		}
		out = append(out, m)
	}
}
