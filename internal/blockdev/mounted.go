package blockdev

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// MountedAt returns every mount of device dev in t, file order kept.
//
// A mount matches by its major:minor, or, when that is an anonymous
// device (major 0, which is what btrfs reports), by its source being a
// block device node with that number. Only the device named as the
// source of a multi-device btrfs is found that way; the other members of
// such a filesystem are not (rootswap does not handle multi-device btrfs).
func MountedAt(t mountinfo.Table, dev uint64) mountinfo.Table {
	var out mountinfo.Table
	for _, m := range t {
		if m.Dev() == dev || (m.Major == 0 && sourceIs(m.Source, dev)) {
			out = append(out, m)
		}
	}
	return out
}

func sourceIs(source string, dev uint64) bool {
	if !filepath.IsAbs(source) {
		return false
	}
	var st unix.Stat_t
	if unix.Stat(source, &st) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFBLK && st.Rdev == dev
}

// ReadMounts reads the mount table of the calling thread's mount
// namespace: procRoot/thread-self/mountinfo, falling back to
// procRoot/self/mountinfo (fixture trees, kernels before 3.17). The
// thread's table is the one that matters when a thread has its own
// namespace (testutil.InMountNS); for a normal process they are the same.
func ReadMounts(procRoot string) (mountinfo.Table, error) {
	t, err := mountinfo.Read(procRoot, "thread-self")
	if errors.Is(err, fs.ErrNotExist) {
		return mountinfo.Read(procRoot, "self")
	}
	return t, err
}
