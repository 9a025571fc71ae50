package fstools

import (
	"errors"
	"fmt"
	"os"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// WithMount calls fn with a directory where the filesystem on the block
// device devPath (number dev) is mounted, for the tools that only work
// on a mounted filesystem (xfs_growfs, btrfs filesystem resize).
//
// When t shows the device mounted, fn gets that mount point (a mount of
// the filesystem's root preferred) and nothing is mounted. Otherwise the
// device is mounted with MS_NOSUID|MS_NODEV on a fresh directory under
// /run (or the temporary directory), and unmounted and removed after fn,
// whatever fn returned. temporary tells fn which case it is.
func WithMount(t mountinfo.Table, dev uint64, devPath, fstype string, fn func(dir string, temporary bool) error) (err error) {
	if ms := blockdev.MountedAt(t, dev); len(ms) > 0 {
		dir := ms[0].Point
		for _, m := range ms {
			if m.Root == "/" {
				dir = m.Point
				break
			}
		}
		return fn(dir, false)
	}
	parent := os.TempDir()
	if unix.Access("/run", unix.W_OK) == nil {
		parent = "/run"
	}
	dir, err := os.MkdirTemp(parent, "rootswap-mnt-")
	if err != nil {
		return fmt.Errorf("making a temporary mount point: %w", err)
	}
	defer func() {
		if rmErr := os.Remove(dir); rmErr != nil {
			err = errors.Join(err, rmErr)
		}
	}()
	if err := unix.Mount(devPath, dir, fstype, unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return &os.PathError{Op: "mount", Path: dir,
			Err: fmt.Errorf("mount %s on %s type %s flags MS_NOSUID|MS_NODEV: %w", devPath, dir, fstype, err)}
	}
	defer func() {
		if umErr := unix.Unmount(dir, 0); umErr != nil {
			err = errors.Join(err, &os.PathError{Op: "umount", Path: dir, Err: umErr})
		}
	}()
	return fn(dir, true)
}
