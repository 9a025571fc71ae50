package bpfiter

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/rootswap/rootswap/internal/btf"
	"golang.org/x/sys/unix"
)

// Task is one process (thread group leader) as the task iterator saw it.
type Task struct {
	PID     int
	EUID    int // in the initial user namespace
	Comm    string
	MountNS uint32 // inode numbers of its mount and network namespaces; 0 when exiting
	NetNS   uint32
	// Start is when the process started, CLOCK_MONOTONIC nanoseconds: a
	// process that started before another walk began was seen by it.
	Start uint64
	// ExeDev and ExeIno identify the executable (the maps lines of other
	// filesystems may be left out of a narrowed walk); 0 when none.
	ExeDev, ExeIno uint64
	// Cwd, Root, Exe as readlink(/proc/PID/cwd|root|exe) prints them;
	// "" when absent (kernel threads have no exe) and, with the matching
	// TooLong flag, when the path did not fit the record or d_path failed.
	Cwd, Root, Exe                      string
	CwdTooLong, RootTooLong, ExeTooLong bool
}

// Task record: a header, then three segments (cwd, root, exe), each a
// native int32 (d_path's return, or 0 for no path) and that many bytes.
const (
	taskPID    = 0
	taskEUID   = 4
	taskComm   = 8 // 16 bytes
	taskMntNS  = 24
	taskNetNS  = 28
	taskMagic  = 32
	taskStart  = 40 // start_time, CLOCK_MONOTONIC ns
	taskExeIno = 48 // the executable's inode and device, 0 for none
	taskExeDev = 56
	taskHeader = 64

	taskMagicValue = 0x4b535752 // "RWSK"
	segBuf         = -pathMax   // the path buffer, right below the frame pointer
	segRet         = segBuf - 4 // its length prefix
	taskBuf        = -512
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

// tasksProgram builds the task iterator program (ctx: meta, task).
func tasksProgram(s *btf.Spec) ([]byte, error) {
	f := &fields{spec: s}
	off := f.off
	var (
		tgid    = off("task_struct", "tgid")
		tid     = off("task_struct", "pid")
		comm    = off("task_struct", "comm")
		start   = off("task_struct", "start_time")
		cred    = off("task_struct", "cred")
		euid    = off("cred", "euid")
		nsproxy = off("task_struct", "nsproxy")
		mntNS   = off("nsproxy", "mnt_ns")
		netNS   = off("nsproxy", "net_ns")
		mntInum = off("mnt_namespace", "ns", "inum")
		netInum = off("net", "ns", "inum")
		fsOff   = off("task_struct", "fs")
		pwd     = off("fs_struct", "pwd")
		root    = off("fs_struct", "root")
		mm      = off("task_struct", "mm")
		exeFile = off("mm_struct", "exe_file")
		fPath   = off("file", "f_path")
		fInode  = off("file", "f_inode")
		iIno    = off("inode", "i_ino")
		iSb     = off("inode", "i_sb")
		sDev    = off("super_block", "s_dev")
		at      = func(o int) int16 { return taskBuf + int16(o) }
	)
	if f.err != nil {
		return nil, f.err
	}
	prog := []insn{
		movReg(r6, r1),
		ldx(sizeDW, r7, r6, ctxTask),
		jmpImm(jmpJEQ, r7, 0, "out"),
		ldx(sizeW, r1, r7, tgid),
		ldx(sizeW, r2, r7, tid),
		insn{code: clsJMP | jmpJNE | srcX, dst: r1, src: r2, target: "out"}, // threads: their leader speaks for them
		stx(sizeW, fp, at(taskPID), r1),
		ldx(sizeDW, r1, r7, comm), stx(sizeDW, fp, at(taskComm), r1),
		ldx(sizeDW, r1, r7, comm+8), stx(sizeDW, fp, at(taskComm+8), r1),
		ldx(sizeDW, r1, r7, start), stx(sizeDW, fp, at(taskStart), r1),
		// cred and nsproxy are followed with probe reads, not typed
		// loads: the verifier answers each typed pointer load from the
		// task with up to four name searches through the kernel's whole
		// BTF, a third of this program's cost. A NULL nsproxy (an
		// exiting task) makes the reads fail and zero the fields.
	}
	prog = append(prog, probeChain(r7, []int16{cred, euid}, 4, at(taskEUID))...)
	prog = append(prog, probeChain(r7, []int16{nsproxy, mntNS, mntInum}, 4, at(taskMntNS))...)
	prog = append(prog, probeChain(r7, []int16{nsproxy, netNS, netInum}, 4, at(taskNetNS))...)
	prog = append(prog,
		// The executable, in r9 for its segment below.
		st(sizeDW, fp, at(taskExeIno), 0),
		st(sizeDW, fp, at(taskExeDev), 0),
		movImm(r9, 0),
		ldx(sizeDW, r8, r7, mm), // kernel threads have none
		jmpImm(jmpJEQ, r8, 0, "header"),
		ldx(sizeDW, r9, r8, exeFile),
		jmpImm(jmpJEQ, r9, 0, "header"),
		ldx(sizeDW, r2, r9, fInode),
		ldx(sizeDW, r1, r2, iIno), stx(sizeDW, fp, at(taskExeIno), r1),
		ldx(sizeDW, r2, r2, iSb),
		ldx(sizeW, r1, r2, sDev), stx(sizeW, fp, at(taskExeDev), r1),

		st(sizeW, fp, at(taskMagic), taskMagicValue).at("header"),
		st(sizeW, fp, at(taskMagic+4), 0),
		ldx(sizeDW, r1, r6, ctxMeta),
		ldx(sizeDW, r1, r1, 0),
		movReg(r2, fp), addImm(r2, taskBuf),
		movImm(r3, taskHeader),
		call(fnSeqWrite),

		ldx(sizeDW, r8, r7, fsOff), // NULL for a task past exit_fs
		movImm(r1, 0),
		jmpImm(jmpJEQ, r8, 0, "cwd_go"),
		movReg(r1, r8), addImm(r1, int32(pwd)),
		jmp("cwd_go"),
	)
	prog = append(prog, label("cwd_go", segment("cwd"))...)
	prog = append(prog,
		movImm(r1, 0),
		jmpImm(jmpJEQ, r8, 0, "root_go"),
		movReg(r1, r8), addImm(r1, int32(root)),
	)
	prog = append(prog, label("root_go", segment("root"))...)
	prog = append(prog,
		movImm(r1, 0),
		jmpImm(jmpJEQ, r9, 0, "exe_go"),
		movReg(r1, r9), addImm(r1, int32(fPath)),
	)
	prog = append(prog, label("exe_go", segment("exe"))...)
	prog = append(prog, movImm(r0, 0).at("out"), exit())
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
	var out []Task
	st, err := readStream(r)
	if err != nil {
		return nil, err
	}
	for {
		h, err := st.next(taskHeader)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		le := binary.LittleEndian
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
		if ino := le.Uint64(h[taskExeIno:]); ino != 0 {
			kdev := le.Uint32(h[taskExeDev:])
			t.ExeIno, t.ExeDev = ino, unix.Mkdev(kdev>>20, kdev&(1<<20-1))
		}
		for _, seg := range []struct {
			into    *string
			tooLong *bool
		}{{&t.Cwd, &t.CwdTooLong}, {&t.Root, &t.RootTooLong}, {&t.Exe, &t.ExeTooLong}} {
			name, ok, err := st.segment()
			if err != nil {
				return nil, err
			}
			*seg.into, *seg.tooLong = name, !ok
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
