package btf

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzParse feeds arbitrary blobs to Parse and, when they parse, looks up
// the names their string sections hold: nothing may panic or hang.
func FuzzParse(f *testing.F) {
	for _, bo := range []binary.AppendByteOrder{binary.LittleEndian, binary.BigEndian} {
		b, _ := synthetic(bo)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0x9f, 0xeb, 1, 0, 24, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			return
		}
		names := bytes.Split(s.strs, []byte{0})
		if len(names) > 32 {
			names = names[:32]
		}
		for _, n := range names {
			name := string(n)
			s.FuncID(name)
			s.Size(name)
			for _, m := range names[:min(4, len(names))] {
				s.Offset(name, string(m))
				s.Offset(name, string(m), name)
			}
		}
	})
}
