// Package extent is the byte-range type shared by the filesystem readers
// (which say what is in use) and the copy engine (which copies it).
package extent

import "sort"

// Extent is a byte range [Off, Off+Len) of a device or image.
type Extent struct {
	Off int64
	Len int64
}

// End is the first byte after the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// Normalize sorts extents, drops empty ones and merges the overlapping or
// touching ones, so the copier reads each byte once, in order.
func Normalize(in []Extent) []Extent {
	out := make([]Extent, 0, len(in))
	for _, e := range in {
		if e.Len > 0 {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	merged := out[:0]
	for _, e := range out {
		if n := len(merged); n > 0 && e.Off <= merged[n-1].End() {
			if e.End() > merged[n-1].End() {
				merged[n-1].Len = e.End() - merged[n-1].Off
			}
			continue
		}
		merged = append(merged, e)
	}
	return merged
}

// Total is the number of bytes the extents cover (they must be normalized).
func Total(es []Extent) int64 {
	var n int64
	for _, e := range es {
		n += e.Len
	}
	return n
}
