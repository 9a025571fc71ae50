package ext

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/extent"
	"github.com/rootswap/rootswap/internal/testutil"
)

// Helpers that build real images with e2fsprogs and judge them with it.

func requireE2fsprogs(t testing.TB) {
	t.Helper()
	testutil.RequireTool(t, "mkfs.ext2", "mkfs.ext3", "mkfs.ext4", "e2fsck", "debugfs", "dumpe2fs")
}

// makeTree fills dir with random files totalling about size bytes (plus a
// few directories, an empty file and a symlink), reproducibly from seed.
func makeTree(t testing.TB, dir string, seed uint64, size int64) {
	t.Helper()
	src := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	rng := rand.New(src)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "etc", "deep", "er"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc", "empty"), nil, 0o644))
	must(os.Symlink("../etc/deep", filepath.Join(dir, "etc", "link")))
	var written int64
	for i := 0; written < size; i++ {
		n := min(size-written, int64(rng.ExpFloat64()*float64(max(size/20, 1)))+1)
		buf := make([]byte, n)
		src.Read(buf)
		sub := []string{"", "etc", "etc/deep", "etc/deep/er"}[i%4]
		must(os.WriteFile(filepath.Join(dir, sub, fmt.Sprintf("f%03d", i)), buf, 0o644))
		written += n
	}
}

// mkfs runs prog (mkfs.ext2/3/4) to make a fresh image of size with the
// contents of src.
func mkfs(t testing.TB, prog, img, size, src string, args ...string) {
	t.Helper()
	a := append([]string{"-F", "-q"}, args...)
	if src != "" {
		a = append(a, "-d", src)
	}
	testutil.Run(t, prog, append(a, img, size)...)
}

// dumpe2fsUsed is the oracle: the byte ranges libext2fs considers in use,
// the whole filesystem minus every "Free blocks:" range dumpe2fs lists
// (which for BLOCK_UNINIT groups libext2fs computes, like we do).
func dumpe2fsUsed(t testing.TB, img string) (used []extent.Extent, uninit int) {
	t.Helper()
	out, err := exec.Command("dumpe2fs", img).Output()
	if err != nil {
		t.Fatalf("dumpe2fs %s: %v", img, err)
	}
	var blocks, bs int64
	var free []extent.Extent
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Block count:"); ok {
			blocks = atoi(t, v)
		}
		if v, ok := strings.CutPrefix(line, "Block size:"); ok {
			bs = atoi(t, v)
		}
		if strings.HasPrefix(line, "Group ") && strings.Contains(line, "BLOCK_UNINIT") {
			uninit++
		}
		v, ok := strings.CutPrefix(line, "  Free blocks: ")
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		for _, r := range strings.Split(v, ", ") {
			lo, hi, found := strings.Cut(r, "-")
			if !found {
				hi = lo
			}
			a, b := atoi(t, lo), atoi(t, hi)
			free = append(free, extent.Extent{Off: a * bs, Len: (b - a + 1) * bs})
		}
	}
	if blocks == 0 || bs == 0 {
		t.Fatalf("dumpe2fs %s: no block count or size in:\n%s", img, out)
	}
	free = extent.Normalize(free)
	var pos int64
	for _, f := range free {
		used = append(used, extent.Extent{Off: pos, Len: f.Off - pos})
		pos = f.End()
	}
	used = append(used, extent.Extent{Off: pos, Len: blocks*bs - pos})
	return extent.Normalize(used), uninit
}

func atoi(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		t.Fatalf("dumpe2fs: %v", err)
	}
	return n
}

// copyOntoGarbage makes dst, as big as src and full of random bytes, and
// copies only the extents of src onto it: what the copier will do to a
// device that held something else.
func copyOntoGarbage(t testing.TB, src, dst string, es []extent.Extent, seed uint64) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	size, err := in.Seek(0, io.SeekEnd) // Stat says 0 for a block device
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	rng := rand.NewChaCha8([32]byte{byte(seed), 0xAA})
	buf := make([]byte, 1<<20)
	w := bufio.NewWriterSize(out, len(buf))
	for left := size; left > 0; left -= int64(len(buf)) {
		b := buf[:min(left, int64(len(buf)))]
		rng.Read(b)
		if _, err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		for off := e.Off; off < e.End(); {
			b := buf[:min(e.End()-off, int64(len(buf)))]
			if _, err := in.ReadAt(b, off); err != nil {
				t.Fatalf("reading %s at %d: %v", src, off, err)
			}
			if _, err := out.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
			off += int64(len(b))
		}
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// compareTrees fails unless got holds exactly want's files, directories
// and symlinks (got may also have lost+found), byte for byte.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		g := filepath.Join(got, rel)
		gi, err := os.Lstat(g)
		if err != nil {
			t.Errorf("%s: missing in the copy: %v", rel, err)
			return nil
		}
		if gi.Mode().Type() != d.Type() {
			t.Errorf("%s: type %v in the copy, want %v", rel, gi.Mode().Type(), d.Type())
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			a, _ := os.Readlink(p)
			b, _ := os.Readlink(g)
			if a != b {
				t.Errorf("%s: symlink to %q in the copy, want %q", rel, b, a)
			}
		case d.Type().IsRegular():
			a, err1 := os.ReadFile(p)
			b, err2 := os.ReadFile(g)
			if err1 != nil || err2 != nil {
				t.Errorf("%s: %v %v", rel, err1, err2)
			} else if !bytes.Equal(a, b) {
				t.Errorf("%s: content differs in the copy (%d bytes, want %d)", rel, len(b), len(a))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(got, p)
		if rel == "lost+found" {
			return filepath.SkipDir
		}
		if err == nil && !seen[rel] {
			t.Errorf("%s: in the copy but not in the source", rel)
		}
		return nil
	})
}
