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
	f := &fields{spec: s}
	off := f.off
	var (
		comm      = off("task_struct", "comm")
		start     = off("task_struct", "start_time")
		cred      = off("task_struct", "cred")
		euid      = off("cred", "euid")
		nsproxy   = off("task_struct", "nsproxy")
		mntNS     = off("nsproxy", "mnt_ns")
		netNS     = off("nsproxy", "net_ns")
		mntInum   = off("mnt_namespace", "ns", "inum")
		netInum   = off("net", "ns", "inum")
		fsOff     = off("task_struct", "fs")
		pwd       = off("fs_struct", "pwd")
		root      = off("fs_struct", "root")
		dentry    = off("path", "dentry")
		dSb       = off("dentry", "d_sb")
		mm        = off("task_struct", "mm")
		exeFile   = off("mm_struct", "exe_file")
		fInode    = off("file", "f_inode")
		iIno      = off("inode", "i_ino")
		iSb       = off("inode", "i_sb")
		sDev      = off("super_block", "s_dev")
		at        = func(o int) int16 { return taskBuf + int16(o) }
		chainInto = func(dst int16, size int32, offs ...int16) []insn { return probeChain(r7, offs, size, dst) }
	)
	if f.err != nil {
		return nil, f.err
	}
	prog := []insn{
		movReg(r6, r1),
		ldx(sizeDW, r7, r6, ctxTask),
		jmpImm(jmpJEQ, r7, 0, "out"),
	}
	prog = append(prog, leaderOnly(f, r7, "out")...) // threads: their leader speaks for them
	prog = append(prog,
		stx(sizeW, fp, at(taskPID), r1),
		ldx(sizeDW, r1, r7, comm), stx(sizeDW, fp, at(taskComm), r1),
		ldx(sizeDW, r1, r7, comm+8), stx(sizeDW, fp, at(taskComm+8), r1),
		ldx(sizeDW, r1, r7, start), stx(sizeDW, fp, at(taskStart), r1),
		st(sizeW, fp, at(taskMagic), taskMagicValue),
		// A NULL pointer on the way (an exiting task's nsproxy or fs, a
		// kernel thread's mm) makes the reads fail and zero the field.
	)
	prog = append(prog, chainInto(at(taskEUID), 4, cred, euid)...)
	prog = append(prog, chainInto(at(taskMntNS), 4, nsproxy, mntNS, mntInum)...)
	prog = append(prog, chainInto(at(taskNetNS), 4, nsproxy, netNS, netInum)...)
	prog = append(prog, chainInto(at(taskCwdDev), 4, fsOff, pwd+dentry, dSb, sDev)...)
	prog = append(prog, chainInto(at(taskRootDev), 4, fsOff, root+dentry, dSb, sDev)...)
	prog = append(prog, chainInto(at(taskExeIno), 8, mm, exeFile, fInode, iIno)...)
	prog = append(prog, chainInto(at(taskExeDev), 4, mm, exeFile, fInode, iSb, sDev)...)
	prog = append(prog,
		ldx(sizeDW, r1, r6, ctxMeta),
		ldx(sizeDW, r1, r1, 0),
		movReg(r2, fp), addImm(r2, taskBuf),
		movImm(r3, taskHeader),
		call(fnSeqWrite),
		movImm(r0, 0).at("out"),
		exit(),
	)
	if f.err != nil {
		return nil, f.err
	}
	return asm(prog)
}

// probeChain reads *(...*(*(base+offs[0])+offs[1])...+offs[n-1]), the
// last read size bytes into the stack at dst, with bpf_probe_read_kernel;
// the pointers in between pass through the stack slot at fp-8.
func probeChain(base uint8, offs []int16, size int32, dst int16) []insn {
	var out []insn
	for i, o := range offs {
		last := i == len(offs)-1
		if i == 0 {
			out = append(out, movReg(r3, base))
		} else {
			out = append(out, ldx(sizeDW, r3, fp, -8))
		}
		out = append(out, addImm(r3, int32(o)))
		if last {
			out = append(out, movReg(r1, fp), addImm(r1, int32(dst)), movImm(r2, size))
		} else {
			out = append(out, movReg(r1, fp), addImm(r1, -8), movImm(r2, 8))
		}
		out = append(out, call(fnProbeReadKernel))
	}
	return out
}

// label puts l on the first instruction of code.
func label(l string, code []insn) []insn {
	code[0] = code[0].at(l)
	return code
}

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
