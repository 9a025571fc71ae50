package ext

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rootswap/rootswap/internal/extent"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestUsedExtentsKernelWritten is the swap's case: a filesystem the kernel
// wrote (its allocator, its lazily updated counters and group flags),
// mounted read-write, then remounted read-only and read through its block
// device while still mounted.
func TestUsedExtentsKernelWritten(t *testing.T) {
	testutil.RequireRoot(t)
	requireE2fsprogs(t)
	testutil.RequireTool(t, "cp")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	makeTree(t, src, 42, 24<<20)
	img := testutil.Image(t, dir, "img", 256<<20)
	mkfs(t, "mkfs.ext4", img, "256M", "", "-b", "4096")
	dev := testutil.Loop(t, img)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}

	var got []extent.Extent
	testutil.InMountNS(t, func() {
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Errorf("mount %s on %s: %v", dev, mnt, err)
			return
		}
		defer unix.Unmount(mnt, 0)
		if out, err := exec.Command("cp", "-a", src+"/.", mnt).CombinedOutput(); err != nil {
			t.Errorf("cp -a: %v\n%s", err, out)
			return
		}
		// Holes: delete every other top-level file from both sides.
		ents, _ := os.ReadDir(src)
		for i, e := range ents {
			if e.Type().IsRegular() && i%2 == 0 {
				os.Remove(filepath.Join(src, e.Name()))
				os.Remove(filepath.Join(mnt, e.Name()))
			}
		}
		unix.Sync()
		f, err := os.Open(dev)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if _, err := UsedExtents(f); !errors.Is(err, ErrNeedsRecovery) {
			t.Errorf("UsedExtents on a read-write mount: %v, want %v", err, ErrNeedsRecovery)
		}
		if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Errorf("mount -o remount,ro %s: MS_REMOUNT|MS_RDONLY: %v", mnt, err)
			return
		}
		if got, err = UsedExtents(f); err != nil {
			t.Errorf("UsedExtents after remount,ro: %v", err)
			return
		}
		sb, err := ReadSuperblock(f)
		if err != nil {
			t.Error(err)
			return
		}
		if total, want := extent.Total(got), int64(sb.BlocksCount-sb.FreeBlocks)*sb.BlockSize; total != want {
			t.Errorf("used total %d bytes, want (blocks %d - free %d) * %d = %d", total, sb.BlocksCount, sb.FreeBlocks, sb.BlockSize, want)
		}
	})
	if t.Failed() {
		return
	}
	// Copied after the unmount (a read-only mount changed nothing), from
	// the test goroutine so that copyOntoGarbage may t.Fatal.
	target := filepath.Join(dir, "target")
	copyOntoGarbage(t, dev, target, got, 42)
	// The source, now unmounted, must agree with dumpe2fs as well.
	if want, _ := dumpe2fsUsed(t, img); !equalExtents(got, want) {
		t.Errorf("UsedExtents differs from dumpe2fs's used blocks:\n got %s\nwant %s", summary(got), summary(want))
	}
	if out, err := exec.Command("e2fsck", "-fn", target).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn on the copy: %v\n%s", err, out)
	}
	rd := filepath.Join(dir, "rdump")
	if err := os.Mkdir(rd, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("debugfs", "-R", "rdump / "+rd, target).CombinedOutput(); err != nil {
		t.Fatalf("debugfs rdump: %v\n%s", err, out)
	}
	compareTrees(t, src, rd)
}
