package fstools

import (
	"fmt"
	"strings"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/mountinfo"
)

// Target is a block device about to be checked, resized or relabelled:
// the device, what is on it, and where it is mounted.
type Target struct {
	Dev    *blockdev.Device
	FS     FS
	Mounts mountinfo.Table // every mount of the device, file order
}

// Inspect gathers a Target for the block device at path, reading sysfs
// under sysRoot and the mount table under procRoot.
func Inspect(sysRoot, procRoot, path string) (*Target, error) {
	dev, err := blockdev.Stat(sysRoot, path)
	if err != nil {
		return nil, err
	}
	fs, err := DetectPath(path)
	if err != nil {
		return nil, err
	}
	tab, err := blockdev.ReadMounts(procRoot)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return &Target{Dev: dev, FS: fs, Mounts: blockdev.MountedAt(tab, dev.Dev())}, nil
}

// MountedRW returns a read-write mount of the target, if any.
func (t *Target) MountedRW() (mountinfo.Mount, bool) {
	for _, m := range t.Mounts {
		if !m.ReadOnly() {
			return m, true
		}
	}
	return mountinfo.Mount{}, false
}

// Where lists the mount points of the target for messages: "/ (rw),
// /mnt/old (ro)".
func (t *Target) Where() string {
	s := ""
	for i, m := range t.Mounts {
		if i > 0 {
			s += ", "
		}
		mode := "rw"
		if m.ReadOnly() {
			mode = "ro"
		}
		s += fmt.Sprintf("%s (%s)", m.Point, mode)
	}
	return s
}

// Busy refuses a device or image file that is in use beyond its own
// mounts in the caller's namespace, which each applet judges itself:
// mounted in another mount namespace, active swap, held by LVM or md, and
// for an image file any mount or use of the loop devices on it (a checker
// writing the file behind a mounted filesystem corrupts it).
func Busy(sysRoot, procRoot, path string) error {
	n, err := blockdev.NodeOf(path)
	if err != nil {
		return err
	}
	why, err := (&blockdev.Stack{SysRoot: sysRoot, ProcRoot: procRoot}).InUse(n, false)
	if err != nil {
		return err
	}
	if len(why) > 0 {
		return fmt.Errorf("%s is in use: %s (nothing was changed)", path, strings.Join(why, "; "))
	}
	return nil
}
