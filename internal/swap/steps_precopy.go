package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rootswap/rootswap/internal/bpfiter"
	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/ext"
	"github.com/rootswap/rootswap/internal/extent"
	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/journal"
	"golang.org/x/sys/unix"
)

// Defaults of the pre-copy.
const (
	DefaultMaxRounds = 3
	// precopyGoal is how long the frozen round may take: live rounds go
	// on while the changes of one would take longer to copy.
	precopyGoal = time.Second
)

// StepPrecopy copies / while it is still read-write.
const StepPrecopy = "precopy"

// precopy copies the used blocks of / while services run, tracking what
// they write meanwhile, and leaves the session open for the copy step,
// which, after stop-services and remount-ro, copies what changed.
type precopy struct {
	rt   *Runtime
	sess *precopySession
	est  *precopyEstimate
}

type precopySession struct {
	p        *blockcopy.Precopy
	src, dst *os.File
	how      string // what tracks the changes, for the log

	mu     sync.Mutex
	frozen bool            // the copy step's round, / read-only
	fired  map[string]bool // fault points passed (tests)
}

// midRound is told of each chunk written: the first of each round passes
// the fault point "precopy/round#N" (live) or "copy/frozen", where the
// root tests kill the engine in the middle of a round.
func (sess *precopySession) midRound(rt *Runtime, s *State) {
	if rt.Fault == nil {
		return
	}
	sess.mu.Lock()
	point := fmt.Sprintf("%s/round#%d", StepPrecopy, len(s.Rounds)+1)
	if sess.frozen {
		point = StepCopy + "/frozen"
	}
	first := !sess.fired[point]
	if sess.fired == nil {
		sess.fired = map[string]bool{}
	}
	sess.fired[point] = true
	sess.mu.Unlock()
	if first {
		rt.Fault(point)
	}
}

// precopyEstimate is what plan says about the pre-copy: measured once.
type precopyEstimate struct {
	used, chunk, memory int64
	usedErr             error
	readRate            float64 // bytes a second, from a short probe
	tracking            string  // the program that would run, or why none
	tracked             bool
}

func (*precopy) Name() string { return StepPrecopy }
func (*precopy) Fatal() bool  { return true }

// skipped says why the copy runs frozen instead, or "".
func (st *precopy) skipped(s *State) string {
	if s.Opts.Backup != "" {
		return "--backup images the frozen root: the whole copy runs after remount-ro"
	}
	return ""
}

func (st *precopy) Describe(s *State) string {
	if why := st.skipped(s); why != "" {
		return "no live pre-copy: " + why
	}
	r := st.rt.Report
	e := st.estimate(s)
	what := "every block"
	if fstools.IsExt(r.Root.FSType) && e.usedErr == nil {
		what = fmt.Sprintf("the %s %s uses", human(e.used), r.Root.FSType)
	}
	rate := "at full speed"
	if s.Opts.PrecopyRate > 0 {
		rate = "at most " + humanize.IBytes(uint64(s.Opts.PrecopyRate)) + "/s (--precopy-rate)"
	}
	d := fmt.Sprintf("copy %s of %s to %s while / is read-write and services run (O_DIRECT, %s, every chunk read back); ",
		what, r.Root.Device, s.Opts.Target, rate)
	perTiB := float64(e.memory) / float64(max(e.used, 1)) * (1 << 40) / (1 << 20)
	if e.tracked {
		d += fmt.Sprintf("writes tracked by the BPF program %s on block_rq_complete, one bit per %s chunk; then up to %d live rounds (--max-rounds) of what changed, until a round's changes copy within %s; ",
			e.tracking, humanize.IBytes(uint64(e.chunk)), s.Opts.MaxRounds, precopyGoal)
	} else {
		d += "no write tracking (" + e.tracking + "): after remount-ro every used chunk is read again and compared by hash; "
	}
	d += fmt.Sprintf("memory for change tracking %s (%.0f MiB per TiB used)", humanize.IBytes(uint64(e.memory)), perTiB)
	if e.readRate > 0 {
		mibs := e.readRate / (1 << 20)
		if e.tracked {
			d += fmt.Sprintf("; read-only window for the copy: the last round's changes at %.0f MiB/s (probed), e.g. %s for 100 MiB; at worst (tracking lost) %s to re-read the used area",
				mibs, secs(100<<20, e.readRate), secs(e.used, e.readRate))
		} else {
			d += fmt.Sprintf("; read-only window for the copy: about %s to re-read %s at %.0f MiB/s (probed), plus what changed", secs(e.used, e.readRate), human(e.used), mibs)
		}
	}
	return d
}

func secs(n int64, rate float64) time.Duration {
	return time.Duration(float64(n) / rate * float64(time.Second)).Round(100 * time.Millisecond)
}

