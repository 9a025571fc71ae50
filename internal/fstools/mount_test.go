package fstools

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestWithMount(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4")
	testutil.InMountNS(t, func() {
		img := testutil.Image(t, t.TempDir(), "disk.img", 32<<20)
		testutil.Run(t, "mkfs.ext4", "-q", img)
		dev := testutil.Loop(t, img)
		d, err := blockdev.Stat("/sys", dev)
		if err != nil {
			t.Error(err)
			return
		}
		tab, err := blockdev.ReadMounts("/proc")
		if err != nil {
			t.Error(err)
			return
		}
		// Not mounted: a temporary nosuid,nodev mount, gone afterwards.
		var tmp string
		err = WithMount(tab, d.Dev(), dev, "ext4", func(dir string, temporary bool) error {
			tmp = dir
			if !temporary {
				t.Errorf("unmounted device: temporary = false")
			}
			now, err := blockdev.ReadMounts("/proc")
			if err != nil {
				return err
			}
			ms := blockdev.MountedAt(now, d.Dev())
			if len(ms) != 1 || ms[0].Point != dir || !strings.Contains(ms[0].Options, "nosuid") || !strings.Contains(ms[0].Options, "nodev") {
				t.Errorf("temporary mount = %v, want one nosuid,nodev mount at %s", ms, dir)
			}
			return nil
		})
		if err != nil {
			t.Errorf("WithMount: %v", err)
		}
		if _, err := os.Stat(tmp); !os.IsNotExist(err) {
			t.Errorf("temporary mount point %s left behind: %v", tmp, err)
		}
		// Mounted: the existing mount point, nothing mounted.
		mnt := filepath.Join(t.TempDir(), "mnt")
		os.Mkdir(mnt, 0o755)
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		defer unix.Unmount(mnt, 0)
		tab, _ = blockdev.ReadMounts("/proc")
		err = WithMount(tab, d.Dev(), dev, "ext4", func(dir string, temporary bool) error {
			if dir != mnt || temporary {
				t.Errorf("mounted device: dir, temporary = %s, %v; want %s, false", dir, temporary, mnt)
			}
			return nil
		})
		if err != nil {
			t.Errorf("WithMount: %v", err)
		}
	})
}
