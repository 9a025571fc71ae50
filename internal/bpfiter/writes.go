package bpfiter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rootswap/rootswap/internal/extent"
	"golang.org/x/sys/unix"
)

// ErrWritesLost is what Changed says when the program could not mark a
// write (its overflow list was full, a map lookup failed): the set of
// changes is no longer complete and the caller must compare hashes.
var ErrWritesLost = errors.New("write tracking lost a write")

// WatchConfig says what to watch.
type WatchConfig struct {
	// Device is the watched block device node: a partition, a whole
	// disk or a loop device, whose disk takes requests (blk-mq).
	Device string
	// Chunk is what one bit stands for, a power of two ≥ 4096 bytes.
	Chunk int64
	// Kernel gives the raw tracepoint program its BTF offsets; nil
	// skips it for the classic tracepoint.
	Kernel *Kernel
	// SysRoot and TraceFS are /sys and /sys/kernel/tracing ("" for those).
	SysRoot, TraceFS string
	// Refuse names programs ("writes", "writes_tp") to treat as refused
	// without loading them, as Kernel.Refuse does for the iterators.
	Refuse map[string]bool
	// VerifierLog asks for the verifier's log of a refused program.
	VerifierLog bool
}

// WriteWatch tracks the writes that complete on one device, one bit per
// chunk, from when WatchWrites returns until Close.
type WriteWatch struct {
	// Program is the program that runs: "writes" (raw tracepoint) or
	// "writes_tp" (classic tracepoint).
	Program string
	Chunk   int64
	Size    int64 // bytes watched

	bitmap, ctl *arrayMap
	words, cw   []uint64
	progFd      int
	links       []int
	seen        uint64 // overflow slots already collected
	notes       []string
}

// geometry is where the device sits on its disk.
type geometry struct {
	diskMajor, diskMinor uint32
	start, sectors       uint64
	disk                 string // the disk's sysfs directory
}

// deviceGeometry reads the device's disk and range from sysfs.
func deviceGeometry(sysRoot, node string) (geometry, error) {
	var g geometry
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil {
		return g, &os.PathError{Op: "stat", Path: node, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return g, fmt.Errorf("%s is not a block device", node)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "dev/block", fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))))
	if err != nil {
		return g, err
	}
	if g.sectors, err = readUint(filepath.Join(dir, "size")); err != nil {
		return g, err
	}
	g.disk = dir
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		if g.start, err = readUint(filepath.Join(dir, "start")); err != nil {
			return g, err
		}
		g.disk = filepath.Dir(dir)
	}
	b, err := os.ReadFile(filepath.Join(g.disk, "dev"))
	if err != nil {
		return g, err
	}
	var ma, mi uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &ma, &mi); err != nil {
		return g, fmt.Errorf("%s/dev: %q: %w", g.disk, b, err)
	}
	g.diskMajor, g.diskMinor = ma, mi
	return g, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}

// WatchWrites starts tracking the writes to cfg.Device. It tries the raw
// tracepoint program, then the classic one; each must pass a self-test
// (a read of the device must show up at the sector it was read from)
// before it is trusted. The error wraps ErrUnsupported when neither can
// run; Notes says why each was passed over.
func WatchWrites(cfg WatchConfig) (*WriteWatch, error) {
	if cfg.SysRoot == "" {
		cfg.SysRoot = "/sys"
	}
	if cfg.TraceFS == "" {
		cfg.TraceFS = "/sys/kernel/tracing"
	}
	if cfg.Chunk < 4096 || cfg.Chunk&(cfg.Chunk-1) != 0 {
		return nil, fmt.Errorf("write tracking: chunk %d is not a power of two of at least 4096 bytes", cfg.Chunk)
	}
	g, err := deviceGeometry(cfg.SysRoot, cfg.Device)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnsupported, cfg.Device, err)
	}
	if _, err := os.Stat(filepath.Join(g.disk, "mq")); err != nil {
		// dm, md and other bio-based devices complete writes without a
		// request: the tracepoint would never see them.
		return nil, fmt.Errorf("%w: %s is bio-based (no blk-mq requests to watch)", ErrUnsupported, filepath.Base(g.disk))
	}
	w := &WriteWatch{Chunk: cfg.Chunk, Size: int64(g.sectors) * 512, progFd: -1}
	chunks := (w.Size + cfg.Chunk - 1) / cfg.Chunk
	if w.bitmap, err = newArrayMap("written", 8, int((chunks+63)/64)); err != nil {
		return nil, err
	}
	if w.ctl, err = newArrayMap("written_ctl", ctlValueSize, 1); err != nil {
		w.Close()
		return nil, err
	}
	w.words, w.cw = w.bitmap.words(), w.ctl.words()
	geom := writesGeom{
		Major: g.diskMajor, Minor: g.diskMinor, Start: g.start, Len: g.sectors,
		Shift: uint8(bits.TrailingZeros64(uint64(cfg.Chunk)) - 9), BitmapFD: w.bitmap.fd, CtlFD: w.ctl.fd,
	}
	var errs []error
	for _, try := range []func() error{
		func() error { return w.attachRaw(cfg, geom) },
		func() error { return w.attachTP(cfg, geom) },
	} {
		err := try()
		if err == nil {
			err = w.selfTest(cfg.Device)
		}
		if err == nil {
			return w, nil
		}
		w.detach()
		w.notes = append(w.notes, err.Error())
		errs = append(errs, err)
	}
	w.Close()
	return nil, fmt.Errorf("%w: %v", ErrUnsupported, errors.Join(errs...))
}

