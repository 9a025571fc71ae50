package copy

import (
	"context"
	"hash/crc32"

	"github.com/rootswap/rootswap/internal/extent"
)

// castagnoli is CRC-32C, which amd64 and arm64 compute in hardware at
// many GB/s: hashing costs nothing next to the I/O.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkSum is the CRC of the bytes written to target range [Off, Off+Len).
type chunkSum struct {
	Off int64
	Len int32
	Sum uint32
}

// appendSums hashes p, written at target offset off, in hashChunk pieces
// aligned to absolute hashChunk boundaries.
func appendSums(sums []chunkSum, p []byte, off int64) []chunkSum {
	for len(p) > 0 {
		n := int(min(int64(len(p)), hashChunk-off%hashChunk))
		sums = append(sums, chunkSum{Off: off, Len: int32(n), Sum: crc32.Checksum(p[:n], castagnoli)})
		p, off = p[n:], off+int64(n)
	}
	return sums
}

// verify reads back every range in sums from the target and compares
// CRCs. A reader goroutine keeps the device busy while the previous
// buffer is hashed. On a mismatch, the source is read again to find the
// first differing byte and to tell a bad write from a source that
// changed under the copy.
func verify(ctx context.Context, dst, src *directFile, sums []chunkSum, shift int64, bufSize, nbuf int, verified *int64, progress func(Phase, int64, int64)) error {
	dst.dropCache()
	var total int64
	extents := make([]extent.Extent, 0, len(sums))
	for _, s := range sums {
		total += int64(s.Len)
		if n := len(extents); n > 0 && extents[n-1].End() == s.Off {
			extents[n-1].Len += int64(s.Len)
		} else {
			extents = append(extents, extent.Extent{Off: s.Off, Len: int64(s.Len)})
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	free := make(chan *buffer, nbuf)
	for range nbuf {
		free <- &buffer{data: AlignedBuffer(bufSize)}
	}
	full := make(chan *buffer, nbuf)
	var readErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(full)
		eof, err := readExtents(ctx, dst, extents, free, func(b *buffer) bool {
			select {
			case full <- b:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err == nil && eof {
			err = errShortTarget
		}
		readErr = err
	}()

	next := 0 // index into sums
	var mismatch error
	for b := range full {
		if mismatch == nil {
			for _, seg := range b.segs {
				p := b.data[seg.at : seg.at+seg.n]
				for len(p) > 0 && mismatch == nil {
					s := sums[next]
					n := int(s.Len)
					if crc32.Checksum(p[:n], castagnoli) != s.Sum {
						mismatch = locate(src, s, p[:n], shift)
						cancel(mismatch)
						break
					}
					*verified += int64(n)
					p, next = p[n:], next+1
				}
			}
			progress(PhaseVerify, *verified, total)
		}
		free <- b
	}
	<-done
	if mismatch != nil {
		return mismatch
	}
	if readErr != nil {
		return readErr
	}
	return context.Cause(ctx)
}

var errShortTarget = &shortTargetError{}

type shortTargetError struct{}

func (*shortTargetError) Error() string {
	return "verify: the target ended before everything written could be read back"
}

// locate finds the first bad byte of a chunk whose CRC did not match by
// reading the source range again.
func locate(src *directFile, s chunkSum, got []byte, shift int64) error {
	e := &MismatchError{Offset: s.Off, Chunk: extent.Extent{Off: s.Off, Len: int64(s.Len)}}
	want := AlignedBuffer(alignUp(int(s.Len), Align))[:s.Len]
	n, err := src.readAt(want, s.Off-shift)
	if err != nil && n < len(want) {
		// Cannot re-read: the chunk is all we can name.
		return e
	}
	// The source still hashing to what was copied means the write went
	// wrong; otherwise the source moved under the copy.
	e.SourceChanged = crc32.Checksum(want, castagnoli) != s.Sum
	for i := range got {
		if got[i] != want[i] {
			e.Offset, e.Got, e.Want = s.Off+int64(i), got[i], want[i]
			break
		}
	}
	return e
}
