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
	b := newBuilder(s, mapSyms())
	b.def("rTask", r8)
	b.def("rVMA", r7)
	b.text(mapsHead)
	b.mapping(devs, "out")
	if names {
		b.text(mapsNamed)
		b.scope = "path"
		b.text(segment)
	} else {
		// The header and a segment that says "no path" (-1), in one write.
		b.text("*(u32 *)(r10 +mapBuf+mapHeader) = -1")
		b.text(writeNameless)
	}
	b.text("out: r0 = 0\nexit")
	return b.assemble()
}

// mapSyms names the map record's layout for the maps and vmas programs;
// the mapped file is in r9.
func mapSyms() []sym {
	return []sym{
		{"mapBuf", mapBuf}, {"mapPID", mapPID}, {"mapMagic", mapMagic}, {"mapMagicValue", mapMagicValue},
		{"mapBusyMagicValue", mapBusyMagicValue}, {"mapHeader", mapHeader},
		{"mapStart", mapBuf + mapStart}, {"mapEnd", mapBuf + mapEnd}, {"mapPgoff", mapBuf + mapPgoff}, {"mapFlags", mapBuf + mapFlags},
		{"idDev", mapBuf + mapDev}, {"idMode", mapBuf + mapMode}, {"idIno", mapBuf + mapIno}, {"idSize", mapBuf + mapSize},
		{"idNlink", mapBuf + mapNlink}, {"idMntID", mapBuf + mapMntID}, {"idRdev", mapBuf + mapRdev}, {"rFile", r9},
	}
}

const mapsHead = `
	r6 = r1
	r7 = *(u64 *)(r6 +ctxVMA)
	if r7 == 0 goto out
	r8 = *(u64 *)(r6 +ctxTask)
	if r8 == 0 goto out
` + leaderOnly + ` // threads share the leader's mm
	r9 = *(u64 *)(r7 +vm_area_struct.vm_file)
	if r9 == 0 goto out // anonymous memory
	*(u32 *)(r10 +mapBuf+mapPID) = r1
	*(u32 *)(r10 +mapBuf+mapMagic) = mapMagicValue
`

// The header, then the path as a segment.
const mapsNamed = `
	r1 = *(u64 *)(r6 +ctxMeta)
	r1 = *(u64 *)(r1 +0)
	r2 = r10
	r2 += mapBuf
	r3 = mapHeader
	call bpf_seq_write
	r1 = r9
	r1 += file.f_path
`

// writeNameless writes the header and the segment after it.
const writeNameless = `
	r1 = *(u64 *)(r6 +ctxMeta)
	r1 = *(u64 *)(r1 +0)
	r2 = r10
	r2 += mapBuf
	r3 = mapHeader+4
	call bpf_seq_write
`

// mapping emits the part of a map record a mapping fills: for the vma
// in register rVMA and its file in r9 (not zero), the device filter (an
// unwanted file jumps to drop), the file's identity and the mapping's
// range, offset and flags. Clobbers r0-r5.
func (b *builder) mapping(devs []uint64, drop string) {
	b.identity(devs, false, drop)
	b.text(`
	r1 = *(u64 *)(rVMA +vm_area_struct.vm_start)
	*(u64 *)(r10 +mapStart) = r1
	r1 = *(u64 *)(rVMA +vm_area_struct.vm_end)
	*(u64 *)(r10 +mapEnd) = r1
	r1 = *(u64 *)(rVMA +vm_area_struct.vm_pgoff)
	*(u64 *)(r10 +mapPgoff) = r1
	r1 = *(u64 *)(rVMA +vm_area_struct.vm_flags)
	*(u64 *)(r10 +mapFlags) = r1
`)
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
