package bpfiter

import (
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// Task is one process (thread group leader) as the task iterator saw it.
// Its cwd, root and executable come as devices (and the executable's
// inode), not names: following the task's fs and mm pointers with typed
// loads, which d_path needs, costs the verifier ~6 ms of name searches
// through the kernel's BTF per load, more than reading the names from
// /proc for the processes whose names are wanted (see procscan).
type Task struct {
	PID     int
	EUID    int // in the initial user namespace
	Comm    string
	MountNS uint32 // inode numbers of its mount and network namespaces; 0 when exiting
	NetNS   uint32
	// Start is when the process started, CLOCK_MONOTONIC nanoseconds: a
	// process that started before another walk began was seen by it.
	Start uint64
	// The devices of the cwd's and the root's filesystems; 0 for a task
	// past exit_fs.
	CwdDev, RootDev uint64
	// ExeDev and ExeIno identify the executable; 0 when none (kernel
	// threads).
	ExeDev, ExeIno uint64
}

// Task record layout (native byte order).
const (
	taskPID     = 0
	taskEUID    = 4
	taskComm    = 8 // 16 bytes
	taskMntNS   = 24
	taskNetNS   = 28
	taskMagic   = 32
	taskCwdDev  = 36
	taskStart   = 40 // start_time, CLOCK_MONOTONIC ns
	taskExeIno  = 48
	taskExeDev  = 56
	taskRootDev = 60
	taskHeader  = 64

	taskMagicValue = 0x4b535752 // "RWSK"
	taskBuf        = -512
)

// tasksProgram builds the task iterator program (ctx: meta, task). Every
// pointer is followed with probe reads: no typed load from the task, so
// the verifier has no name to search for.
func tasksProgram(s kernelBTF) ([]byte, error) {
	b := newBuilder(s, []sym{
		{"taskBuf", taskBuf}, {"taskPID", taskPID}, {"taskComm", taskComm}, {"taskStart", taskStart},
		{"taskMagic", taskMagic}, {"taskMagicValue", taskMagicValue}, {"taskEUID", taskEUID}, {"taskMntNS", taskMntNS},
		{"taskNetNS", taskNetNS}, {"taskCwdDev", taskCwdDev}, {"taskRootDev", taskRootDev}, {"taskExeIno", taskExeIno},
		{"taskExeDev", taskExeDev}, {"taskHeader", taskHeader}, {"rTask", r7},
	})
	b.text(tasksText)
	return b.assemble()
}

const tasksText = `
	r6 = r1
	r7 = *(u64 *)(r6 +ctxTask)
	if r7 == 0 goto out
` + leaderOnly + ` // threads: their leader speaks for them
	*(u32 *)(r10 +taskBuf+taskPID) = r1
	r1 = *(u64 *)(r7 +task_struct.comm)
	*(u64 *)(r10 +taskBuf+taskComm) = r1
	r1 = *(u64 *)(r7 +task_struct.comm+8)
	*(u64 *)(r10 +taskBuf+taskComm+8) = r1
	r1 = *(u64 *)(r7 +task_struct.start_time)
	*(u64 *)(r10 +taskBuf+taskStart) = r1
	*(u32 *)(r10 +taskBuf+taskMagic) = taskMagicValue
	// A NULL pointer on the way (an exiting task's nsproxy or fs, a
	// kernel thread's mm) makes the reads fail and zero the field.
	*(u32 *)(r10 +taskBuf+taskEUID) = probe_chain(r7, task_struct.cred, cred.euid)
	*(u32 *)(r10 +taskBuf+taskMntNS) = probe_chain(r7, task_struct.nsproxy, nsproxy.mnt_ns, mnt_namespace.ns.inum)
	*(u32 *)(r10 +taskBuf+taskNetNS) = probe_chain(r7, task_struct.nsproxy, nsproxy.net_ns, net.ns.inum)
	*(u32 *)(r10 +taskBuf+taskCwdDev) = probe_chain(r7, task_struct.fs, fs_struct.pwd+path.dentry, dentry.d_sb, super_block.s_dev)
	*(u32 *)(r10 +taskBuf+taskRootDev) = probe_chain(r7, task_struct.fs, fs_struct.root+path.dentry, dentry.d_sb, super_block.s_dev)
	*(u64 *)(r10 +taskBuf+taskExeIno) = probe_chain(r7, task_struct.mm, mm_struct.exe_file, file.f_inode, inode.i_ino)
	*(u32 *)(r10 +taskBuf+taskExeDev) = probe_chain(r7, task_struct.mm, mm_struct.exe_file, file.f_inode, inode.i_sb, super_block.s_dev)
	r1 = *(u64 *)(r6 +ctxMeta)
	r1 = *(u64 *)(r1 +0)
	r2 = r10
	r2 += taskBuf
	r3 = taskHeader
	call bpf_seq_write
out:
	r0 = 0
	exit
`

// Tasks returns every process in pid order.
func (k *Kernel) Tasks() ([]Task, error) {
	return walk(k, "tasks", "bpf_iter_task", tasksProgram, readTasks)
}

// readTasks decodes the task record stream.
func readTasks(r io.Reader) ([]Task, error) {
	st, err := readStream(r)
	if err != nil {
		return nil, err
	}
	out := make([]Task, 0, len(st.b)/taskHeader)
	le := binary.LittleEndian
	dev := func(b []byte) uint64 {
		kdev := le.Uint32(b)
		return unix.Mkdev(kdev>>20, kdev&(1<<20-1))
	}
	for {
		h, err := st.next(taskHeader)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if le.Uint32(h[taskMagic:]) != taskMagicValue {
			return nil, fmt.Errorf("bpf task iterator: malformed record")
		}
		t := Task{
			PID:     int(le.Uint32(h[taskPID:])),
			EUID:    int(le.Uint32(h[taskEUID:])),
			Comm:    cString(h[taskComm : taskComm+16]),
			MountNS: le.Uint32(h[taskMntNS:]),
			NetNS:   le.Uint32(h[taskNetNS:]),
			Start:   le.Uint64(h[taskStart:]),
		}
		if d := le.Uint32(h[taskCwdDev:]); d != 0 {
			t.CwdDev = dev(h[taskCwdDev:])
		}
		if d := le.Uint32(h[taskRootDev:]); d != 0 {
			t.RootDev = dev(h[taskRootDev:])
		}
		if ino := le.Uint64(h[taskExeIno:]); ino != 0 {
			t.ExeIno, t.ExeDev = ino, dev(h[taskExeDev:])
		}
		out = append(out, t)
	}
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
