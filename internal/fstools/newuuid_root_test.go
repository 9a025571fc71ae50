package fstools

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestNewUUIDLetsTheCopyMount does what the swap does to an xfs or
// btrfs root: the original stays mounted read-only, its block copy gets
// NewUUIDArgs, and the copy must then mount beside it (xfs refuses a
// duplicate UUID; btrfs before Linux 6.7 a duplicate fsid) and keep its
// files and label.
func TestNewUUIDLetsTheCopyMount(t *testing.T) {
	for _, tc := range []struct {
		fstype string
		size   int64
		mkfs   []string
		data   string // mount data for both mounts
	}{
		{"xfs", 320 << 20, []string{"mkfs.xfs", "-q", "-L", "root"}, ""},
		{"btrfs", 256 << 20, []string{"mkfs.btrfs", "-q", "-L", "root"}, ""},
	} {
		t.Run(tc.fstype, func(t *testing.T) {
			testutil.RequireRoot(t)
			args, err := NewUUIDArgs(tc.fstype, "DEV")
			if err != nil {
				t.Fatal(err)
			}
			testutil.RequireTool(t, tc.mkfs[0], args[0])
			dir := t.TempDir()
			orig := testutil.Image(t, dir, "orig.img", tc.size)
			testutil.Run(t, tc.mkfs[0], append(tc.mkfs[1:], orig)...)
			copyImg := testutil.Image(t, dir, "copy.img", tc.size)
			a, b := testutil.Loop(t, orig), testutil.Loop(t, copyImg)
			ma, mb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
			os.Mkdir(ma, 0o755)
			os.Mkdir(mb, 0o755)
			testutil.InMountNS(t, func() {
				if err := unix.Mount(a, ma, tc.fstype, 0, tc.data); err != nil {
					t.Errorf("mount %s: %v", a, err)
					return
				}
				defer unix.Unmount(ma, unix.MNT_DETACH)
				if err := os.WriteFile(filepath.Join(ma, "f"), []byte("kept"), 0o644); err != nil {
					t.Error(err)
					return
				}
				// The swap's remount-ro: the log is written back and marked
				// clean, which xfs_admin needs.
				if err := unix.Mount("", ma, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
					t.Errorf("remount ro: %v", err)
					return
				}
				testutil.Run(t, "dd", "if="+a, "of="+b, "bs=1M", "conv=fsync", "status=none")
				before, _ := DetectPath(b)
				argv, _ := NewUUIDArgs(tc.fstype, b)
				testutil.Run(t, argv[0], argv[1:]...)
				after, err := DetectPath(b)
				if err != nil {
					t.Error(err)
					return
				}
				orig, _ := DetectPath(a)
				if after.UUID == "" || strings.EqualFold(after.UUID, orig.UUID) || !strings.EqualFold(before.UUID, orig.UUID) {
					t.Errorf("UUIDs: original %s, copy %s before and %s after %v", orig.UUID, before.UUID, after.UUID, argv)
				}
				if after.Label != "root" || after.Type != tc.fstype {
					t.Errorf("copy after %v: %s, want a %s labelled root", argv, after, tc.fstype)
				}
				if err := unix.Mount(b, mb, tc.fstype, 0, tc.data); err != nil {
					t.Errorf("mount the copy %s beside the original: %v", b, err)
					return
				}
				defer unix.Unmount(mb, 0)
				if got, err := os.ReadFile(filepath.Join(mb, "f")); string(got) != "kept" {
					t.Errorf("the copy's f = %q, %v; want kept", got, err)
				}
			})
		})
	}
}

// TestNewUUIDDirtyXFSLog: a copy of an xfs filesystem taken while it was
// mounted read-write has a dirty log; xfs_admin leaves it alone (never
// zeroes the log) but exits 0 all the same (xfsprogs 6.1), which is why
// the swap reads the UUID back instead of trusting the status.
func TestNewUUIDDirtyXFSLog(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.xfs", "xfs_admin", "xfs_io")
	dir := t.TempDir()
	orig := testutil.Image(t, dir, "orig.img", 320<<20)
	testutil.Run(t, "mkfs.xfs", "-q", orig)
	copyImg := testutil.Image(t, dir, "copy.img", 320<<20)
	a, b := testutil.Loop(t, orig), testutil.Loop(t, copyImg)
	ma := filepath.Join(dir, "a")
	os.Mkdir(ma, 0o755)
	testutil.InMountNS(t, func() {
		if err := unix.Mount(a, ma, "xfs", 0, ""); err != nil {
			t.Errorf("mount %s: %v", a, err)
			return
		}
		defer unix.Unmount(ma, unix.MNT_DETACH)
		// Metadata in the log, not yet in place: a log force without
		// an unmount record (xfs_io's shutdown -f flushes the log and
		// stops the filesystem there).
		os.WriteFile(filepath.Join(ma, "f"), []byte("x"), 0o644)
		testutil.Run(t, "xfs_io", "-x", "-c", "shutdown -f", ma)
		testutil.Run(t, "dd", "if="+a, "of="+b, "bs=1M", "conv=fsync", "status=none")
		before, _ := DetectPath(b)
		argv, _ := NewUUIDArgs("xfs", b)
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Errorf("%v: %v", argv, err)
		}
		if !strings.Contains(string(out), "log") {
			t.Errorf("%v on a dirty log says nothing of the log:\n%s", argv, out)
		}
		if after, _ := DetectPath(b); after.UUID != before.UUID {
			t.Errorf("%v changed the UUID of a dirty copy: %s -> %s", argv, before.UUID, after.UUID)
		}
	})
}
