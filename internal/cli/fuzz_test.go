package cli

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseDuration: nothing panics; whatever parses is not negative,
// reads back the same through its String (what a flag's default shows),
// and bare digits mean seconds.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90", "0", "1.5", "90s", "2m", "1m30s", "-1", "1e9", "inf", ".", "9223372036", "9223372037", "", " 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
		back, err := ParseDuration(d.String())
		if err != nil || back != d {
			t.Fatalf("ParseDuration(%q) = %v, whose String %q reads back as %v, %v", s, d, d.String(), back, err)
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32); err == nil && d != time.Duration(n)*time.Second {
			t.Fatalf("ParseDuration(%q) = %v, want %d seconds", s, d, n)
		}
	})
}
