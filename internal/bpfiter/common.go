package bpfiter

import "golang.org/x/sys/unix"

// fields looks up the kernel's field offsets for one program and keeps
// the first failure, so that a program's offsets read as a plain list.
type fields struct {
	spec kernelBTF
	err  error
}

// kernelBTF is what the programs need of the kernel's BTF (a *btf.Spec):
// field offsets and the ids of the kernel functions they call. The golden
// tests pass a synthetic one.
type kernelBTF interface {
	Offset(typ string, field ...string) (int, error)
	FuncID(name string) (uint32, error)
}

// kfunc is the BTF id of kernel function name.
func (f *fields) kfunc(name string) int32 {
	id, err := f.spec.FuncID(name)
	if err != nil && f.err == nil {
		f.err = err
	}
	return int32(id)
}

func (f *fields) off(typ string, field ...string) int16 {
	o, err := f.spec.Offset(typ, field...)
	if err != nil && f.err == nil {
		f.err = err
	}
	return int16(o)
}

// leaderOnly loads the thread group id of the task in register rTask
// into r1 and jumps to out unless it is the group's leader: one record
// per process. Clobbers r2.
const leaderOnly = `
	r1 = *(u32 *)(rTask +task_struct.tgid)
	r2 = *(u32 *)(rTask +task_struct.pid)
	if r1 != r2 goto out
`

// identity emits the loads of the identity of the struct file in
// register rFile, shared by the files and maps programs, and stores it
// at the stack slots idDev, idMode, idIno, idSize, idNlink, idMntID
// and idRdev; with devs, a file of another filesystem (and, unless
// keepSock, a socket) jumps to drop first. Loads through BTF pointers
// fault to 0 rather than oops, so a missing inode or superblock reads as
// zeros. Clobbers r0-r5.
func (b *builder) identity(devs []uint64, keepSock bool, drop string) {
	b.text(loadInode)
	b.devFilter(devs, keepSock, drop)
	b.text(storeInode)
}

// devFilter keeps a record whose kernel dev_t (in r4) is one of devs,
// or, with keepSock, whose i_mode (in r5) is a socket's; any other jumps
// to drop, a kept one to the label wanted. No devs: keeps everything.
func (b *builder) devFilter(devs []uint64, keepSock bool, drop string) {
	if len(devs) == 0 {
		return
	}
	for _, d := range devs {
		b.def("kdev", kernelDev(d))
		b.text("if w4 == kdev goto wanted")
	}
	if keepSock {
		b.text(keepSocket)
	}
	b.text("goto " + drop)
}

const keepSocket = `
	r0 = r5
	r0 &= S_IFMT
	if r0 == S_IFSOCK goto wanted
`

// loadInode loads the file's inode into r2, its superblock's dev_t into
// r4 and its mode into r5: what a device filter looks at.
const loadInode = `
	r2 = *(u64 *)(rFile +file.f_inode)
	r3 = *(u64 *)(r2 +inode.i_sb)
	r4 = *(u32 *)(r3 +super_block.s_dev)
	r5 = *(u16 *)(r2 +inode.i_mode)
`

// storeInode stores what loadInode loaded (r2 still the inode), the
// inode number, size and link count, and the id of the mount the file
// was opened through.
const storeInode = `
wanted:
	*(u32 *)(r10 +idDev) = r4
	*(u32 *)(r10 +idMode) = r5
	r1 = *(u64 *)(r2 +inode.i_ino)
	*(u64 *)(r10 +idIno) = r1
	r1 = *(u32 *)(r2 +inode.i_rdev)
	*(u32 *)(r10 +idRdev) = r1
	r1 = *(u64 *)(r2 +inode.i_size)
	*(u64 *)(r10 +idSize) = r1
	r1 = *(u32 *)(r2 +inode.__i_nlink)
	*(u32 *)(r10 +idNlink) = r1
	// struct vfsmount is embedded in struct mount, whose mnt_id is
	// fdinfo's: container_of by hand, read with probe_read_kernel
	// because the verifier knows only the vfsmount's bounds.
	*(u32 *)(r10 +idMntID) = 0
	r3 = *(u64 *)(rFile +file.f_path+path.mnt)
	r3 += mount.mnt_id-mount.mnt
	r1 = r10
	r1 += idMntID
	r2 = 4
	call bpf_probe_read_kernel
`

// A path segment: d_path's return (length with the NUL, or -errno; 0
// for no path) as a native int32, then that many bytes. Its buffer sits
// right below the frame pointer.
const (
	segBuf = -pathMax
	segRet = segBuf - 4
)

// segment emits "d_path(r1) as a segment" when r1 is non-zero, an empty
// segment otherwise; its labels are local (the builder's scope must be
// unique in the program).
const segment = `
	*(u32 *)(r10 +segRet) = 0
	if r1 == 0 goto .write
	r2 = r10
	r2 += segBuf
	r3 = pathMax
	call bpf_d_path
	*(u32 *)(r10 +segRet) = r0
	if r0 s> 0 goto .pos
	r0 = 0
.pos:
	if r0 > pathMax goto .clamp
	goto .len
.clamp:
	r0 = pathMax
.len:
	r3 = r0
	goto .emit
.write:
	r3 = 0
.emit:
	r3 += 4
	r1 = *(u64 *)(r6 +ctxMeta)
	r1 = *(u64 *)(r1 +0)
	r2 = r10
	r2 += segRet
	call bpf_seq_write
`

// userDev converts the kernel's dev_t (major<<20 | minor) to stat's.
func userDev(kdev uint32) uint64 { return unix.Mkdev(kdev>>20, kdev&(1<<20-1)) }

// kernelDev converts stat's dev_t to the kernel's.
func kernelDev(d uint64) int64 { return int64(unix.Major(d)<<20 | unix.Minor(d)&(1<<20-1)) }
