package blockdev

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestStatLoop(t *testing.T) {
	testutil.RequireRoot(t)
	const size = 64 << 20
	img := testutil.Image(t, t.TempDir(), "disk.img", size)
	dev := testutil.Loop(t, img)
	d, err := Stat("/sys", dev)
	if err != nil {
		t.Fatal(err)
	}
	if d.Size != size {
		t.Errorf("Size = %d, want %d", d.Size, size)
	}
	if d.LogicalSector != 512 || d.PhysicalSector < 512 {
		t.Errorf("sectors = %d/%d, want 512/>=512", d.LogicalSector, d.PhysicalSector)
	}
	if want := filepath.Base(dev); d.Name != want || d.Major != 7 {
		t.Errorf("Name, Major = %s, %d; want %s, 7", d.Name, d.Major, want)
	}
	if d.ReadOnly || d.IsPartition {
		t.Errorf("ReadOnly, IsPartition = %v, %v; want false, false", d.ReadOnly, d.IsPartition)
	}
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	if d.Dev() != st.Rdev {
		t.Errorf("Dev() = %#x, st_rdev = %#x", d.Dev(), st.Rdev)
	}
	if n, err := FileSize(dev); err != nil || n != size {
		t.Errorf("FileSize(%s) = %d, %v; want %d", dev, n, err, size)
	}
}

func TestLoopSectorSize(t *testing.T) {
	testutil.RequireRoot(t)
	img := testutil.Image(t, t.TempDir(), "disk.img", 16<<20)
	dev := testutil.Loop(t, img)
	testutil.Run(t, "losetup", "--sector-size", "4096", dev)
	d, err := Stat("/sys", dev)
	if err != nil {
		t.Fatal(err)
	}
	if d.LogicalSector != 4096 {
		t.Errorf("LogicalSector = %d after losetup --sector-size 4096", d.LogicalSector)
	}
}

// The mount namespace of InMountNS is the thread's, so mountinfo is read
// from /proc/thread-self, not /proc/self (the main thread's).
func TestMountedLoop(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4")
	testutil.InMountNS(t, func() {
		dir := t.TempDir()
		img := testutil.Image(t, dir, "disk.img", 32<<20)
		testutil.Run(t, "mkfs.ext4", "-q", img)
		dev := testutil.Loop(t, img)
		d, err := Stat("/sys", dev)
		if err != nil {
			t.Error(err)
			return
		}
		if busy, err := InUse(dev); err != nil || busy {
			t.Errorf("before mount: InUse = %v, %v; want false", busy, err)
		}
		mnt := filepath.Join(dir, "mnt")
		os.Mkdir(mnt, 0o755)
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Errorf("mount %s: %v", dev, err)
			return
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		tab, err := mountinfo.Read("/proc", "thread-self")
		if err != nil {
			t.Error(err)
			return
		}
		got := MountedAt(tab, d.Dev())
		if len(got) != 1 || got[0].Point != mnt {
			t.Errorf("MountedAt(%s) = %v, want one mount at %s", dev, got, mnt)
		}
		busy, err := InUse(dev)
		if err != nil || !busy {
			t.Errorf("while mounted: InUse = %v, %v; want true", busy, err)
		}
		if _, err := OpenExclusive(dev, os.O_RDONLY); !errors.Is(err, ErrInUse) || !errors.Is(err, unix.EBUSY) {
			t.Errorf("OpenExclusive while mounted: %v, want ErrInUse wrapping EBUSY", err)
		}
	})
}

// TestMountedBtrfs checks the anonymous-device fallback: btrfs mounts
// show 0:N in mountinfo, not the device's number.
func TestMountedBtrfs(t *testing.T) {
	testutil.RequireTool(t, "mkfs.btrfs")
	testutil.InMountNS(t, func() {
		dir := t.TempDir()
		img := testutil.Image(t, dir, "disk.img", 128<<20)
		testutil.Run(t, "mkfs.btrfs", "-q", img)
		dev := testutil.Loop(t, img)
		d, err := Stat("/sys", dev)
		if err != nil {
			t.Error(err)
			return
		}
		mnt := filepath.Join(dir, "mnt")
		os.Mkdir(mnt, 0o755)
		if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
			t.Errorf("mount %s: %v", dev, err)
			return
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		tab, err := mountinfo.Read("/proc", "thread-self")
		if err != nil {
			t.Error(err)
			return
		}
		got := MountedAt(tab, d.Dev())
		if len(got) != 1 || got[0].Point != mnt || got[0].Major != 0 {
			t.Errorf("MountedAt(%s) = %v, want one mount at %s with an anonymous device", dev, got, mnt)
		}
	})
}
