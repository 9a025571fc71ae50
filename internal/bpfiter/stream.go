package bpfiter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// stream reads the records an iterator writes.
type stream struct{ br *bufio.Reader }

func newStream(r io.Reader) *stream { return &stream{br: bufio.NewReaderSize(r, 256<<10)} }

// next returns the next n bytes, valid until the following call; io.EOF
// when the stream ended cleanly before them.
func (s *stream) next(n int) ([]byte, error) {
	b, err := s.br.Peek(n)
	if len(b) == n {
		s.br.Discard(n)
		return b, nil
	}
	switch {
	case len(b) == 0 && errors.Is(err, io.EOF):
		return nil, io.EOF
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("bpf iterator: %d bytes of a truncated record", len(b))
	}
	return nil, fmt.Errorf("bpf iterator: read: %w", err)
}

// segment reads a length-prefixed path: ok false when d_path failed or
// the path did not fit (read it from /proc instead); "" with ok for no
// path at all.
func (s *stream) segment(names map[string]string) (name string, ok bool, err error) {
	h, err := s.next(4)
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("bpf iterator: record cut short")
		}
		return "", false, err
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
	b, err := s.next(int(ret))
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("bpf iterator: record cut short")
		}
		return "", false, err
	}
	return intern(names, b[:ret-1]), true, nil // without the NUL
}

// intern returns b as a string, one copy per distinct name: many
// descriptors and mappings share a name.
func intern(names map[string]string, b []byte) string {
	if s, ok := names[string(b)]; ok {
		return s
	}
	s := string(b)
	names[s] = s
	return s
}
