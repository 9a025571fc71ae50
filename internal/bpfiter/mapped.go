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
	"strconv"

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
	b := newBuilder(s, []sym{
		{"mappedRec", mappedRec}, {"mappedTmp", mappedTmp}, {"mappedIter", mappedIter},
		{"mappedMagicValue", mappedMagicValue}, {"mappedRecLen", mappedRecLen}, {"mappedLimit", mappedLimit},
		{"verdictUnmapped", verdictUnmapped}, {"verdictMapped", verdictMapped}, {"verdictDevice", verdictDevice},
		{"verdictTooMany", verdictTooMany}, {"verdictChanged", verdictChanged}, {"verdictUnreadable", verdictUnreadable},
		{"S_IFCHR", unix.S_IFCHR}, {"S_IFBLK", unix.S_IFBLK},
	})
	b.text(`
	r6 = r1
	r7 = *(u64 *)(r6 +ctxTask)
	if r7 == 0 goto out
`)
	for i, d := range devs {
		b.scope = "d" + strconv.Itoa(i)
		b.def("i", int64(i))
		b.def("fdOff", 8*int64(fds[i]))
		b.def("kdev", kernelDev(d))
		b.text(mappedCheck)
	}
	b.text("out: r0 = 0\nexit")
	return b.assemble()
}

// mappedCheck checks the filesystem i of devs, kernel dev_t kdev, whose
// descriptor is at fdOff in the descriptor array, and writes its record.
const mappedCheck = `
	*(u32 *)(r10 +mappedRec) = mappedMagicValue
	*(u32 *)(r10 +mappedRec+4) = i
	*(u32 *)(r10 +mappedRec+8) = verdictUnreadable
	*(u32 *)(r10 +mappedRec+12) = 0
	// The descriptor's file: task->files->fdt->fd[n], every step a
	// plain read: a typed load from the trusted task would have the
	// verifier search the kernel's BTF by name for each (~0.5 ms).
	r1 = probe_read(u64, r7 +task_struct.files, mappedTmp, .emit)
	r1 = probe_read(u64, r1 +files_struct.fdt, mappedTmp, .emit)
	r1 = probe_read(u64, r1 +fdtable.fd, mappedTmp, .emit)
	r1 = probe_read(u64, r1 +fdOff, mappedTmp, .emit)
	r1 = probe_read(u64, r1 +file.f_inode, mappedTmp, .emit)
	r8 = probe_read(u64, r1 +inode.i_sb, mappedTmp, .emit)
	r1 = probe_read(u32, r8 +super_block.s_dev, mappedTmp, .emit)
	if w1 != kdev goto .emit
	r8 += super_block.s_inodes // the list's head
	r9 = probe_read(u64, r8 +list_head.next, mappedTmp, .emit)
	*(u32 *)(r10 +mappedRec+8) = verdictTooMany
	r1 = r10
	r1 += mappedIter
	r2 = 0
	r3 = mappedLimit
	call kfunc bpf_iter_num_new
.loop:
	r1 = r10
	r1 += mappedIter
	call kfunc bpf_iter_num_next
	if r0 == 0 goto .end
	if r9 == r8 goto .unmapped
	// r9 is the inode's i_sb_list.
	r1 = probe_read(u16, r9 +inode.i_mode-inode.i_sb_list, mappedTmp, .fault)
	r1 &= S_IFMT
	if r1 == S_IFCHR goto .device
	if r1 == S_IFBLK goto .device
	r1 = probe_read(u64, r9 +inode.i_mapping-inode.i_sb_list, mappedTmp, .fault)
	if r1 == 0 goto .counted
	r1 = probe_read(u64, r1 +address_space.i_mmap.rb_root.rb_node, mappedTmp, .fault)
	if r1 != 0 goto .mapped
.counted:
	r1 = *(u32 *)(r10 +mappedRec+12)
	r1 += 1
	*(u32 *)(r10 +mappedRec+12) = r1
	r1 = probe_read(u64, r9 +list_head.next, mappedTmp, .fault)
	// list_del_init points a removed entry at itself.
	if r1 == r9 goto .changed
	r9 = r1
	goto .loop
.unmapped:
	*(u32 *)(r10 +mappedRec+8) = verdictUnmapped
	goto .end
.mapped:
	*(u32 *)(r10 +mappedRec+8) = verdictMapped
	goto .end
.device:
	*(u32 *)(r10 +mappedRec+8) = verdictDevice
	goto .end
.changed:
	*(u32 *)(r10 +mappedRec+8) = verdictChanged
	goto .end
.fault:
	*(u32 *)(r10 +mappedRec+8) = verdictUnreadable
.end:
	r1 = r10
	r1 += mappedIter
	call kfunc bpf_iter_num_destroy
.emit:
	r1 = *(u64 *)(r6 +ctxMeta)
	r1 = *(u64 *)(r1 +0)
	r2 = r10
	r2 += mappedRec
	r3 = mappedRecLen
	call bpf_seq_write
`

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
