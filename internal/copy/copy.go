// Package copy is the pipelined block copier behind dd and the swap
// engine: a list of extents in, the same bytes at the same offsets of the
// target out, with a reader and a writer running in parallel on large
// aligned buffers, a per-chunk CRC of everything written (checked by
// reading the target back when Verify is set) and, optionally, a zstd
// image of the whole source range written alongside.
//
// Importers usually name it blockcopy, since "copy" shadows the builtin.
package copy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rootswap/rootswap/internal/extent"
)

// Phase tells a progress callback what is being counted.
type Phase int

const (
	// PhaseCopy counts bytes written to the target.
	PhaseCopy Phase = iota
	// PhaseVerify counts bytes read back from the target.
	PhaseVerify
)

func (p Phase) String() string {
	if p == PhaseVerify {
		return "verify"
	}
	return "copy"
}

// Defaults, chosen from the figures of build/bench-dd.sh: four 8 MiB
// buffers keep a loop device or a disk streaming while the other side
// works, and cost 32 MiB.
const (
	DefaultBufSize = 8 << 20
	DefaultBuffers = 4
	// DefaultMergeGap is the Options.MergeGap of dd blocks=used and of
	// the swap's copy: the largest unused gap copied through rather than
	// skipped.
	DefaultMergeGap = 256 << 10
	// Align is the alignment O_DIRECT gets from us: buffer addresses,
	// offsets and lengths. 4096 covers every logical sector size in use.
	Align = 4096
	// hashChunk is how much one CRC covers: small enough to say where a
	// mismatch is, large enough that a TiB costs 4 MiB of sums.
	hashChunk = 1 << 20
)

// Options tune one copy; the zero value is a plain buffered copy.
type Options struct {
	// BufSize is the size of each buffer (rounded up to Align);
	// Buffers how many are in flight between reader and writer.
	BufSize, Buffers int
	// Direct asks for O_DIRECT on source and target where they are
	// files that accept it; unaligned pieces (a tail) go through the page
	// cache. Extents are widened to Align, which copies at most a few
	// unused bytes around used blocks.
	Direct bool
	// Sync makes the target durable (fdatasync) before Copy returns.
	// Verify implies it.
	Sync bool
	// Verify reads every written byte back from the target (bypassing the
	// page cache) and compares its CRC with the one taken while copying.
	Verify bool
	// MergeGap joins extents separated by at most this many bytes into
	// one: reading a small unused gap costs less than another I/O
	// request on every kind of disk. The gap's bytes are copied too.
	MergeGap int64
	// Shift is added to a source offset to get the target offset (dd's
	// seek minus skip).
	Shift int64
	// Backup, when set, receives a zstd stream (independent frames,
	// decodable by zstd -d) of the source range Span: the copied bytes
	// where extents are, zeros in between.
	Backup      io.Writer
	BackupLevel int
	// Span is the range the backup images; zero means from 0 to the end
	// of the last extent.
	Span extent.Extent
	// Progress is called from the writer after every buffer and once at
	// the end of each phase. total is -1 when unknown (a stream).
	Progress func(phase Phase, done, total int64)
	// Total overrides the progress total (a stream's expected size).
	Total int64
	// Rate, when positive, caps the reading at that many bytes a second
	// (the live pre-copy's --precopy-rate: a busy server keeps serving).
	Rate int64
	// OnRead, when set, sees every piece read from the source, in
	// offset order, before it is written (the pre-copy hashes them).
	OnRead func(off int64, p []byte)
}

// Result says what was done; it is filled in as far as the copy got
// even when Copy returns an error.
type Result struct {
	Read    int64 // bytes read from the source
	Written int64 // bytes written to the target
	// Verified is the number of bytes read back and found equal.
	Verified int64
	// BackupIn is the size of the image written to Backup (uncompressed);
	// BackupOut what the compressed stream took.
	BackupIn, BackupOut int64
	// DirectSource and DirectTarget say whether O_DIRECT was in effect.
	DirectSource, DirectTarget bool
	// EOF is true when the source ended before the extents did.
	EOF bool
	// CopyTime and VerifyTime are the wall time of each phase.
	CopyTime, VerifyTime time.Duration
}

// MismatchError is what Verify reports: the first byte of the target
// that differs from what was written.
type MismatchError struct {
	Offset int64 // target offset of the first differing byte
	// Chunk is the hashed range it was found in.
	Chunk extent.Extent
	// SourceChanged is true when the source, read again, no longer has
	// the bytes that were copied: it changed under the copy.
	SourceChanged bool
	Want, Got     byte
}

