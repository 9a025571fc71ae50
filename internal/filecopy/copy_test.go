package filecopy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// write makes the file p (and its directories) with data.
func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// same fails the test with every difference Compare finds.
func same(t *testing.T, a, b string, c Check) {
	t.Helper()
	diffs, err := Compare(a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("the copy differs:\n%s", strings.Join(diffs, "\n"))
	}
}

// A tree any user can make: files, a big one, holes, hard links,
// symlinks, a fifo, times to the nanosecond, modes; copied, compared.
func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	populatePlain(t, src)
	st, err := Copy(context.Background(), dst, src, Options{Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	same(t, src, dst, Content|Atime)
	if st.Links != 2 || st.Files != 4 || st.Others != 3 {
		t.Errorf("stats %v: want 4 files, 2 hard links, 3 others", st)
	}
}

func populatePlain(t *testing.T, src string) {
	write(t, src+"/a/b/c/file", "hello")
	write(t, src+"/a/exec", "#!/bin/sh\n")
	must(t, os.Chmod(src+"/a/exec", 0o751))
	big := strings.Repeat("0123456789abcdef", 1<<17) // 2 MiB: more than a buffer
	write(t, src+"/big", big)
	must(t, os.Link(src+"/big", src+"/a/big-link"))
	must(t, os.Link(src+"/big", src+"/a/b/big-link2"))
	f, err := os.Create(src + "/sparse")
	must(t, err)
	f.WriteAt([]byte("data"), 1<<20)
	f.WriteAt([]byte("more"), 5<<20)
	must(t, f.Truncate(8<<20))
	f.Close()
	must(t, os.Symlink("a/b/c/file", src+"/link"))
	must(t, os.Symlink("/nowhere", src+"/dangling"))
	must(t, unix.Mkfifo(src+"/fifo", 0o640))
	must(t, os.Mkdir(src+"/empty", 0o1777))
	ts := []unix.Timespec{{Sec: 1_600_000_000, Nsec: 123456789}, {Sec: 1_500_000_000, Nsec: 987654321}}
	for _, p := range []string{"/a/b/c/file", "/big", "/sparse", "/link", "/fifo", "/empty", "/a/b/c", "/a"} {
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, src+p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// The checker finds each kind of difference it claims to.
func TestCompareFindsDifferences(t *testing.T) {
	src := t.TempDir()
	populatePlain(t, src)
	for _, tc := range []struct {
		name, want string
		change     func(dst string) error
	}{
		{"missing", "missing in the copy", func(d string) error { return os.Remove(d + "/fifo") }},
		{"extra", "only in the copy", func(d string) error { return os.WriteFile(d+"/extra", nil, 0o644) }},
		{"mode", "Mode:", func(d string) error { return os.Chmod(d+"/a/exec", 0o755) }},
		{"mtime", "Mtime:", func(d string) error { return os.Chtimes(d+"/big", time.Now(), time.Now()) }},
		{"content", "contents differ", func(d string) error {
			f, err := os.OpenFile(d+"/a/b/c/file", os.O_WRONLY, 0)
			if err == nil {
				f.WriteAt([]byte("J"), 0)
				f.Close()
				err = unix.UtimesNanoAt(unix.AT_FDCWD, d+"/a/b/c/file", []unix.Timespec{{Sec: 1_600_000_000, Nsec: 123456789}, {Sec: 1_500_000_000, Nsec: 987654321}}, 0)
			}
			return err
		}},
		{"links", "Nlink:", func(d string) error {
			os.Remove(d + "/a/big-link")
			return os.WriteFile(d+"/a/big-link", []byte("x"), 0o644)
		}},
		{"symlink", "Link:a/b/c/filf", func(d string) error {
			os.Remove(d + "/link")
			return os.Symlink("a/b/c/filf", d+"/link")
		}},
		{"holes", "Sparse:true", func(d string) error {
			b, _ := os.ReadFile(d + "/sparse")
			return os.WriteFile(d+"/sparse", b, 0o644)
		}},
		{"xattr", "Xattrs:user.x=1", func(d string) error { return unix.Setxattr(d+"/big", "user.x", []byte("1"), 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := t.TempDir()
			if _, err := Copy(context.Background(), dst, src, Options{}); err != nil {
				t.Fatal(err)
			}
			if err := tc.change(dst); err != nil {
				t.Fatal(err)
			}
			diffs, err := Compare(src, dst, Content|Atime)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(diffs, func(d string) bool { return strings.Contains(d, tc.want) }) {
				t.Errorf("Compare found %q, want one with %q", diffs, tc.want)
			}
		})
	}
}

// The delta pass after changes of every kind leaves a copy equal to the
// source: changed data with the mtime put back (only ctime tells),
// deletions of files and trees, new hard links, a removed link, a file
// that became a directory, a renamed directory, a chmod, a new xattr,
// a new symlink target.
func TestDeltaPass(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	populatePlain(t, src)
	write(t, src+"/gone/deep/file", "x")
	write(t, src+"/becomes-dir", "x")
	write(t, src+"/moved/inside", "y")
	write(t, src+"/two", "2")
	must(t, os.Link(src+"/two", src+"/two-b"))
	since := time.Now()
	if _, err := Copy(context.Background(), dst, src, Options{NoFlags: true}); err != nil {
		t.Fatal(err)
	}
	// Changes while the first pass "ran".
	f, err := os.OpenFile(src+"/a/b/c/file", os.O_WRONLY, 0)
	must(t, err)
	f.WriteAt([]byte("J"), 0)
	f.Close()
	ts := []unix.Timespec{{Sec: 1_600_000_000, Nsec: 123456789}, {Sec: 1_500_000_000, Nsec: 987654321}}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, src+"/a/b/c/file", ts, 0))
	must(t, os.RemoveAll(src+"/gone"))
	must(t, os.Remove(src+"/becomes-dir"))
	write(t, src+"/becomes-dir/now", "z")
	must(t, os.Rename(src+"/moved", src+"/a/moved-here"))
	must(t, os.Link(src+"/a/exec", src+"/exec-link"))
	must(t, os.Remove(src+"/two-b"))
	must(t, os.Chmod(src+"/big", 0o600))
	must(t, unix.Setxattr(src+"/sparse", "user.new", []byte("v"), 0))
	must(t, os.Remove(src+"/link"))
	must(t, os.Symlink("big", src+"/link"))
	write(t, src+"/new/file", "n")

	st, err := Copy(context.Background(), dst, src, Options{Delta: true, Since: since})
	if err != nil {
		t.Fatal(err)
	}
	same(t, src, dst, Content|Atime)
	if st.Removed < 3 {
		t.Errorf("stats %v: want at least 3 removed (gone, becomes-dir, moved)", st)
	}
	// Nothing changed since: a second delta copies nothing.
	since2 := time.Now().Add(2 * time.Second) // past the coarse-clock margin
	st, err = Copy(context.Background(), dst, src, Options{Delta: true, Since: since2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files+st.Links+st.Others+st.Removed+st.Bytes != 0 {
		t.Errorf("a delta with nothing changed did %v", st)
	}
}

// A copy onto a new ext4 has the /lost+found mkfs made; a source on xfs
// or btrfs has none: not a difference (below the top it is one).
func TestCompareAllowsLostFound(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	write(t, src+"/a/f", "x")
	must(t, os.Mkdir(dst+"/lost+found", 0o700))
	if _, err := Copy(context.Background(), dst, src, Options{}); err != nil {
		t.Fatal(err)
	}
	same(t, src, dst, Content)
	fi, err := os.Stat(dst + "/a")
	must(t, err)
	must(t, os.Mkdir(dst+"/a/lost+found", 0o700))
	must(t, os.Chtimes(dst+"/a", fi.ModTime(), fi.ModTime()))
	if diffs, _ := Compare(src, dst, 0); len(diffs) != 1 || diffs[0] != "/a/lost+found: only in the copy" {
		t.Errorf("a lost+found below the top: %q, want that one difference", diffs)
	}
}

// Progress is told the counts as the copy goes: never more than the
// end's, never going back, and every entry is looked at once.
func TestCopyProgress(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for _, d := range []string{"a", "a/b", "c", "d"} {
		write(t, filepath.Join(src, d, "f"), "0123456789")
	}
	var calls []Stats
	st, err := Copy(context.Background(), dst, src, Options{Workers: 1, Progress: func(s Stats) { calls = append(calls, s) }})
	if err != nil {
		t.Fatal(err)
	}
	// a, a/b, c, d and their four files: one worker reports after each
	// of the five directories, and the end.
	if st.Seen != 8 || len(calls) != 6 {
		t.Fatalf("stats %v, %d progress calls: want 8 entries looked at, 6 calls", st, len(calls))
	}
	for i, c := range calls {
		if c.Bytes > st.Bytes || c.Seen > st.Seen || i > 0 && (c.Bytes < calls[i-1].Bytes || c.Seen < calls[i-1].Seen) {
			t.Errorf("progress %d: %v after %v, end %v", i, c, calls[max(i-1, 0)], st)
		}
	}
	if last := calls[len(calls)-1]; last != st {
		t.Errorf("last progress %v, want the end's %v", last, st)
	}
}
