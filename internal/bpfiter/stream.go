package bpfiter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unsafe"
)

// stream is an iterator's whole output, read in one go. Names are
// substrings of it: no allocation per path, where a string each would
// cost more than the kernel's work for the record. The bytes are never
// written once read, so the string shares them rather than copying: a
// copy would be another fresh page to fault in per 4 KiB of records,
// ~1.7 µs each on this kind of machine.
type stream struct {
	b   []byte // the records
	s   string // the same bytes, for names
	off int
}

// readStream reads r to its end.
func readStream(r io.Reader) (*stream, error) {
	b := make([]byte, 0, 1<<20)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) || err == nil && n == 0 {
			if len(b) == 0 {
				return &stream{}, nil
			}
			return &stream{b: b, s: unsafe.String(&b[0], len(b))}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("bpf iterator: read: %w", err)
		}
	}
}

// next returns the next n bytes; io.EOF when the stream ended cleanly
// before them.
func (s *stream) next(n int) ([]byte, error) {
	switch {
	case s.off+n <= len(s.b):
		b := s.b[s.off : s.off+n]
		s.off += n
		return b, nil
	case s.off == len(s.b):
		return nil, io.EOF
	}
	return nil, fmt.Errorf("bpf iterator: %d bytes of a truncated record", len(s.b)-s.off)
}

// name returns the n bytes before the current offset as a string.
func (s *stream) name(n int) string { return s.s[s.off-n : s.off] }

// segment reads a length-prefixed path: ok false when d_path failed or
// the path did not fit (read it from /proc instead); "" with ok for no
// path at all.
func (s *stream) segment() (name string, ok bool, err error) {
	h, err := s.next(4)
	if err != nil {
		return "", false, cutShort(err)
	}
	ret := int32(binary.LittleEndian.Uint32(h))
	switch {
	case ret == 0:
		return "", true, nil
	case ret < 0:
		return "", false, nil
	case ret > pathMax:
		return "", false, fmt.Errorf("bpf iterator: malformed record")
	}
	if _, err := s.next(int(ret)); err != nil {
		return "", false, cutShort(err)
	}
	return s.s[s.off-int(ret) : s.off-1], true, nil // without the NUL
}

func cutShort(err error) error {
	if err == io.EOF {
		return fmt.Errorf("bpf iterator: record cut short")
	}
	return err
}
