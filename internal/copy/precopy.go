package copy

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"time"

	"github.com/rootswap/rootswap/internal/extent"
)

// The live pre-copy: copy the used blocks while the source is still
// written to, then rounds of what changed meanwhile, then, with the
// source still (read-only or frozen), the last changes. What changed
// comes from a Tracker (a BPF program on the block layer); without one,
// or once it cannot vouch, from comparing the hash of every chunk of the
// used area with the hash of what the target was given.

// Tracker reports the source ranges written since it last reported.
type Tracker interface {
	// Changed returns the byte ranges written since the previous call
	// (the first call: since the tracker started, which must be before
	// the first round reads anything). An error means it cannot vouch
	// for what it reports, now or later.
	Changed() ([]extent.Extent, error)
	Close() error
}

// HashChunk is what one hash of the pre-copy covers. The first round
// copies whole chunks, so the hash compare re-reads exactly what a hash
// was taken of.
const HashChunk = 1 << 20

// hashEntryBytes is what a hash costs: its chunk's number and the sum.
const hashEntryBytes = 4 + 8

// PrecopyOptions describe one pre-copy.
type PrecopyOptions struct {
	// Size is the source's size in bytes.
	Size int64
	// Used returns the ranges of the source in use now; nil means all
	// of it. Called before the first round and again after the freeze
	// (a file may have grown into blocks unused at the start).
	Used func() ([]extent.Extent, error)
	// Tracker, when set, says what changed between rounds.
	Tracker Tracker
	// Rate caps the live rounds' reading, bytes a second; the last,
	// frozen round runs at full speed.
	Rate int64
	// Direct, BufSize and Buffers are as in Options.
	Direct           bool
	BufSize, Buffers int
	Progress         func(phase Phase, done, total int64)
}

// Round is one pass of the pre-copy, as status and the journal show it.
type Round struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	N    int  `json:"n"`
	Live bool `json:"live"` // the source was still written to
	// How is "full" (the used area), "tracked" (what the tracker said
	// changed) or "hashed" (every chunk read and compared).
	How      string        `json:"how"`
	Changed  int64         `json:"changed"` // bytes found changed (full: the used area)
	Copied   int64         `json:"copied"`  // bytes written and read back equal
	Read     int64         `json:"read"`    // bytes read from the source
	Took     time.Duration `json:"took"`
	Note     string        `json:"note,omitempty"`
	Verified int64         `json:"verified"`
}

func (r Round) String() string {
	live := "frozen"
	if r.Live {
		live = "live"
	}
	s := fmt.Sprintf("round %d (%s, %s): %s changed, %s copied and verified in %s", r.N, live, r.How,
		ibytes(r.Changed), ibytes(r.Copied), r.Took.Round(time.Millisecond))
	if r.How == "hashed" {
		s += fmt.Sprintf(" (read %s to compare)", ibytes(r.Read))
	}
	if r.Note != "" {
		s += "; " + r.Note
	}
	return s
}

func ibytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Precopy holds what the rounds know between them: the hash of every
// chunk the target was given (0: unknown, copy it again) and the
// tracker.
type Precopy struct {
	dst    io.WriterAt
	src    io.ReaderAt
	opts   PrecopyOptions
	chunks []uint32 // chunk numbers with a hash, ascending
	sums   []uint64
	rounds []Round
	doubt  error // why the tracker is no longer believed
	rate   float64
}

// NewPrecopy prepares a pre-copy of src to dst (at the same offsets).
// dst must also be an io.ReaderAt: every round reads back what it wrote.
func NewPrecopy(dst io.WriterAt, src io.ReaderAt, opts PrecopyOptions) *Precopy {
	p := &Precopy{dst: dst, src: src, opts: opts}
	if opts.Tracker == nil {
		p.doubt = errors.New("no change tracking")
	}
	return p
}

// Doubt is why the hash compare will decide the last round (nil while
// the tracker is believed).
func (p *Precopy) Doubt() error { return p.doubt }

// Rounds are the rounds so far.
func (p *Precopy) Rounds() []Round { return p.rounds }

// HashBytes is the memory the hashes take.
func (p *Precopy) HashBytes() int64 { return int64(cap(p.chunks))*4 + int64(cap(p.sums))*8 }

// Rate is the bytes a second the first round achieved.
func (p *Precopy) Rate() float64 { return p.rate }

