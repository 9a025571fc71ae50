package dd

import (
	"context"
	"math"
	"math/bits"
	"os"

	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/extent"
	"golang.org/x/sys/unix"
)

// engineMin is the least a copy must hand the engine to be worth its
// start-up (four 8 MiB buffers and two goroutines).
const engineMin = 32 << 20

// fast copies, between regular files and block devices, the longest run
// of whole blocks that the block loop would copy with full reads and
// writes, with the pipelined engine (O_DIRECT, reader and writer in
// parallel), and leaves the counters, offsets and descriptors as that
// loop would. The loop then copies the rest: the last blocks, whatever
// the file grew by, what a file reporting a wrong size (procfs) holds.
// If the engine fails, the loop takes over from the last whole block it
// wrote and meets the same error, a block at a time.
func (j *job) fast() error {
	cfg := j.cfg
	if j.in.fd < 0 || j.out.fd < 0 || j.in.bad || j.out.bad || cfg.Conv.Sparse || cfg.OFlag.Append ||
		j.t.n.InFull+j.t.n.InPartial != 0 || j.ob.n != 0 {
		return nil
	}
	ist, err1 := j.in.fstat()
	ost, err2 := j.out.fstat()
	if err1 != nil || err2 != nil {
		return nil
	}
	kind := func(st unix.Stat_t) uint32 { return st.Mode & unix.S_IFMT }
	if k := kind(ist); k != unix.S_IFREG && k != unix.S_IFBLK {
		return nil
	}
	if k := kind(ost); k != unix.S_IFREG && k != unix.S_IFBLK {
		return nil
	}
	size := ist.Size
	if kind(ist) == unix.S_IFBLK {
		n, err := unix.IoctlGetUint64(j.in.fd, unix.BLKGETSIZE64)
		if err != nil {
			return nil
		}
		size = int64(n)
	}
	inPos, err1 := j.in.seek(0, unix.SEEK_CUR)
	outPos, err2 := j.out.seek(0, unix.SEEK_CUR)
	if err1 != nil || err2 != nil || size <= inPos {
		return nil
	}
	// Whole blocks of both sizes, so that no partial record or half-full
	// output buffer is left for the loop to continue.
	unit := lcm(cfg.IBS, cfg.OBS)
	limit := size - inPos
	if j.records < math.MaxInt64 {
		limit = min(limit, mulSat(j.records, cfg.IBS))
	}
	if unit <= 0 || limit < engineMin {
		return nil
	}
	prefix := limit / unit * unit
	if prefix < engineMin {
		return nil
	}

	src, err := dupFile(j.in.fd, j.in.name)
	if err != nil {
		return nil
	}
	defer src.Close()
	dst, err := dupFile(j.out.fd, j.out.name)
	if err != nil {
		return nil
	}
	defer dst.Close()
	opts := blockcopy.Options{
		BufSize: int(min(max(cfg.IBS, cfg.OBS, blockcopy.DefaultBufSize), maxEngineBuf)),
		Direct:  cfg.Direct == "yes" || (cfg.Direct == "" && directByDefault) || cfg.IFlag.Direct || cfg.OFlag.Direct,
		Sync:    kind(ost) == unix.S_IFBLK,
		Shift:   outPos - inPos,
		Span:    extent.Extent{Off: inPos, Len: prefix},
		Progress: func(p blockcopy.Phase, done, _ int64) {
			j.t.mu.Lock()
			defer j.t.mu.Unlock()
			j.t.run = done
			j.t.tick()
		},
	}
	ctx := j.ctx
	if j.r.owner {
		// The signal watcher ends the process; the engine must not stop
		// on its own first.
		ctx = context.WithoutCancel(ctx)
	}
	res, err := blockcopy.Copy(ctx, dst, src, []extent.Extent{opts.Span}, opts)
	done := min(res.Written, prefix) / unit * unit
	j.t.mu.Lock()
	j.t.run = 0
	j.t.n.InFull += done / cfg.IBS
	j.t.n.OutFull += done / cfg.OBS
	j.t.n.Bytes += done
	j.t.mu.Unlock()
	if j.records < math.MaxInt64 {
		j.records -= done / cfg.IBS
	}
	if _, err := j.in.seek(inPos+done, unix.SEEK_SET); err != nil {
		j.err.errorf(err, "%s: cannot seek", quotef(j.in.name))
		return fail()
	}
	if _, err := j.out.seek(outPos+done, unix.SEEK_SET); err != nil {
		j.err.errorf(err, "%s: cannot seek", quotef(j.out.name))
		return fail()
	}
	if err != nil && ctx.Err() != nil {
		return j.interrupt()
	}
	return nil
}

func dupFile(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), name), nil
}

func mulSat(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// lcm is 0 when it overflows.
func lcm(a, b int64) int64 {
	m := a / gcd(a, b)
	if r := mulSat(m, b); r < math.MaxInt64 {
		return r
	}
	return 0
}