func (w *WriteWatch) attachRaw(cfg WatchConfig, g writesGeom) error {
	w.Program = "writes"
	if cfg.Kernel == nil {
		return fmt.Errorf("writes: no kernel BTF for the raw tracepoint program")
	}
	prog, err := writesRawProgram(cfg.Kernel.spec, g)
	if err != nil {
		return fmt.Errorf("writes program: %v", err)
	}
	cfg.Kernel.spec.save()
	if cfg.Refuse["writes"] {
		return &RefusedError{Program: "writes", Err: fmt.Errorf("refused on request")}
	}
	if w.progFd, err = loadProg("writes", unix.BPF_PROG_TYPE_RAW_TRACEPOINT, prog, cfg.VerifierLog); err != nil {
		return err
	}
	link, err := openRawTP("block_rq_complete", w.progFd)
	if err != nil {
		return err
	}
	w.links = []int{link}
	return nil
}

func (w *WriteWatch) attachTP(cfg WatchConfig, g writesGeom) error {
	w.Program = "writes_tp"
	format, err := readTPFormat(filepath.Join(cfg.TraceFS, "events/block/block_rq_complete"))
	if err != nil {
		return fmt.Errorf("writes_tp: %v", err)
	}
	prog, err := writesTPProgram(format, g)
	if err != nil {
		return fmt.Errorf("writes_tp program: %v", err)
	}
	if cfg.Refuse["writes_tp"] {
		return &RefusedError{Program: "writes_tp", Err: fmt.Errorf("refused on request")}
	}
	if w.progFd, err = loadProg("writes_tp", unix.BPF_PROG_TYPE_TRACEPOINT, prog, cfg.VerifierLog); err != nil {
		return err
	}
	// The program runs for the tracepoint on every CPU (it joins the
	// event's program array), whichever CPU its perf event is on: one
	// event is enough, and a CPU that comes online later is watched too.
	cpus, err := parseCPUList(onlineCPUs(cfg.SysRoot))
	if err != nil || len(cpus) == 0 {
		return fmt.Errorf("writes_tp: online CPUs: %v", err)
	}
	w.links, err = openTracepoint(format.ID, w.progFd, cpus[:1])
	return err
}