// Close stops the tracker.
func (p *Precopy) Close() error {
	if p.opts.Tracker != nil {
		return p.opts.Tracker.Close()
	}
	return nil
}

// used is the chunk grid over the used area: whole HashChunks, clipped
// to the source.
func (p *Precopy) used() ([]extent.Extent, error) {
	used := []extent.Extent{{Off: 0, Len: p.opts.Size}}
	if p.opts.Used != nil {
		var err error
		if used, err = p.opts.Used(); err != nil {
			return nil, err
		}
	}
	return grid(used, p.opts.Size), nil
}

// grid widens extents to whole HashChunks within size.
func grid(es []extent.Extent, size int64) []extent.Extent {
	out := make([]extent.Extent, 0, len(es))
	for _, e := range extent.Normalize(es) {
		off := e.Off / HashChunk * HashChunk
		end := min((e.End()+HashChunk-1)/HashChunk*HashChunk, size)
		if end > off {
			out = append(out, extent.Extent{Off: off, Len: end - off})
		}
	}
	return extent.Normalize(out)
}

// chunkHasher hashes HashChunk-aligned pieces read in offset order:
// CRC-32C and CRC-32 (IEEE), two independent polynomials both computed
// in hardware, make a 64-bit sum.
type chunkHasher struct {
	cur    int64
	c1, c2 uint32
	emit   func(chunk int64, sum uint64)
}

var ieee = crc32.MakeTable(crc32.IEEE)

func newChunkHasher(emit func(int64, uint64)) *chunkHasher {
	return &chunkHasher{cur: -1, emit: emit}
}

func (h *chunkHasher) feed(off int64, b []byte) {
	for len(b) > 0 {
		k := off / HashChunk
		if k != h.cur {
			h.flush()
			h.cur = k
		}
		n := int(min(int64(len(b)), (k+1)*HashChunk-off))
		h.c1 = crc32.Update(h.c1, castagnoli, b[:n])
		h.c2 = crc32.Update(h.c2, ieee, b[:n])
		b, off = b[n:], off+int64(n)
	}
}

func (h *chunkHasher) flush() {
	if h.cur >= 0 {
		sum := uint64(h.c1)<<32 | uint64(h.c2)
		if sum == 0 {
			sum = 1 // 0 means unknown
		}
		h.emit(h.cur, sum)
	}
	h.cur, h.c1, h.c2 = -1, 0, 0
}

// setSum records the hash of what the target now holds in chunk k.
func (p *Precopy) setSum(k int64, sum uint64) {
	i, ok := slices.BinarySearch(p.chunks, uint32(k))
	if ok {
		p.sums[i] = sum
		return
	}
	// By hand: slices.Insert would add two generic copies (uint32, uint64).
	p.chunks = append(p.chunks, 0)
	copy(p.chunks[i+1:], p.chunks[i:])
	p.chunks[i] = uint32(k)
	p.sums = append(p.sums, 0)
	copy(p.sums[i+1:], p.sums[i:])
	p.sums[i] = sum
}

func (p *Precopy) sumOf(k int64) uint64 {
	if i, ok := slices.BinarySearch(p.chunks, uint32(k)); ok {
		return p.sums[i]
	}
	return 0
}

// forget marks the chunks under es as unknown.
func (p *Precopy) forget(es []extent.Extent) {
	for _, e := range es {
		for k := e.Off / HashChunk; k*HashChunk < e.End(); k++ {
			if i, ok := slices.BinarySearch(p.chunks, uint32(k)); ok {
				p.sums[i] = 0
			}
		}
	}
}

// copyRound copies es with read-back verification; hashed (es on the
// chunk grid) records each chunk's hash.
func (p *Precopy) copyRound(ctx context.Context, es []extent.Extent, rate int64, hashed bool) (Result, error) {
	opts := Options{Direct: p.opts.Direct, BufSize: p.opts.BufSize, Buffers: p.opts.Buffers, Verify: true, Sync: true,
		Span: extent.Extent{Off: 0, Len: p.opts.Size}, Rate: rate, Progress: p.opts.Progress}
	var h *chunkHasher
	if hashed {
		// Appends in order on the first round: no insertion cost.
		h = newChunkHasher(p.setSum)
		opts.OnRead = h.feed
	}
	if len(es) == 0 {
		return Result{}, nil
	}
	res, err := Copy(ctx, p.dst, p.src, es, opts)
	if h != nil {
		h.flush()
	}
	if err != nil {
		if hashed {
			p.forget(es) // what was hashed may not have been written
		}
		return res, err
	}
	return res, nil
}

