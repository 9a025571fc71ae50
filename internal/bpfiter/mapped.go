package bpfiter

// The mapped-files check. A scan narrowed to a few filesystems (lsof
// MOUNT) otherwise walks every mapping of every process to find the few
// that map one of their files, and on 6.18 each step of that walk takes
// the mapping's own lock (~0.4 µs a mapping, most of lsof MOUNT's time).
// But a file mapped anywhere has every mapping of it in its
// address_space's i_mmap tree: a filesystem whose in-core inodes all
// have an empty tree is mapped by no process, and the walk can be
// skipped. The program runs once, on the scanner itself (a task iterator
// narrowed to its thread, Linux 6.1+), reaches each superblock through a
// descriptor the scanner holds on it, and walks its inode list in a loop
// bounded by bpf_iter_num (6.4+). Any doubt answers "maybe mapped" and
// the full walk runs: a device node (its mappings live in the device's
// mapping, not the node's), an inode list that changed under the walk,
// more inodes than the bound, another superblock than asked, a failed
// read.

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// mappedLimit bounds the inodes looked at per filesystem: ~4 reads of
// kernel memory each, far less than the walk it may spare; a filesystem
// with more in-core inodes (a busy root) is walked.
const mappedLimit = 1 << 14

// Verdicts of the check, per filesystem.
const (
	verdictUnmapped   = 0 // every inode looked at, none mapped
	verdictMapped     = 1
	verdictDevice     = 2 // a device node: not provable this way
	verdictTooMany    = 3
	verdictChanged    = 4 // the list changed under the walk
	verdictUnreadable = 5 // a failed read or another superblock
)

// A check record: magic, the filesystem's index in devs, its verdict,
// the inodes looked at.
const (
	mappedRecLen     = 16
	mappedMagicValue = 0x4d4d5752 // "RWMM"

	mappedRec  = -32 // the record
	mappedTmp  = -16 // the slot probe reads land in
	mappedIter = -8  // struct bpf_iter_num
)

// mappedProgram builds the task program that answers, for each of devs
// (reached through the scanner's descriptor fds[i]), whether a file of
// it is memory-mapped.
func mappedProgram(s kernelBTF, devs []uint64, fds []int32) ([]byte, error) {
	f := &fields{spec: s}
	var (
		iterNew = f.kfunc("bpf_iter_num_new")
		next    = f.kfunc("bpf_iter_num_next")
		destroy = f.kfunc("bpf_iter_num_destroy")
		sbList  = int32(f.off("inode", "i_sb_list"))
	)
	rec := func(o int16) int16 { return mappedRec + o }
	prog := []insn{
		movReg(r6, r1),
		ldx(sizeDW, r7, r6, ctxTask),
		jmpImm(jmpJEQ, r7, 0, "out"),
	}
	for i, d := range devs {
		p := fmt.Sprintf("d%d_", i)
		kdev := int32(uint32(unix.Major(d))<<20 | uint32(unix.Minor(d))&(1<<20-1))
		prog = append(prog,
			st(sizeW, fp, rec(0), mappedMagicValue),
			st(sizeW, fp, rec(4), int32(i)),
			st(sizeW, fp, rec(8), verdictUnreadable),
			st(sizeW, fp, rec(12), 0),
		)
		// The descriptor's file: task->files->fdt->fd[n], every step a
		// plain read: a typed load from the trusted task would have the
		// verifier search the kernel's BTF by name for each (~0.5 ms).
		prog = append(prog, probeRead(r1, r7, int32(f.off("task_struct", "files")), sizeDW, p+"emit")...)
		prog = append(prog, probeRead(r1, r1, int32(f.off("files_struct", "fdt")), sizeDW, p+"emit")...)
		prog = append(prog, probeRead(r1, r1, int32(f.off("fdtable", "fd")), sizeDW, p+"emit")...)
		prog = append(prog, probeRead(r1, r1, 8*fds[i], sizeDW, p+"emit")...)
		prog = append(prog, probeRead(r1, r1, int32(f.off("file", "f_inode")), sizeDW, p+"emit")...)
		prog = append(prog, probeRead(r8, r1, int32(f.off("inode", "i_sb")), sizeDW, p+"emit")...)
		prog = append(prog, probeRead(r1, r8, int32(f.off("super_block", "s_dev")), sizeW, p+"emit")...)
		prog = append(prog,
			insn{code: clsJMP32 | jmpJNE | srcK, dst: r1, imm: kdev, target: p + "emit"},
			addImm(r8, int32(f.off("super_block", "s_inodes"))), // the list's head
		)
		prog = append(prog, probeRead(r9, r8, int32(f.off("list_head", "next")), sizeDW, p+"emit")...)
		prog = append(prog,
			st(sizeW, fp, rec(8), verdictTooMany),
			movReg(r1, fp), addImm(r1, mappedIter),
			movImm(r2, 0),
			movImm(r3, mappedLimit),
			kcall(iterNew),
			movReg(r1, fp).at(p+"loop"), addImm(r1, mappedIter),
			kcall(next),
			jmpImm(jmpJEQ, r0, 0, p+"end"),
			insn{code: clsJMP | jmpJEQ | srcX, dst: r9, src: r8, target: p + "unmapped"},
		)
		// r9 is the inode's i_sb_list.
		prog = append(prog, probeRead(r1, r9, int32(f.off("inode", "i_mode"))-sbList, sizeH, p+"fault")...)
		prog = append(prog,
			insn{code: clsALU64 | aluAND | srcK, dst: r1, imm: unix.S_IFMT},
			jmpImm(jmpJEQ, r1, unix.S_IFCHR, p+"device"),
			jmpImm(jmpJEQ, r1, unix.S_IFBLK, p+"device"),
		)
		prog = append(prog, probeRead(r1, r9, int32(f.off("inode", "i_mapping"))-sbList, sizeDW, p+"fault")...)
		prog = append(prog, jmpImm(jmpJEQ, r1, 0, p+"counted"))
		prog = append(prog, probeRead(r1, r1, int32(f.off("address_space", "i_mmap", "rb_root", "rb_node")), sizeDW, p+"fault")...)
		prog = append(prog,
			jmpImm(jmpJNE, r1, 0, p+"mapped"),
			ldx(sizeW, r1, fp, rec(12)).at(p+"counted"),
			addImm(r1, 1),
			stx(sizeW, fp, rec(12), r1),
		)
		prog = append(prog, probeRead(r1, r9, int32(f.off("list_head", "next")), sizeDW, p+"fault")...)
		prog = append(prog,
			// list_del_init points a removed entry at itself.
			insn{code: clsJMP | jmpJEQ | srcX, dst: r1, src: r9, target: p + "changed"},
			movReg(r9, r1),
			jmp(p+"loop"),
			st(sizeW, fp, rec(8), verdictUnmapped).at(p+"unmapped"), jmp(p+"end"),
			st(sizeW, fp, rec(8), verdictMapped).at(p+"mapped"), jmp(p+"end"),
			st(sizeW, fp, rec(8), verdictDevice).at(p+"device"), jmp(p+"end"),
			st(sizeW, fp, rec(8), verdictChanged).at(p+"changed"), jmp(p+"end"),
			st(sizeW, fp, rec(8), verdictUnreadable).at(p+"fault"),
			movReg(r1, fp).at(p+"end"), addImm(r1, mappedIter),
			kcall(destroy),
			ldx(sizeDW, r1, r6, ctxMeta).at(p+"emit"),
			ldx(sizeDW, r1, r1, 0),
			movReg(r2, fp), addImm(r2, mappedRec),
			movImm(r3, mappedRecLen),
			call(fnSeqWrite),
		)
	}
	prog = append(prog, movImm(r0, 0).at("out"), exit())
	if f.err != nil {
		return nil, f.err
	}
	return asm(prog)
}