// estimate measures, once, what plan states: the used size, a short
// read-speed probe of the root device and whether write tracking loads.
func (st *precopy) estimate(s *State) *precopyEstimate {
	if st.est != nil {
		return st.est
	}
	r := st.rt.Report
	e := &precopyEstimate{used: r.Root.Size}
	st.est = e
	if f, err := os.OpenFile(r.Root.Device, os.O_RDONLY, 0); err == nil {
		if fstools.IsExt(r.Root.FSType) {
			if used, err := ext.UsedExtentsLive(f); err == nil {
				e.used = extent.Total(used)
			} else {
				e.usedErr = err
			}
		}
		e.readRate = blockcopy.ProbeReadRate(f, r.Root.Size, 64<<20, 300*time.Millisecond)
		f.Close()
	}
	e.chunk = blockcopy.TrackChunk(r.Root.Size, e.used)
	e.memory = blockcopy.TrackingMemory(r.Root.Size, e.used, e.chunk)
	w, err := st.watch(s, e.chunk)
	if err == nil {
		e.tracking, e.tracked = w.Program, true
		w.Close()
	} else {
		e.tracking = err.Error()
	}
	return e
}

// watch starts write tracking on the root device.
func (st *precopy) watch(s *State, chunk int64) (*bpfiter.WriteWatch, error) {
	if s.Opts.NoBPF {
		return nil, errors.New("--no-bpf")
	}
	k, _ := bpfiter.Open() // without BTF, the classic tracepoint program
	return bpfiter.WatchWrites(bpfiter.WatchConfig{Device: st.rt.Report.Root.Device, Chunk: chunk, Kernel: k, SysRoot: st.rt.SysRoot})
}

func (st *precopy) Do(ctx context.Context, s *State) error {
	if why := st.skipped(s); why != "" {
		st.rt.logf("    %s", why)
		return nil
	}
	rt := st.rt
	r := rt.Report
	src, err := os.OpenFile(r.Root.Device, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	// O_EXCL on a block device: fails with EBUSY if anyone mounted it
	// since the plan; held until the copy step ends.
	dst, err := os.OpenFile(s.Opts.Target, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		src.Close()
		return err
	}
	sess := &precopySession{src: src, dst: dst}
	usedFn := usedExtents(rt, s, src, r.Root.FSType, r.Root.Device, r.Root.Size)
	used := r.Root.Size
	if es, err := usedFn(); err == nil {
		used = extent.Total(es)
	}
	chunk := blockcopy.TrackChunk(r.Root.Size, used)
	show := blockProgress(rt, func() (string, int) {
		if sess.frozen {
			return StepCopy, len(s.Rounds) + 1
		}
		return StepPrecopy, len(s.Rounds) + 1
	})
	opts := blockcopy.PrecopyOptions{Size: r.Root.Size, Used: usedFn, Rate: s.Opts.PrecopyRate, Direct: true,
		Progress: func(phase blockcopy.Phase, done, total int64) {
			show(phase, done, total)
			if phase == blockcopy.PhaseCopy && done > 0 {
				sess.midRound(rt, s)
			}
		}}
	// The tracker starts before the first read: every write that
	// completes after it is marked.
	if w, err := st.watch(s, chunk); err == nil {
		opts.Tracker = w
		sess.how = fmt.Sprintf("BPF program %s, one bit per %s", w.Program, humanize.IBytes(uint64(chunk)))
	} else {
		sess.how = "no write tracking (" + err.Error() + "): the hash compare after remount-ro"
	}
	rt.logf("    change tracking: %s", sess.how)
	sess.p = blockcopy.NewPrecopy(dst, src, opts)
	st.sess = sess
	first, err := sess.p.First(ctx)
	st.record(s, first)
	if err != nil {
		return err
	}
	why, err := sess.p.Converge(ctx, s.Opts.MaxRounds, precopyGoal, func(r blockcopy.Round) { st.record(s, r) })
	if err != nil {
		return err
	}
	st.note(fmt.Sprintf("precopy: %s", why))
	return nil
}

// record logs a round, journals it and keeps it in the state.
func (st *precopy) record(s *State, r blockcopy.Round) {
	s.Rounds = append(s.Rounds, r)
	s.Copied += r.Copied
	st.note("copy " + r.String())
}

func (st *precopy) note(msg string) {
	st.rt.logf("    %s", msg)
	if st.rt.Journal != nil {
		st.rt.Journal.Add(journal.Record{Kind: journal.KindNote, Describe: msg})
	}
}

// Undo stops the tracking and lets go of both devices; the target is
// left as it is.
func (st *precopy) Undo(context.Context, *State) error {
	st.close()
	return nil
}

func (st *precopy) close() {
	if st.sess == nil {
		return
	}
	st.sess.p.Close()
	st.sess.src.Close()
	st.sess.dst.Close()
	st.sess = nil
}

// usedExtents reads the used extents of an ext root: every block for
// other filesystems. While / is live its bitmaps lag the journal (a block
// taken since the last checkpoint may read as free): the live rounds take
// them as they are, and the frozen round, once / is read-only, reads them
// again, believable then, and copies every chunk that came into use.
func usedExtents(rt *Runtime, s *State, src *os.File, fstype, dev string, size int64) func() ([]extent.Extent, error) {
	all := []extent.Extent{{Off: 0, Len: size}}
	return func() ([]extent.Extent, error) {
		if !fstools.IsExt(fstype) {
			return all, nil
		}
		read := ext.UsedExtents
		if !s.ReadOnly {
			read = ext.UsedExtentsLive
		}
		used, err := read(src)
		switch {
		case err == nil:
			return used, nil
		case errors.Is(err, ext.ErrNeedsRecovery) || errors.Is(err, ext.ErrNotClean):
			rt.logf("    %v: every block", err)
			return all, nil
		}
		return nil, fmt.Errorf("reading %s's block bitmaps: %w", dev, err)
	}
}