// First copies the whole used area, live.
func (p *Precopy) First(ctx context.Context) (Round, error) {
	start := time.Now()
	es, err := p.used()
	if err != nil {
		return Round{}, err
	}
	n := int(extent.Total(es) / HashChunk)
	p.chunks, p.sums = make([]uint32, 0, n+len(es)), make([]uint64, 0, n+len(es))
	res, err := p.copyRound(ctx, es, p.opts.Rate, true)
	r := Round{N: 1, Live: true, How: "full", Changed: extent.Total(es), Copied: res.Verified, Read: res.Read, Took: time.Since(start), Verified: res.Verified}
	if d := res.CopyTime.Seconds(); d > 0 {
		p.rate = float64(res.Read) / d
	}
	p.rounds = append(p.rounds, r)
	return r, err
}

// changed asks the tracker, and stops believing it on its first error.
func (p *Precopy) changed() []extent.Extent {
	if p.doubt != nil {
		return nil
	}
	ch, err := p.opts.Tracker.Changed()
	if err != nil {
		p.doubt = err
		return nil
	}
	return ch
}

// Live copies what the tracker says changed since the previous round,
// with the source still written to. With no tracker believed it does
// nothing (the frozen round compares hashes).
func (p *Precopy) Live(ctx context.Context) (Round, error) {
	start := time.Now()
	r := Round{N: len(p.rounds) + 1, Live: true, How: "tracked"}
	ch := p.changed()
	if p.doubt != nil {
		r.How, r.Note = "hashed", "change tracking: "+p.doubt.Error()+"; the frozen round compares every chunk"
		p.rounds = append(p.rounds, r)
		return r, nil
	}
	p.forget(ch)
	res, err := p.copyRound(ctx, ch, p.opts.Rate, false)
	r.Changed, r.Copied, r.Read, r.Verified, r.Took = extent.Total(ch), res.Verified, res.Read, res.Verified, time.Since(start)
	p.rounds = append(p.rounds, r)
	return r, err
}

// Converge runs live rounds until the changes a round found would take
// at most goal to copy (at the first round's rate), or the changes stop
// shrinking (writes outpace the copy), or maxRounds live rounds after
// the first ran. each is told every round. It returns why it stopped.
func (p *Precopy) Converge(ctx context.Context, maxRounds int, goal time.Duration, each func(Round)) (string, error) {
	var prev int64 = -1
	for i := 0; i < maxRounds; i++ {
		if p.doubt != nil {
			return "change tracking lost: " + p.doubt.Error(), nil
		}
		r, err := p.Live(ctx)
		if each != nil {
			each(r)
		}
		if err != nil {
			return "", err
		}
		if p.doubt != nil {
			return "change tracking lost: " + p.doubt.Error(), nil
		}
		if p.estimate(r.Changed) <= goal {
			return fmt.Sprintf("converged: %s changed during the last round, about %s to copy", ibytes(r.Changed), p.estimate(r.Changed).Round(time.Millisecond)), nil
		}
		if prev >= 0 && r.Changed >= prev {
			return fmt.Sprintf("writes outpace the copy: %s changed during round %d, %s during the one before; the frozen round copies what changes meanwhile", ibytes(r.Changed), r.N, ibytes(prev)), nil
		}
		prev = r.Changed
	}
	return fmt.Sprintf("%d live rounds (--max-rounds)", maxRounds), nil
}

// estimate is how long copying n bytes takes at the first round's rate.
func (p *Precopy) estimate(n int64) time.Duration {
	if p.rate <= 0 {
		return 0
	}
	return time.Duration(float64(n) / p.rate * float64(time.Second))
}