// probeRead loads size bytes at src+off into dst through the tmp slot,
// jumping to fail when the read faults. Not inlined: the program calls
// it a dozen times, and each inlined copy costs the binary ~1 KB.
//
//go:noinline
func probeRead(dst, src uint8, off int32, size uint8, fail string) []insn {
	n := int32(8)
	switch size {
	case sizeW:
		n = 4
	case sizeH:
		n = 2
	}
	return []insn{
		movReg(r3, src), addImm(r3, off),
		movReg(r1, fp), addImm(r1, mappedTmp),
		movImm(r2, n),
		call(fnProbeReadKernel),
		jmpImm(jmpJNE, r0, 0, fail),
		ldx(size, dst, fp, mappedTmp),
	}
}

// Unmapped reports whether the kernel shows that no process maps a file
// of the filesystems devs; roots[i] is a descriptor open on a file of
// devs[i] (its mount's root, O_PATH will do). false with a nil error is
// "maybe": the caller walks the mappings; why says what the check found.
// The error wraps ErrUnsupported where the check cannot run.
func (k *Kernel) Unmapped(devs []uint64, roots []*os.File) (ok bool, why string, err error) {
	if len(devs) == 0 || len(devs) > MaxDevs || len(roots) != len(devs) {
		return false, "no filesystems to check", nil
	}
	fds := make([]int32, len(roots))
	for i, r := range roots {
		fds[i] = int32(r.Fd())
	}
	// The main thread's id is the pid; the descriptor table is every
	// thread's.
	verdicts, err := walkTask(k, "mapped", "bpf_iter_task", os.Getpid(), func(s kernelBTF) ([]byte, error) {
		return mappedProgram(s, devs, fds)
	}, readMapped)
	runtime.KeepAlive(roots) // the program reads their descriptors
	if err != nil {
		return false, "", err
	}
	if len(verdicts) != len(devs) {
		return false, fmt.Sprintf("%d answers for %d filesystems", len(verdicts), len(devs)), nil
	}
	n := 0
	for i, v := range verdicts {
		if v.verdict != verdictUnmapped {
			return false, fmt.Sprintf("%d:%d: %s", unix.Major(devs[i]), unix.Minor(devs[i]), verdictText[v.verdict]), nil
		}
		n += v.inodes
	}
	return true, fmt.Sprintf("none of %d in-core inodes is mapped", n), nil
}

var verdictText = map[uint32]string{
	verdictMapped:     "a file is mapped",
	verdictDevice:     "a device node (mapped through its device)",
	verdictTooMany:    fmt.Sprintf("more than %d in-core inodes", mappedLimit),
	verdictChanged:    "its inode list changed during the check",
	verdictUnreadable: "not readable through the descriptor",
}

type mappedVerdict struct {
	verdict uint32
	inodes  int
}

func readMapped(r io.Reader) ([]mappedVerdict, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("bpf mapped-files check: %w", err)
	}
	var out []mappedVerdict
	le := binary.LittleEndian
	for ; len(b) >= mappedRecLen; b = b[mappedRecLen:] {
		if le.Uint32(b) != mappedMagicValue || int(le.Uint32(b[4:])) != len(out) {
			return nil, fmt.Errorf("bpf mapped-files check: malformed record")
		}
		out = append(out, mappedVerdict{le.Uint32(b[8:]), int(le.Uint32(b[12:]))})
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("bpf mapped-files check: torn record")
	}
	return out, nil
}
