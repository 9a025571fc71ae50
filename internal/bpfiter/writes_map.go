package bpfiter

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapCreateAttr is union bpf_attr for BPF_MAP_CREATE, up to map_name.
type mapCreateAttr struct {
	mapType    uint32
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	mapFlags   uint32
	innerMapFd uint32
	numaNode   uint32
	mapName    [16]byte
}

const bpfFMmapable = 1 << 10 // BPF_F_MMAPABLE (Linux 5.5+)

// arrayMap is a BPF array map mapped into our memory: the program's
// stores and our atomic loads and swaps meet in the same pages.
type arrayMap struct {
	fd  int
	mem []byte
}

// newArrayMap creates an mmap-able array of n values of size bytes each
// and maps it. The values sit back to back (size is a multiple of 8).
func newArrayMap(name string, size, n int) (*arrayMap, error) {
	attr := mapCreateAttr{
		mapType:    unix.BPF_MAP_TYPE_ARRAY,
		keySize:    4,
		valueSize:  uint32(size),
		maxEntries: uint32(n),
		mapFlags:   bpfFMmapable,
	}
	copy(attr.mapName[:15], "rootswap_"+name)
	fd, err := bpf(unix.BPF_MAP_CREATE, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil {
		return nil, fmt.Errorf("%w: create %s map (%d values of %d bytes): %v", ErrUnsupported, name, n, size, err)
	}
	unix.CloseOnExec(fd)
	page := os.Getpagesize()
	length := (size*n + page - 1) / page * page
	mem, err := unix.Mmap(fd, 0, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: mmap %s map: %v", ErrUnsupported, name, err)
	}
	return &arrayMap{fd: fd, mem: mem}, nil
}

// words is the map's memory as u64s.
func (m *arrayMap) words() []uint64 {
	return unsafe.Slice((*uint64)(unsafe.Pointer(&m.mem[0])), len(m.mem)/8)
}

func (m *arrayMap) close() {
	if m == nil {
		return
	}
	unix.Munmap(m.mem)
	unix.Close(m.fd)
}

// rawTPOpenAttr is union bpf_attr for BPF_RAW_TRACEPOINT_OPEN.
type rawTPOpenAttr struct {
	name   uint64
	progFd uint32
	_      uint32
}

// loadProg loads a program of the given type and returns its fd.
func loadProg(name string, progType uint32, prog []byte, withLog bool) (int, error) {
	return load(name, progLoadAttr{progType: progType}, prog, withLog)
}

// openRawTP attaches a raw tracepoint program; the link's fd keeps it
// attached, and closing it (or our exit) detaches it.
func openRawTP(tp string, progFd int) (int, error) {
	name := append([]byte(tp), 0)
	attr := rawTPOpenAttr{name: uint64(uintptr(unsafe.Pointer(&name[0]))), progFd: uint32(progFd)}
	fd, err := bpf(unix.BPF_RAW_TRACEPOINT_OPEN, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(name)
	if err != nil {
		return -1, fmt.Errorf("%w: attach raw tracepoint %s: %v", ErrUnsupported, tp, err)
	}
	unix.CloseOnExec(fd)
	return fd, nil
}

// openTracepoint attaches a tracepoint program through a perf event on
// each CPU in cpus and returns the events' fds.
func openTracepoint(id uint64, progFd int, cpus []int) ([]int, error) {
	var fds []int
	for _, cpu := range cpus {
		attr := unix.PerfEventAttr{
			Type:        unix.PERF_TYPE_TRACEPOINT,
			Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
			Config:      id,
			Sample:      1,
			Sample_type: unix.PERF_SAMPLE_RAW,
			Wakeup:      1,
		}
		fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err == nil {
			if err = unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_SET_BPF, progFd); err == nil {
				err = unix.IoctlSetInt(fd, unix.PERF_EVENT_IOC_ENABLE, 0)
			}
			if err != nil {
				unix.Close(fd)
			}
		}
		if err != nil {
			for _, f := range fds {
				unix.Close(f)
			}
			return nil, fmt.Errorf("%w: attach tracepoint %d on cpu %d: %v", ErrUnsupported, id, cpu, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func unsafeAddr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
