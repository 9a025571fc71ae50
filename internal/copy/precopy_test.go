package copy

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/extent"
)

// fakeTracker records the ranges a fake writer wrote; lose makes it
// fail from the given call on.
type fakeTracker struct {
	mu      sync.Mutex
	pending []extent.Extent
	calls   int
	loseAt  int // 0: never
	closed  bool
}

func (f *fakeTracker) wrote(off, n int64) {
	f.mu.Lock()
	f.pending = append(f.pending, extent.Extent{Off: off, Len: n})
	f.mu.Unlock()
}

func (f *fakeTracker) Changed() ([]extent.Extent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.loseAt > 0 && f.calls >= f.loseAt {
		return nil, errors.New("fake tracker lost a write")
	}
	out := extent.Normalize(f.pending)
	f.pending = nil
	return out, nil
}

func (f *fakeTracker) Close() error { f.closed = true; return nil }

// writer rewrites and appends to a file-backed "device" until stopped,
// telling the tracker after each write completes, as the block layer's
// completion does.
func writer(dev *os.File, size int64, used *usedArea, tr *fakeTracker, seed uint64) (stop func() int) {
	done := make(chan struct{})
	var n int
	var wg sync.WaitGroup
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 7))
		buf := make([]byte, 64<<10)
		for {
			select {
			case <-done:
				return
			default:
			}
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			l := int64(4096 * (1 + rng.IntN(16)))
			var off int64
			if rng.IntN(4) == 0 {
				off = used.grow(l) // "append": a block unused until now
			} else {
				off = rng.Int64N(size/4096-16) * 4096 // rewrite
			}
			if off+l > size {
				continue
			}
			if _, err := dev.WriteAt(buf[:l], off); err != nil {
				panic(err)
			}
			if tr != nil {
				tr.wrote(off, l)
			}
			n++
			time.Sleep(200 * time.Microsecond)
		}
	})
	return func() int { close(done); wg.Wait(); return n }
}

// usedArea is the fake filesystem's used extents: the first half of the
// device, growing.
type usedArea struct {
	mu  sync.Mutex
	end int64
}

func (u *usedArea) grow(n int64) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	off := u.end
	u.end += n
	return off
}

func (u *usedArea) extents() ([]extent.Extent, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return []extent.Extent{{Off: 0, Len: u.end}, {Off: 60 << 20, Len: 8192}}, nil
}