// selfTest reads a few blocks of the device with O_DIRECT and waits for
// the program to report one of them at its sector: proof that it sees
// this device's requests, reads their sectors right and knows where the
// device starts on its disk.
func (w *WriteWatch) selfTest(node string) error {
	f, err := os.OpenFile(node, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return fmt.Errorf("%s self-test: %w", w.Program, err)
	}
	defer f.Close()
	buf := alignedPage()
	blocks := w.Size / 4096
	if blocks == 0 {
		return fmt.Errorf("%s self-test: %s is smaller than a block", w.Program, node)
	}
	for try := int64(1); try <= 20; try++ {
		off := (try * 7919 % blocks) * 4096
		if _, err := f.ReadAt(buf, off); err != nil && err != io.EOF {
			return fmt.Errorf("%s self-test: read %s at %d: %w", w.Program, node, off, err)
		}
		if atomic.LoadUint64(&w.cw[ctlCalib/8]) == uint64(off/512)+1 {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s self-test: 20 reads of %s did not show at their sectors (last seen %d)", w.Program, node, int64(atomic.LoadUint64(&w.cw[ctlCalib/8]))-1)
}

func alignedPage() []byte {
	b := make([]byte, 8192)
	for i := range 4096 {
		if uintptr(unsafeAddr(b[i:]))%4096 == 0 {
			return b[i : i+4096]
		}
	}
	return b[:4096]
}

// Notes says why programs were passed over.
func (w *WriteWatch) Notes() []string { return w.notes }

// MemoryBytes is what the tracking holds in kernel memory.
func (w *WriteWatch) MemoryBytes() int64 {
	return int64(len(w.bitmap.mem) + len(w.ctl.mem))
}

// Changed returns the byte ranges of the device written since the last
// call (the first: since WatchWrites), chunk-aligned and clipped to the
// device. It wraps ErrWritesLost when some write may be missing: after
// that the watch can no longer vouch for anything.
func (w *WriteWatch) Changed() ([]extent.Extent, error) {
	if atomic.LoadUint64(&w.cw[ctlLost/8]) != 0 {
		return nil, fmt.Errorf("%w: the %s program could not mark a write", ErrWritesLost, w.Program)
	}
	var out []extent.Extent
	add := func(first, last int64) {
		off, end := first*w.Chunk, min((last+1)*w.Chunk, w.Size)
		if n := len(out); n > 0 && out[n-1].End() >= off {
			out[n-1].Len = max(out[n-1].End(), end) - out[n-1].Off
			return
		}
		out = append(out, extent.Extent{Off: off, Len: end - off})
	}
	for i := range w.words {
		v := atomic.SwapUint64(&w.words[i], 0)
		for v != 0 {
			b := bits.TrailingZeros64(v)
			run := bits.TrailingZeros64(^(v >> b)) // consecutive ones from b
			add(int64(i)*64+int64(b), int64(i)*64+int64(b+run-1))
			if b+run >= 64 {
				break
			}
			v &^= (1<<run - 1) << b
		}
	}
	taken := atomic.LoadUint64(&w.cw[ctlOverflow/8])
	if taken > overflowSlots {
		return nil, fmt.Errorf("%w: %d writes too long for the %s program's loop, room for %d", ErrWritesLost, taken, w.Program, overflowSlots)
	}
	for ; w.seen < taken; w.seen++ {
		at := (ctlSlots + 16*int(w.seen)) / 8
		// The program took the slot before it filled it: wait for it.
		var first, last uint64
		for wait := 0; ; wait++ {
			first, last = atomic.LoadUint64(&w.cw[at]), atomic.LoadUint64(&w.cw[at+1])
			if first != 0 && last != 0 {
				break
			}
			if wait > 100 {
				return nil, fmt.Errorf("%w: overflow slot %d never filled", ErrWritesLost, w.seen)
			}
			time.Sleep(time.Millisecond)
		}
		out = append(out, extent.Extent{Off: int64(first-1) * w.Chunk, Len: int64(last-first+1) * w.Chunk})
	}
	out = extent.Normalize(out)
	for i := range out {
		if out[i].End() > w.Size {
			out[i].Len = w.Size - out[i].Off
		}
	}
	return out, nil
}

// Events is how many writes the program has marked so far.
func (w *WriteWatch) Events() uint64 { return atomic.LoadUint64(&w.cw[ctlEvents/8]) }

func (w *WriteWatch) detach() {
	for _, fd := range w.links {
		unix.Close(fd)
	}
	w.links = nil
	if w.progFd >= 0 {
		unix.Close(w.progFd)
		w.progFd = -1
	}
}

// Close detaches the program and frees the maps.
func (w *WriteWatch) Close() error {
	w.detach()
	w.bitmap.close()
	w.ctl.close()
	w.bitmap, w.ctl = nil, nil
	return nil
}

func onlineCPUs(sysRoot string) string {
	b, _ := os.ReadFile(filepath.Join(sysRoot, "devices/system/cpu/online"))
	return strings.TrimSpace(string(b))
}

// parseCPUList parses the kernel's CPU list format: "0-3,8,10-11".
func parseCPUList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, err
			}
		}
		if a < 0 || b < a || b-a > 1<<16 {
			return nil, fmt.Errorf("bad range %q", part)
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out, nil
}

// readTPFormat reads a tracepoint's id and the offsets of the fields the
// program reads from its tracefs directory.
func readTPFormat(dir string) (tpFormat, error) {
	var t tpFormat
	id, err := readUint(filepath.Join(dir, "id"))
	if err != nil {
		return t, err
	}
	f, err := os.Open(filepath.Join(dir, "format"))
	if err != nil {
		return t, err
	}
	defer f.Close()
	t, err = parseTPFormat(f)
	t.ID = id
	return t, err
}

// parseTPFormat reads the offsets of dev, sector, nr_sector and rwbs
// from a tracefs format file ("field:dev_t dev;	offset:8;	size:4;...").
func parseTPFormat(r io.Reader) (tpFormat, error) {
	var t tpFormat
	want := map[string]struct {
		at   *int
		size int
	}{"dev": {&t.Dev, 4}, "sector": {&t.Sector, 8}, "nr_sector": {&t.NrSector, 4}, "rwbs": {&t.RWBS, 10}}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		decl, ok := strings.CutPrefix(line, "field:")
		if !ok {
			continue
		}
		parts := strings.Split(decl, ";")
		if len(parts) < 3 {
			continue
		}
		words := strings.Fields(parts[0])
		if len(words) == 0 {
			continue
		}
		name, _, _ := strings.Cut(words[len(words)-1], "[")
		wf, ok := want[name]
		if !ok {
			continue
		}
		off, err1 := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(parts[1]), "offset:"))
		size, err2 := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(parts[2]), "size:"))
		if err1 != nil || err2 != nil || off <= 0 || off > 4096 || size != wf.size {
			return t, fmt.Errorf("format: field %s: %q", name, line)
		}
		*wf.at = off
	}
	if err := sc.Err(); err != nil {
		return t, err
	}
	for name, wf := range want {
		if *wf.at == 0 {
			return t, fmt.Errorf("format: no field %s", name)
		}
	}
	return t, nil
}