// Final is the last round, with the source still: what the tracker says
// changed, plus chunks that came into use since the first round; or,
// without a tracker to believe, every chunk of the used area read and
// its hash compared, and the differing ones copied. Every byte written
// is read back and compared. After it, the target equals the source
// over the used area.
func (p *Precopy) Final(ctx context.Context) (Round, error) {
	start := time.Now()
	r := Round{N: len(p.rounds) + 1, How: "tracked"}
	used, err := p.used()
	if err != nil {
		return r, err
	}
	ch := p.changed()
	var res Result
	if p.doubt == nil {
		// Chunks never copied: used now, free at the first round.
		var fresh []extent.Extent
		for _, e := range used {
			for k := e.Off / HashChunk; k*HashChunk < e.End(); k++ {
				if _, ok := slices.BinarySearch(p.chunks, uint32(k)); !ok {
					fresh = append(fresh, extent.Extent{Off: k * HashChunk, Len: min(HashChunk, p.opts.Size-k*HashChunk)})
				}
			}
		}
		all := extent.Normalize(append(ch, fresh...))
		p.forget(ch)
		res, err = p.copyRound(ctx, all, 0, false)
		r.Changed = extent.Total(all)
		if len(fresh) > 0 {
			r.Note = fmt.Sprintf("%s of it came into use since the first round", ibytes(extent.Total(fresh)))
		}
	} else {
		r.How, r.Note = "hashed", p.doubt.Error()
		var differ []extent.Extent
		var read int64
		differ, read, err = p.compare(ctx, used)
		r.Read = read
		if err == nil {
			r.Changed = extent.Total(differ)
			res, err = p.copyRound(ctx, differ, 0, true)
		}
	}
	r.Copied, r.Verified, r.Took = res.Verified, res.Verified, time.Since(start)
	if r.How == "tracked" {
		r.Read = res.Read
	} else {
		r.Read += res.Read
	}
	p.rounds = append(p.rounds, r)
	return r, err
}

// compare reads the chunks of es from the source and returns those whose
// hash differs from what the target was given (or was never given).
func (p *Precopy) compare(ctx context.Context, es []extent.Extent) ([]extent.Extent, int64, error) {
	var differ []extent.Extent
	h := newChunkHasher(func(k int64, sum uint64) {
		if p.sumOf(k) != sum {
			differ = append(differ, extent.Extent{Off: k * HashChunk, Len: min(HashChunk, p.opts.Size-k*HashChunk)})
		}
	})
	opts := Options{Direct: p.opts.Direct, BufSize: p.opts.BufSize, Buffers: p.opts.Buffers,
		Span: extent.Extent{Off: 0, Len: p.opts.Size}, OnRead: h.feed, Progress: p.opts.Progress}
	res, err := Copy(ctx, discard{}, p.src, es, opts)
	h.flush()
	return extent.Normalize(differ), res.Read, err
}

// discard takes writes and drops them: a read-only pass of Copy.
type discard struct{}

func (discard) WriteAt(b []byte, _ int64) (int, error) { return len(b), nil }

// TrackingMemory is what change tracking costs for a source of size
// bytes with used bytes in use, with the tracker's bitmap at one bit per
// chunk bytes: the bitmap plus the hashes of the used chunks.
func TrackingMemory(size, used, chunk int64) int64 {
	bitmap := (size/chunk + 63) / 64 * 8
	return bitmap + (used/HashChunk+1)*hashEntryBytes
}

// TrackChunk is the tracker's chunk for a source of size bytes with used
// bytes in use: the smallest power of two from 4 KiB up that keeps its
// bitmap within 32 MiB per TiB used (bits cost the whole device, the
// budget is counted on what is used). With the hashes (12 MiB per TiB
// used), change tracking stays within 64 MiB per TiB used.
func TrackChunk(size, used int64) int64 {
	c := int64(4096)
	for used > 0 && (size/c+7)/8 > used>>15 && c < 1<<30 {
		c <<= 1
	}
	return c
}

// ProbeReadRate reads up to limit bytes of f (size bytes long) for at most
// d, in 8 MiB pieces spread over it, bypassing the page cache, and
// returns the bytes a second it read: plan's estimate of the read-only
// window. 0 when nothing could be read.
func ProbeReadRate(f *os.File, size, limit int64, d time.Duration) float64 {
	const piece = 8 << 20
	df := newDirectFile(f, true)
	defer df.restore()
	buf := AlignedBuffer(piece)
	n := limit / piece
	if size < piece || n == 0 {
		return 0
	}
	var read int64
	start := time.Now()
	for i := int64(0); i < n && time.Since(start) < d; i++ {
		off := (size - piece) / n * i &^ (Align - 1)
		got, err := df.readAt(buf, off)
		read += int64(got)
		if err != nil {
			break
		}
	}
	if el := time.Since(start).Seconds(); el > 0 && read > 0 {
		return float64(read) / el
	}
	return 0
}
