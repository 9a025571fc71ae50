// Package bpfiter reads what every process holds in one pass per kind,
// with BPF iterators the kernel runs over its own structures: task_file
// (a record per descriptor: pid, fd, open flags, offset, mount id,
// device, inode, mode, size, link count and the path as
// readlink(/proc/PID/fd/N) prints it), task_vma (a record per file
// mapping, likewise) and task (a record per process: name, euid,
// namespaces, start time, the devices of its cwd, root and executable).
// Nothing is looked up by path and no filesystem code runs, so a dead NFS
// server cannot stall it, and it costs well under a microsecond per
// descriptor where /proc costs several (a readlink, an fdinfo
// open/read/close, a stat).
//
// The programs are assembled here from field offsets in the kernel's
// BTF (internal/btf). They need root (CAP_BPF and CAP_PERFMON), a kernel
// with BTF (/sys/kernel/btf/vmlinux) and bpf_d_path for iterators (Linux
// 5.10+). Anything missing yields an error wrapping ErrUnsupported and
// the caller reads /proc instead.
package bpfiter

import (
	"encoding/binary"
	"fmt"
	"io"
)

// File is one open descriptor.
type File struct {
	PID   int // process (thread group) id
	FD    int
	Flags uint32 // f_flags: O_ACCMODE, O_APPEND, O_PATH... (not O_CLOEXEC)
	Pos   int64
	MntID int    // the mount it was opened through, as fdinfo's mnt_id
	Dev   uint64 // st_dev of the filesystem (its superblock's)
	Ino   uint64
	Mode  uint32 // st_mode
	Size  int64
	Nlink uint32
	Rdev  uint64 // st_rdev of a device node
	// Name is the link text; when it did not fit the record (paths over
	// pathMax bytes) it is empty and NameTooLong is set: read the link.
	Name        string
	NameTooLong bool
}

// Record layout written by the program (native byte order).
const (
	recPID     = 0
	recFD      = 4
	recFlags   = 8
	recMntID   = 12
	recIno     = 16
	recSize    = 24
	recPos     = 32
	recDev     = 40
	recMode    = 44
	recNlink   = 48
	recPathRet = 52 // d_path's return: length with the NUL, or -errno
	recTID     = 56 // the task's own id: records of threads with their own file table are dropped
	recMagic   = 60
	recRdev    = 64
	recHeader  = 72

	pathMax = 512 - recHeader // the BPF stack is 512 bytes
	magic   = 0x46575352      // "RSWF"
)

// ctx is struct bpf_iter__task_file: meta, task, fd, file.
const (
	ctxMeta = 0
	ctxTask = 8
	ctxFD   = 16
	ctxFile = 24
)

// filesProgram builds the task_file program from the kernel's field offsets.
func filesProgram(s kernelBTF, devs []uint64) ([]byte, error) {
	const buf = -512 // the record
	b := newBuilder(s, []sym{
		{"buf", buf}, {"recPID", recPID}, {"recTID", recTID}, {"recFD", recFD}, {"recFlags", recFlags},
		{"recPos", recPos}, {"recMagic", recMagic}, {"magic", magic}, {"recPathRet", recPathRet}, {"recHeader", recHeader},
		{"idDev", buf + recDev}, {"idMode", buf + recMode}, {"idIno", buf + recIno}, {"idSize", buf + recSize},
		{"idNlink", buf + recNlink}, {"idMntID", buf + recMntID}, {"idRdev", buf + recRdev}, {"rFile", r7},
	})
	b.text(filesHead)
	b.identity(devs, true, "out")
	b.text(filesTail)
	return b.assemble()
}

