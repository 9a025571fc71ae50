package dd

import (
	"context"
	"math"
	"math/bits"
	"os"
	"time"

	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/extent"
	"golang.org/x/sys/unix"
)

// engineMin is the least a copy must hand the engine to be worth its
// start-up (four 8 MiB buffers and two goroutines).
const engineMin = 32 << 20

// fast copies, between regular files and block devices, the longest run
// of whole blocks that GNU dd's loop would copy with full reads and
// writes, with the pipelined engine (O_DIRECT, reader and writer in
// parallel), and leaves the counters, offsets and descriptors as that
// loop would. The loop then copies the rest: the last blocks, whatever
// the file grew by, what a file reporting a wrong size (procfs) holds.
// If the engine fails, the loop takes over from the last whole block it
// wrote and meets the same error where GNU dd does, a block at a time.
func (c *copier) fast() error {
	cfg := c.cfg
	if c.in.fd < 0 || c.out.fd < 0 || c.in.bad || c.out.bad || cfg.Conv.Sparse || cfg.OFlag.Append ||
		c.rFull+c.rPartial != 0 || c.oc != 0 {
		return nil
	}
	ist, err1 := c.in.fstat()
	ost, err2 := c.out.fstat()
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
		n, err := unix.IoctlGetUint64(c.in.fd, unix.BLKGETSIZE64)
		if err != nil {
			return nil
		}
		size = int64(n)
	}
	inPos, err1 := c.in.seek(0, unix.SEEK_CUR)
	outPos, err2 := c.out.seek(0, unix.SEEK_CUR)
	if err1 != nil || err2 != nil || size <= inPos {
		return nil
	}
	// Whole blocks of both sizes, so that no partial record or half-full
	// output buffer is left for the loop to continue.
	unit := lcm(cfg.IBS, cfg.OBS)
	limit := size - inPos
	if c.maxRecords < math.MaxInt64 {
		limit = min(limit, mulSat(c.maxRecords, cfg.IBS))
	}
	if unit <= 0 || limit < engineMin {
		return nil
	}
	prefix := limit / unit * unit
	if prefix < engineMin {
		return nil
	}

	src, err := dupFile(c.in.fd, c.inputFile)
	if err != nil {
		return nil
	}
	defer src.Close()
	dst, err := dupFile(c.out.fd, c.outputFile)
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
			c.mu.Lock()
			defer c.mu.Unlock()
			c.engineBytes = done
			if cfg.Status == "progress" {
				if t := c.r.now(); !t.Before(c.nextTime) {
					c.printXferStats(t)
					c.nextTime = c.nextTime.Add(time.Second)
				}
			}
		},
	}
	ctx := c.ctx
	if c.r.owner {
		// The signal watcher ends the process; the engine must not stop
		// on its own first.
		ctx = context.WithoutCancel(ctx)
	}
	res, err := blockcopy.Copy(ctx, dst, src, []extent.Extent{opts.Span}, opts)
	done := min(res.Written, prefix) / unit * unit
	c.mu.Lock()
	c.engineBytes = 0
	c.rFull += done / cfg.IBS
	c.wFull += done / cfg.OBS
	c.wBytes += done
	c.mu.Unlock()
	c.advanceInputOffset(done)
	if _, err := c.in.seek(inPos+done, unix.SEEK_SET); err != nil {
		c.errorf(err, "%s: cannot seek", quotef(c.inputFile))
		return quit(1)
	}
	if _, err := c.out.seek(outPos+done, unix.SEEK_SET); err != nil {
		c.errorf(err, "%s: cannot seek", quotef(c.outputFile))
		return quit(1)
	}
	if err != nil && ctx.Err() != nil {
		return c.checkInterrupt()
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
