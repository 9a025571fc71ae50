package dd

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		done, total int64
		elapsed     time.Duration
		want        string
	}{
		{500e6, 1e9, 5 * time.Second, "copy 500 MB of 1.0 GB (50%), 100 MB/s, 5 seconds left"},
		{1e9, 1e9, 10 * time.Second, "copy 1.0 GB of 1.0 GB (100%), 100 MB/s"},
		{100e6, 100e9, 10 * time.Second, "copy 100 MB of 100 GB (0%), 10 MB/s, 2 hours left"},
		{3e6, -1, 2 * time.Second, "copy 3.0 MB, 1.5 MB/s"},
	} {
		if got := line("copy", tc.done, tc.total, tc.elapsed, now); got != tc.want {
			t.Errorf("line(%d, %d, %v) = %q, want %q", tc.done, tc.total, tc.elapsed, got, tc.want)
		}
	}
}

// A log gets a line every 5 s, never a carriage return.
func TestProgressNotATerminal(t *testing.T) {
	var buf bytes.Buffer
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newProgress(&buf, func() time.Time { return clock })
	for i := range 21 {
		clock = clock.Add(time.Second)
		p.update("copy", int64(i+1)<<20, 21<<20)
	}
	p.end()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 4 || strings.Contains(buf.String(), "\r") {
		t.Errorf("got %d lines %q, want 4 without \\r", len(lines), buf.String())
	}
}