func (e *MismatchError) Error() string {
	if e.SourceChanged {
		return fmt.Sprintf("verify: target differs from the copied data in the %d-byte chunk at offset %d, and the source itself changed since it was read (written to while copying?); first difference from the source now at offset %d", e.Chunk.Len, e.Chunk.Off, e.Offset)
	}
	return fmt.Sprintf("verify: target differs at offset %d (byte %#02x, wrote %#02x; in the %d-byte chunk at %d)", e.Offset, e.Got, e.Want, e.Chunk.Len, e.Chunk.Off)
}

// segment is one piece of a buffer: n bytes read from source offset off,
// stored at data[at:].
type segment struct {
	off int64
	at  int
	n   int
}

type buffer struct {
	data []byte
	segs []segment
	refs int32
	mu   sync.Mutex
}

// release returns the buffer to the pool when its last consumer is done.
func (b *buffer) release(free chan<- *buffer) {
	b.mu.Lock()
	b.refs--
	last := b.refs == 0
	b.mu.Unlock()
	if last {
		free <- b
	}
}

// Copy copies the extents (source offsets; they are normalized here) of
// src to dst at offset+opts.Shift. src and dst are usually *os.File, which
// enables O_DIRECT, fdatasync and cache dropping; anything else is used
// through ReadAt/WriteAt only. For Verify, dst must also be an io.ReaderAt.
// A source that ends early (io.EOF) ends the copy; Result.EOF says so.
func Copy(ctx context.Context, dst io.WriterAt, src io.ReaderAt, extents []extent.Extent, opts Options) (Result, error) {
	var res Result
	bufSize := opts.BufSize
	if bufSize <= 0 {
		bufSize = DefaultBufSize
	}
	bufSize = alignUp(bufSize, Align)
	nbuf := opts.Buffers
	if nbuf <= 0 {
		nbuf = DefaultBuffers
	}
	if opts.Verify {
		if _, ok := dst.(io.ReaderAt); !ok {
			return res, errors.New("verify: the target cannot be read back")
		}
	}

	span := opts.Span
	extents = extent.Normalize(extents)
	if span == (extent.Extent{}) && len(extents) > 0 {
		span = extent.Extent{Off: 0, Len: extents[len(extents)-1].End()}
	}

	srcIO := newDirectFile(src, opts.Direct)
	dstIO := newDirectFile(dst, opts.Direct)
	defer srcIO.restore()
	defer dstIO.restore()
	res.DirectSource, res.DirectTarget = srcIO.direct, dstIO.direct
	if srcIO.direct || dstIO.direct {
		extents = widen(extents, span)
	}
	extents = mergeGaps(extents, opts.MergeGap)
	total := extent.Total(extents)
	if opts.Total != 0 {
		total = opts.Total
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(Phase, int64, int64) {}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) { cancel(err) }

	free := make(chan *buffer, nbuf)
	for range nbuf {
		free <- &buffer{data: AlignedBuffer(bufSize)}
	}
	toWriter := make(chan *buffer, nbuf)
	var toBackup chan *buffer
	var img *imager
	if opts.Backup != nil {
		var err error
		if img, err = newImager(opts.Backup, opts.BackupLevel, span.Off); err != nil {
			return res, err
		}
		toBackup = make(chan *buffer, nbuf)
	}
	var sums []chunkSum

	start := time.Now()
	var wg sync.WaitGroup
	// Reader: fills buffers in offset order and hashes what it read.
	wg.Go(func() {
		defer close(toWriter)
		if toBackup != nil {
			defer close(toBackup)
		}
		eof, err := readExtents(ctx, srcIO, extents, free, func(b *buffer) bool {
			for _, s := range b.segs {
				if opts.OnRead != nil {
					opts.OnRead(s.off, b.data[s.at:s.at+s.n])
				}
				res.Read += int64(s.n)
				if opts.Verify {
					sums = appendSums(sums, b.data[s.at:s.at+s.n], s.off+opts.Shift)
				}
			}
			if opts.Rate > 0 && !throttle(ctx, start, res.Read, opts.Rate) {
				return false
			}
			b.refs = 1
			if toBackup != nil {
				b.refs = 2
			}
			select {
			case toWriter <- b:
			case <-ctx.Done():
				return false
			}
			if toBackup != nil {
				select {
				case toBackup <- b:
				case <-ctx.Done():
					return false
				}
			}
			return true
		})
		res.EOF = eof
		if err != nil {
			fail(err)
		}
	})
	// Writer.
	wg.Go(func() {
		for b := range toWriter {
			if ctx.Err() == nil {
				for _, s := range b.segs {
					if err := dstIO.writeAt(b.data[s.at:s.at+s.n], s.off+opts.Shift); err != nil {
						fail(err)
						break
					}
					res.Written += int64(s.n)
				}
				progress(PhaseCopy, res.Written, total)
			}
			b.release(free)
		}
	})
	// Backup: the same buffers, zeros for the gaps, into zstd frames.
	if toBackup != nil {
		wg.Go(func() {
			for b := range toBackup {
				if ctx.Err() == nil {
					for _, s := range b.segs {
						if err := img.writeAt(b.data[s.at:s.at+s.n], s.off); err != nil {
							fail(err)
							break
						}
					}
				}
				b.release(free)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		if img != nil {
			img.abort()
		}
		res.CopyTime = time.Since(start)
		return res, err
	}
	if img != nil {
		// A source that ended early is imaged up to where it ended.
		end := span.End()
		if res.EOF && len(extents) > 0 {
			end = img.pos
		}
		n, err := img.close(end)
		res.BackupIn, res.BackupOut = img.pos-span.Off, n
		if err != nil {
			res.CopyTime = time.Since(start)
			return res, fmt.Errorf("backup: %w", err)
		}
	}
	if opts.Sync || opts.Verify {
		if err := dstIO.sync(); err != nil {
			res.CopyTime = time.Since(start)
			return res, err
		}
	}
	progress(PhaseCopy, res.Written, total)
	res.CopyTime = time.Since(start)

	if opts.Verify {
		vstart := time.Now()
		err := verify(ctx, dstIO, srcIO, sums, opts.Shift, bufSize, nbuf, &res.Verified, progress)
		res.VerifyTime = time.Since(vstart)
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// throttle waits until done bytes since start keep within rate bytes a
// second; false when ctx ended first.
func throttle(ctx context.Context, start time.Time, done, rate int64) bool {
	due := start.Add(time.Duration(float64(done) / float64(rate) * float64(time.Second)))
	wait := time.Until(due)
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readExtents reads the extents in order into buffers taken from free and
// hands each full (or last) buffer to emit. Pieces start at Align
// boundaries of the buffer so that O_DIRECT can read into them.
func readExtents(ctx context.Context, src *directFile, extents []extent.Extent, free chan *buffer, emit func(*buffer) bool) (eof bool, err error) {
	var b *buffer
	flush := func() bool {
		if b == nil || len(b.segs) == 0 {
			return true
		}
		ok := emit(b)
		b = nil
		return ok
	}
	for _, e := range extents {
		off, end := e.Off, e.End()
		for off < end {
			if b == nil {
				select {
				case b = <-free:
					b.segs = b.segs[:0]
				case <-ctx.Done():
					return false, nil
				}
			}
			at := 0
			if n := len(b.segs); n > 0 {
				last := b.segs[n-1]
				at = alignUp(last.at+last.n, Align)
			}
			room := len(b.data) - at
			if room <= 0 {
				if !flush() {
					return false, nil
				}
				continue
			}
			want := int(min(int64(room), end-off))
			n, err := src.readAt(b.data[at:at+want], off)
			if n > 0 {
				// Merge with the previous segment when contiguous, so the
				// writer issues one large write.
				if k := len(b.segs); k > 0 && b.segs[k-1].off+int64(b.segs[k-1].n) == off && b.segs[k-1].at+b.segs[k-1].n == at {
					b.segs[k-1].n += n
				} else {
					b.segs = append(b.segs, segment{off: off, at: at, n: n})
				}
				off += int64(n)
			}
			if err == io.EOF || (err == nil && n < want) {
				flush()
				return true, nil
			}
			if err != nil {
				return false, err
			}
		}
	}
	flush()
	return false, nil
}

// widen rounds every extent out to Align (within span) so that O_DIRECT
// can read and write it whole; the few extra bytes are unused blocks.
func widen(extents []extent.Extent, span extent.Extent) []extent.Extent {
	out := make([]extent.Extent, 0, len(extents))
	for _, e := range extents {
		off := e.Off &^ (Align - 1)
		end := int64(alignUp64(e.End(), Align))
		if span.Len > 0 {
			off = max(off, span.Off)
			end = min(end, span.End())
		}
		out = append(out, extent.Extent{Off: off, Len: end - off})
	}
	return extent.Normalize(out)
}

// mergeGaps joins normalized extents less than gap bytes apart.
func mergeGaps(extents []extent.Extent, gap int64) []extent.Extent {
	if gap <= 0 || len(extents) < 2 {
		return extents
	}
	out := []extent.Extent{extents[0]}
	for _, e := range extents[1:] {
		last := &out[len(out)-1]
		if e.Off-last.End() <= gap {
			last.Len = e.End() - last.Off
			continue
		}
		out = append(out, e)
	}
	return out
}

func alignUp(n, a int) int             { return (n + a - 1) &^ (a - 1) }
func alignUp64(n int64, a int64) int64 { return (n + a - 1) &^ (a - 1) }

// pathOf names a file for errors.
func pathOf(x any) string {
	if f, ok := x.(*os.File); ok {
		return f.Name()
	}
	return fmt.Sprintf("%T", x)
}