// TestPrecopyWithWriter: a file-backed device written throughout the
// live rounds ends identical, over the used area, to its copy after the
// frozen round; with the tracker, with no tracker (the hash compare)
// and with a tracker that gives up half-way.
func TestPrecopyWithWriter(t *testing.T) {
	const size = 64 << 20
	for _, tc := range []struct {
		name    string
		tracker bool
		loseAt  int
		how     string // the frozen round's
	}{
		{"tracked", true, 0, "tracked"},
		{"hashed", false, 0, "hashed"},
		{"tracker-lost", true, 2, "hashed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srcPath, _ := randomFile(t, dir, "src", size, 1)
			dstPath := garbage(t, dir, "dst", size)
			src, dst := open(t, srcPath, os.O_RDWR), open(t, dstPath, os.O_RDWR)
			used := &usedArea{end: 24 << 20}
			var tr *fakeTracker
			opts := PrecopyOptions{Size: size, Used: used.extents, Rate: 200 << 20, BufSize: 1 << 20}
			if tc.tracker {
				tr = &fakeTracker{loseAt: tc.loseAt}
				opts.Tracker = tr
			}
			p := NewPrecopy(dst, src, opts)
			stop := writer(src, size, used, tr, 3)
			ctx := context.Background()
			if _, err := p.First(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Converge(ctx, 3, 0, nil); err != nil {
				t.Fatal(err)
			}
			writes := stop() // the freeze
			final, err := p.Final(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if final.How != tc.how {
				t.Errorf("frozen round %s, want %s (%v)", final.How, tc.how, p.Rounds())
			}
			if writes < 10 {
				t.Fatalf("only %d writes during the pre-copy: the test proves nothing", writes)
			}
			es, _ := used.extents()
			for _, e := range grid(es, size) {
				a, b := make([]byte, e.Len), make([]byte, e.Len)
				src.ReadAt(a, e.Off)
				dst.ReadAt(b, e.Off)
				if !bytes.Equal(a, b) {
					for i := range a {
						if a[i] != b[i] {
							t.Fatalf("target differs at %d (rounds %v)", e.Off+int64(i), p.Rounds())
						}
					}
				}
			}
			if tc.how == "hashed" && final.Read < extent.Total(grid(es, size)) {
				t.Errorf("hash compare read %d of the %d used bytes", final.Read, extent.Total(grid(es, size)))
			}
			t.Logf("%d writes; rounds %v", writes, p.Rounds())
		})
	}
}

// TestPrecopyFinalCopiesOnlyChanges: with a still source, the frozen
// round copies exactly the tracked changes, and the hash compare finds
// exactly the changed chunks.
func TestPrecopyFinalCopiesOnlyChanges(t *testing.T) {
	const size = 16 << 20
	for _, tracked := range []bool{true, false} {
		dir := t.TempDir()
		srcPath, _ := randomFile(t, dir, "src", size, 5)
		dstPath := garbage(t, dir, "dst", size)
		src, dst := open(t, srcPath, os.O_RDWR), open(t, dstPath, os.O_RDWR)
		opts := PrecopyOptions{Size: size}
		tr := &fakeTracker{}
		if tracked {
			opts.Tracker = tr
		}
		p := NewPrecopy(dst, src, opts)
		if _, err := p.First(context.Background()); err != nil {
			t.Fatal(err)
		}
		src.WriteAt(bytes.Repeat([]byte{0xaa}, 4096), 5<<20+8192)
		tr.wrote(5<<20+8192, 4096)
		r, err := p.Final(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := int64(4096)
		if !tracked {
			want = HashChunk
		}
		if r.Changed != want || r.Copied != want {
			t.Errorf("tracked=%v: changed %d, copied %d; want %d", tracked, r.Changed, r.Copied, want)
		}
		a, b := make([]byte, size), make([]byte, size)
		src.ReadAt(a, 0)
		dst.ReadAt(b, 0)
		if !bytes.Equal(a, b) {
			t.Errorf("tracked=%v: target differs", tracked)
		}
	}
}

func TestPrecopyRate(t *testing.T) {
	dir := t.TempDir()
	srcPath, _ := randomFile(t, dir, "src", 4<<20, 5)
	dstPath := garbage(t, dir, "dst", 4<<20)
	p := NewPrecopy(open(t, dstPath, os.O_RDWR), open(t, srcPath, os.O_RDONLY), PrecopyOptions{Size: 4 << 20, Rate: 16 << 20, BufSize: 1 << 20})
	r, err := p.First(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 4 MiB at 16 MiB/s: the last buffer waits until 3/16 s.
	if r.Took < 150*time.Millisecond {
		t.Errorf("4 MiB at --precopy-rate 16 MiB/s took %s", r.Took)
	}
}

func TestTrackChunkBudget(t *testing.T) {
	for _, tc := range []struct{ size, used int64 }{
		{2 << 30, 733 << 20}, {1 << 40, 100 << 30}, {1 << 40, 1 << 40}, {8 << 40, 1 << 40}, {64 << 20, 1 << 20},
	} {
		c := TrackChunk(tc.size, tc.used)
		mem := TrackingMemory(tc.size, tc.used, c)
		perTiB := float64(mem) / float64(tc.used) * (1 << 40)
		if perTiB > 64<<20 && tc.used >= 1<<30 {
			t.Errorf("size %d used %d: chunk %d, %d bytes: %.1f MiB per TiB used", tc.size, tc.used, c, mem, perTiB/(1<<20))
		}
		if c < 4096 || c&(c-1) != 0 {
			t.Errorf("chunk %d", c)
		}
	}
}
