package bpfiter

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrUnsupported wraps every reason the kernel cannot run the iterators
// here (no BTF, no bpf(2) for this user, a kernel without iterators or
// d_path for them): callers fall back to reading /proc.
var ErrUnsupported = errors.New("bpf iterators unavailable")

// progLoadAttr is union bpf_attr for BPF_PROG_LOAD, up to attach_btf_obj_fd.
type progLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
	progBTFFd          uint32
	funcInfoRecSize    uint32
	funcInfo           uint64
	funcInfoCnt        uint32
	lineInfoRecSize    uint32
	lineInfo           uint64
	lineInfoCnt        uint32
	attachBTFID        uint32
	attachBTFObjFd     uint32
	_                  uint32
}

// linkCreateAttr is union bpf_attr for BPF_LINK_CREATE of an iterator.
type linkCreateAttr struct {
	progFd      uint32
	targetFd    uint32
	attachType  uint32
	flags       uint32
	iterInfo    uint64
	iterInfoLen uint32
	_           uint32
}

// iterTaskInfo is union bpf_iter_link_info for a task iterator: one
// thread (tid), one process (pid) or a pidfd's.
type iterTaskInfo struct{ tid, pid, pidFd uint32 }

// iterCreateAttr is union bpf_attr for BPF_ITER_CREATE.
type iterCreateAttr struct {
	linkFd uint32
	flags  uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	// PROG_LOAD may fail with EAGAIN when interrupted in the verifier;
	// a few retries, not a spin on a kernel that keeps saying it.
	for try := 0; ; try++ {
		fd, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
		if (errno == unix.EINTR || errno == unix.EAGAIN && cmd == unix.BPF_PROG_LOAD) && try < 5 {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
}

// load loads prog with attr's type and attach fields, under the name
// rootswap_NAME, and returns its fd; a refusal is a RefusedError, with
// the verifier's log when withLog.
func load(name string, attr progLoadAttr, prog []byte, withLog bool) (int, error) {
	license := []byte("GPL\x00") // bpf_seq_write and bpf_probe_read_kernel are GPL-only helpers
	attr.insnCnt = uint32(len(prog) / 8)
	attr.insns = uint64(uintptr(unsafe.Pointer(&prog[0])))
	attr.license = uint64(uintptr(unsafe.Pointer(&license[0])))
	// The kernel takes [A-Za-z0-9_.] and wants the NUL within 16 bytes.
	copy(attr.progName[:len(attr.progName)-1], "rootswap_"+name)
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	if err != nil {
		refused := &RefusedError{Program: name, Err: err}
		if withLog {
			refused.Log = verifierLog(attr, prog, license)
		}
		return -1, refused
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// loadIter loads an iterator program for target ("task_file") whose
// attach point has BTF id funcID, and returns a readable iterator fd:
// every read of it runs the program over the next tasks, or only over
// thread tid when it is not 0 (Linux 6.1+).
func loadIter(name string, prog []byte, funcID uint32, tid int, withLog bool) (*os.File, error) {
	progFd, err := load(name, progLoadAttr{
		progType:           unix.BPF_PROG_TYPE_TRACING,
		expectedAttachType: unix.BPF_TRACE_ITER,
		attachBTFID:        funcID,
	}, prog, withLog)
	if err != nil {
		return nil, err
	}
	defer unix.Close(progFd)

	link := linkCreateAttr{progFd: uint32(progFd), attachType: unix.BPF_TRACE_ITER}
	info := iterTaskInfo{tid: uint32(tid)}
	if tid != 0 {
		link.iterInfo = uint64(uintptr(unsafe.Pointer(&info)))
		link.iterInfoLen = uint32(unsafe.Sizeof(info))
	}
	linkFd, err := bpf(unix.BPF_LINK_CREATE, unsafe.Pointer(&link), unsafe.Sizeof(link))
	runtime.KeepAlive(&info)
	if err != nil {
		return nil, fmt.Errorf("%w: attach %s iterator: %v", ErrUnsupported, name, err)
	}
	defer unix.Close(linkFd)
	it := iterCreateAttr{linkFd: uint32(linkFd)}
	fd, err := bpf(unix.BPF_ITER_CREATE, unsafe.Pointer(&it), unsafe.Sizeof(it))
	if err != nil {
		return nil, fmt.Errorf("%w: open %s iterator: %v", ErrUnsupported, name, err)
	}
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "bpf-iter:"+name), nil
}

// verifierLog loads the program once more with the verifier's log on, so
// a rejected program says why (only on failure: the log costs time).
func verifierLog(attr progLoadAttr, prog, license []byte) string {
	buf := make([]byte, 1<<20)
	attr.logLevel = 1
	attr.logSize = uint32(len(buf))
	attr.logBuf = uint64(uintptr(unsafe.Pointer(&buf[0])))
	fd, _ := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(prog)
	runtime.KeepAlive(license)
	runtime.KeepAlive(buf)
	if fd >= 0 {
		unix.Close(fd)
	}
	log := bytes.TrimRight(buf[:max(0, bytes.IndexByte(buf, 0))], "\n")
	if len(log) == 0 {
		return ""
	}
	// The verdict is at the end.
	lines := bytes.Split(log, []byte("\n"))
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "\nverifier: " + string(bytes.Join(lines, []byte("\nverifier: ")))
}
