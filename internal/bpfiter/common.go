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

// leaderOnly loads the task's (in register task) thread group id into r1
// and jumps to out unless it is the group's leader: one record per
// process. Clobbers r2.
func leaderOnly(f *fields, task uint8, out string) []insn {
	return []insn{
		ldx(sizeW, r1, task, f.off("task_struct", "tgid")),
		ldx(sizeW, r2, task, f.off("task_struct", "pid")),
		{code: clsJMP | jmpJNE | srcX, dst: r1, src: r2, target: out},
	}
}

// The loads of a struct file's identity, shared by the files and maps
// programs. Loads through BTF pointers fault to 0 rather than oops, so a
// missing inode or superblock reads as zeros.

// loadInode loads the inode of the struct file in reg into r2, its
// superblock's dev_t into r4 and its mode into r5: what a device filter
// looks at.
func loadInode(f *fields, file uint8) []insn {
	return []insn{
		ldx(sizeDW, r2, file, f.off("file", "f_inode")),
		ldx(sizeDW, r3, r2, f.off("inode", "i_sb")),
		ldx(sizeW, r4, r3, f.off("super_block", "s_dev")),
		ldx(sizeH, r5, r2, f.off("inode", "i_mode")),
	}
}

// identity says where a record keeps a file's identity (stack offsets).
type identity struct{ dev, mode, ino, size, nlink, mntID, rdev int16 }

// storeInode stores what loadInode loaded (r2 still the inode), the
// inode number, size and link count, and the id of the mount the file
// was opened through. Clobbers r0-r5.
func storeInode(f *fields, file uint8, at identity) []insn {
	return []insn{
		stx(sizeW, fp, at.dev, r4),
		stx(sizeW, fp, at.mode, r5),
		ldx(sizeDW, r1, r2, f.off("inode", "i_ino")), stx(sizeDW, fp, at.ino, r1),
		ldx(sizeW, r1, r2, f.off("inode", "i_rdev")), stx(sizeW, fp, at.rdev, r1),
		ldx(sizeDW, r1, r2, f.off("inode", "i_size")), stx(sizeDW, fp, at.size, r1),
		ldx(sizeW, r1, r2, f.off("inode", "__i_nlink")), stx(sizeW, fp, at.nlink, r1),

		// struct vfsmount is embedded in struct mount, whose mnt_id is
		// fdinfo's: container_of by hand, read with probe_read_kernel
		// because the verifier knows only the vfsmount's bounds.
		st(sizeW, fp, at.mntID, 0),
		ldx(sizeDW, r3, file, f.off("file", "f_path")+f.off("path", "mnt")),
		addImm(r3, int32(f.off("mount", "mnt_id")-f.off("mount", "mnt"))),
		movReg(r1, fp), addImm(r1, int32(at.mntID)),
		movImm(r2, 4),
		call(fnProbeReadKernel),
	}
}

// A path segment: d_path's return (length with the NUL, or -errno; 0
// for no path) as a native int32, then that many bytes. Its buffer sits
// right below the frame pointer.
const (
	segBuf = -pathMax
	segRet = segBuf - 4
)

// segment emits "d_path(r1) as a segment" when r1 is non-zero, an empty
// segment otherwise; label must be unique in the program.
func segment(label string) []insn {
	return []insn{
		st(sizeW, fp, segRet, 0),
		jmpImm(jmpJEQ, r1, 0, label+"_write"),
		movReg(r2, fp), addImm(r2, segBuf),
		movImm(r3, pathMax),
		call(fnDPath),
		stx(sizeW, fp, segRet, r0),
		jmpImm(jmpJSGT, r0, 0, label+"_pos"),
		movImm(r0, 0),
		jmpImm(jmpJGT, r0, pathMax, label+"_clamp").at(label + "_pos"),
		jmp(label + "_len"),
		movImm(r0, pathMax).at(label + "_clamp"),
		movReg(r3, r0).at(label + "_len"),
		jmp(label + "_emit"),
		movImm(r3, 0).at(label + "_write"),
		addImm(r3, 4).at(label + "_emit"),
		ldx(sizeDW, r1, r6, ctxMeta),
		ldx(sizeDW, r1, r1, 0),
		movReg(r2, fp), addImm(r2, segRet),
		call(fnSeqWrite),
	}
}

// userDev converts the kernel's dev_t (major<<20 | minor) to stat's.
func userDev(kdev uint32) uint64 { return unix.Mkdev(kdev>>20, kdev&(1<<20-1)) }
