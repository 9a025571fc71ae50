package bpfiter

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/rootswap/rootswap/internal/extent"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// loopDevice is a loop device over a fresh 64 MiB file.
func loopDevice(t *testing.T) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	return testutil.Loop(t, img)
}

// writeDirect writes n bytes of b at off, bypassing the page cache.
func writeDirect(t *testing.T, dev string, off int64, n int, b byte) {
	t.Helper()
	f, err := os.OpenFile(dev, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, n+4096)
	p := buf[(4096-int(uintptr(unsafeAddr(buf))%4096))%4096:][:n]
	for i := range p {
		p[i] = b
	}
	if _, err := f.WriteAt(p, off); err != nil {
		t.Fatal(err)
	}
}

// TestWatchWrites runs each program (and, refusing both, the error the
// copier falls back on) over a loop device: every write shows as its
// chunks, reads do not, and a collection clears what it returned.
func TestWatchWrites(t *testing.T) {
	testutil.RequireRoot(t)
	dev := loopDevice(t)
	k, _ := Open() // nil without BTF: the raw program is passed over
	for _, tc := range []struct {
		name   string
		refuse map[string]bool
		want   string // the program that runs; "" none
	}{
		{"raw", nil, "writes"},
		{"classic", map[string]bool{"writes": true}, "writes_tp"},
		{"none", map[string]bool{"writes": true, "writes_tp": true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := WatchWrites(WatchConfig{Device: dev, Chunk: 16 << 10, Kernel: k, Refuse: tc.refuse, VerifierLog: true})
			if tc.want == "" {
				if !errors.Is(err, ErrUnsupported) {
					t.Fatalf("both refused: got %v, want ErrUnsupported", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if w.Program != tc.want {
				t.Errorf("program %s runs, want %s (notes %q)", w.Program, tc.want, w.Notes())
			}
			if got, err := w.Changed(); err != nil || len(got) != 0 {
				t.Fatalf("before any write: %v, %v", got, err)
			}
			writeDirect(t, dev, 100<<10, 4096, 1)    // chunk 6
			writeDirect(t, dev, 1<<20-4096, 8192, 2) // chunks 63 and 64
			writeDirect(t, dev, 10<<20, 3<<20, 3)    // 192 chunks: 3+ words
			writeDirect(t, dev, 40<<20, 20<<20, 4)   // 1280 chunks: an overflow slot
			got, err := w.Changed()
			if err != nil {
				t.Fatal(err)
			}
			want := []extent.Extent{
				{Off: 96 << 10, Len: 16 << 10},
				{Off: 1<<20 - 16<<10, Len: 32 << 10},
				{Off: 10 << 20, Len: 3 << 20},
				{Off: 40 << 20, Len: 20 << 20},
			}
			if !slices.Equal(got, want) {
				t.Errorf("changed %v, want %v", got, want)
			}
			if got, err := w.Changed(); err != nil || len(got) != 0 {
				t.Errorf("second collection: %v, %v; want nothing", got, err)
			}
		})
	}
}