const filesHead = `
	r6 = r1
	r7 = *(u64 *)(r6 +ctxFile)
	if r7 == 0 goto out // the final call, after the last task, has no file
	r8 = *(u64 *)(r6 +ctxTask)
	if r8 == 0 goto out
	r1 = *(u32 *)(r8 +task_struct.tgid)
	*(u32 *)(r10 +buf+recPID) = r1
	r1 = *(u32 *)(r8 +task_struct.pid)
	*(u32 *)(r10 +buf+recTID) = r1
	r1 = *(u32 *)(r6 +ctxFD)
	*(u32 *)(r10 +buf+recFD) = r1
	r1 = *(u32 *)(r7 +file.f_flags)
	*(u32 *)(r10 +buf+recFlags) = r1
	r1 = *(u64 *)(r7 +file.f_pos)
	*(u64 *)(r10 +buf+recPos) = r1
	*(u32 *)(r10 +buf+recMagic) = magic
`

// The path right after the header, then one write of both.
const filesTail = `
	r1 = r7
	r1 += file.f_path
	r2 = r10
	r2 += buf+recHeader
	r3 = pathMax
	call bpf_d_path
	*(u32 *)(r10 +buf+recPathRet) = r0
	// Write the header and as much of the path as d_path produced;
	// the bounds checks let the verifier prove the length fits.
	if r0 s> 0 goto positive
	r0 = 0
positive:
	if r0 > pathMax goto clamp
	goto write
clamp:
	r0 = pathMax
write:
	r3 = r0
	r3 += recHeader
	r1 = *(u64 *)(r6 +ctxMeta)
	r1 = *(u64 *)(r1 +0) // meta->seq
	r2 = r10
	r2 += buf
	call bpf_seq_write
out:
	r0 = 0
	exit
`

// Files returns every open descriptor of every process, in pid order
// and, within a process, in descriptor order. With devs (st_dev values,
// at most MaxDevs), only descriptors of files on those filesystems, and
// sockets, are reported: the others cost no path lookup and no record.
func (k *Kernel) Files(devs []uint64) ([]File, error) {
	build := func(s kernelBTF) ([]byte, error) { return filesProgram(s, devs) }
	return walk(k, "files", "bpf_iter_task_file", build, readFiles)
}

// readFiles decodes the record stream.
func readFiles(r io.Reader) ([]File, error) {
	st, err := readStream(r)
	if err != nil {
		return nil, err
	}
	// Records are at least a header long: enough room, never a regrowth.
	out := make([]File, 0, len(st.b)/recHeader)
	le := binary.LittleEndian
	for {
		h, err := st.next(recHeader)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if le.Uint32(h[recMagic:]) != magic {
			return nil, fmt.Errorf("bpf iterator: malformed record")
		}
		ret := int32(le.Uint32(h[recPathRet:]))
		pathLen := 0
		if ret > 0 {
			if ret > pathMax {
				return nil, fmt.Errorf("bpf iterator: malformed record")
			}
			pathLen = int(ret)
			if _, err := st.next(pathLen); err != nil {
				return nil, cutShort(err)
			}
		}
		if le.Uint32(h[recTID:]) != le.Uint32(h[recPID:]) {
			continue // a thread with its own file table
		}
		kdev := le.Uint32(h[recDev:])
		f := File{
			PID:   int(le.Uint32(h[recPID:])),
			FD:    int(le.Uint32(h[recFD:])),
			Flags: le.Uint32(h[recFlags:]),
			Pos:   int64(le.Uint64(h[recPos:])),
			MntID: int(int32(le.Uint32(h[recMntID:]))),
			Ino:   le.Uint64(h[recIno:]),
			Mode:  le.Uint32(h[recMode:]),
			Size:  int64(le.Uint64(h[recSize:])),
			Nlink: le.Uint32(h[recNlink:]),
			Dev:   userDev(kdev),
			Rdev:  userDev(le.Uint32(h[recRdev:])),
		}
		if pathLen > 0 {
			f.Name = st.name(pathLen)[:pathLen-1] // without the NUL
		} else {
			f.NameTooLong = true
		}
		if f.PID != 0 {
			out = append(out, f)
		}
	}
}
