package copy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every zstd frame (0xFD2FB528, little-endian).
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// IsZstd reports whether r starts with a zstd frame.
func IsZstd(r io.ReaderAt) bool {
	var b [4]byte
	n, _ := r.ReadAt(b[:], 0)
	return n == 4 && bytes.Equal(b[:], zstdMagic)
}

// ContentSize walks the frame and block headers of a zstd stream of size
// bytes and adds up the decompressed sizes the frame headers declare.
// known is false when a frame does not declare its size (zstd writing
// from a pipe); the walk reads a few bytes per 128 KiB block.
func ContentSize(r io.ReaderAt, size int64) (total int64, known bool, err error) {
	var off int64
	var b [18]byte
	for off < size {
		if _, err := r.ReadAt(b[:4], off); err != nil {
			return 0, false, fmt.Errorf("zstd frame at %d: %w", off, err)
		}
		magic := binary.LittleEndian.Uint32(b[:4])
		if magic&0xFFFFFFF0 == 0x184D2A50 { // skippable frame
			if _, err := r.ReadAt(b[:4], off+4); err != nil {
				return 0, false, fmt.Errorf("zstd skippable frame at %d: %w", off, err)
			}
			off += 8 + int64(binary.LittleEndian.Uint32(b[:4]))
			continue
		}
		if magic != 0xFD2FB528 {
			return 0, false, fmt.Errorf("not a zstd frame at offset %d (magic %#08x)", off, magic)
		}
		if _, err := r.ReadAt(b[:1], off+4); err != nil {
			return 0, false, fmt.Errorf("zstd frame header at %d: %w", off, err)
		}
		fhd := b[0]
		fcsFlag := fhd >> 6
		single := fhd&0x20 != 0
		checksum := fhd&0x04 != 0
		if fhd&0x08 != 0 {
			return 0, false, fmt.Errorf("zstd frame at %d: reserved header bit set", off)
		}
		dictLen := [4]int{0, 1, 2, 4}[fhd&3]
		fcsLen := [4]int{0, 2, 4, 8}[fcsFlag]
		if fcsFlag == 0 && single {
			fcsLen = 1
		}
		hdr := 5 + dictLen + fcsLen
		if !single {
			hdr++
		}
		if fcsLen > 0 {
			p := b[:fcsLen]
			if _, err := r.ReadAt(p, off+int64(hdr-fcsLen)); err != nil {
				return 0, false, fmt.Errorf("zstd frame header at %d: %w", off, err)
			}
			var fcs uint64
			switch fcsLen {
			case 1:
				fcs = uint64(p[0])
			case 2:
				fcs = uint64(binary.LittleEndian.Uint16(p)) + 256
			case 4:
				fcs = uint64(binary.LittleEndian.Uint32(p))
			case 8:
				fcs = binary.LittleEndian.Uint64(p)
			}
			if fcs > 1<<62 || total+int64(fcs) < total {
				return 0, false, fmt.Errorf("zstd frame at %d: content size %d out of range", off, fcs)
			}
			total += int64(fcs)
		} else {
			return 0, false, nil
		}
		off += int64(hdr)
		for {
			if _, err := r.ReadAt(b[:3], off); err != nil {
				return 0, false, fmt.Errorf("zstd block at %d: %w", off, err)
			}
			h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			last, typ, n := h&1 != 0, (h>>1)&3, int64(h>>3)
			switch typ {
			case 0, 2: // raw, compressed
			case 1: // RLE: one byte stored
				n = 1
			default:
				return 0, false, fmt.Errorf("zstd block at %d: reserved block type", off)
			}
			off += 3 + n
			if last {
				break
			}
		}
		if checksum {
			off += 4
		}
	}
	if off != size {
		return 0, false, fmt.Errorf("zstd stream: last frame runs past the end of the file (%d > %d)", off, size)
	}
	return total, true, nil
}

// Decompressor reads a zstd stream (a backup image) as plain bytes.
type Decompressor struct {
	*zstd.Decoder
}

// NewDecompressor decodes r with all cores.
func NewDecompressor(r io.Reader) (*Decompressor, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<40))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &Decompressor{d}, nil
}

// Close releases the decoder.
func (d *Decompressor) Close() error { d.Decoder.Close(); return nil }

// Sequential makes a stream usable as the source of Copy: reads must come
// at increasing offsets (which is how Copy reads); a gap is read and
// dropped. Each read is filled completely unless the stream ends.
func Sequential(r io.Reader) io.ReaderAt { return &sequential{r: r} }

type sequential struct {
	r   io.Reader
	pos int64
}

var errBackwards = errors.New("sequential source: read behind the current position")

func (s *sequential) ReadAt(p []byte, off int64) (int, error) {
	if off < s.pos {
		return 0, errBackwards
	}
	if off > s.pos {
		n, err := io.CopyN(io.Discard, s.r, off-s.pos)
		s.pos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}
