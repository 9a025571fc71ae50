package lsof

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// selector is one PATH operand: a whole filesystem (a mount point was
// named) or one file.
type selector struct {
	path  string
	fs    bool   // the path is a mount point: match every file of the filesystem
	dev   uint64 // the filesystem (fs) or the file's device
	ino   uint64 // the file's inode (!fs)
	isDir bool
}

type statFunc func(p string) (dev, ino uint64, isDir bool, err error)

// stat is the one stat of a path the admin named. It is never called for
// a path that is a mount point (those are matched through the mount
// table), so naming a dead NFS mount does not hang either.
func stat(p string) (dev, ino uint64, isDir bool, err error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, 0, false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false, &os.PathError{Op: "stat", Path: p, Err: os.ErrInvalid}
	}
	return uint64(st.Dev), uint64(st.Ino), fi.IsDir(), nil
}

// selectors turns absolute PATH operands into selectors against the
// scanner's own mount table.
func selectors(self mountinfo.Table, paths []string, stat statFunc) ([]selector, error) {
	var out []selector
	for _, p := range paths {
		p = filepath.Clean(p)
		if m, ok := mountPoint(self, p); ok {
			out = append(out, selector{path: p, fs: true, dev: m.Dev(), isDir: true})
			continue
		}
		dev, ino, isDir, err := stat(p)
		if err != nil {
			return nil, err
		}
		// A symlink to a mount point names that mount point.
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			if m, ok := mountPoint(self, real); ok && m.Dev() == dev {
				out = append(out, selector{path: real, fs: true, dev: dev, isDir: true})
				continue
			}
		}
		out = append(out, selector{path: p, dev: dev, ino: ino, isDir: isDir})
	}
	return out, nil
}

// scanDevs is every filesystem the selectors can match, for the scan to
// leave the others' files out: each selector's device, and for a file the
// device of the mount holding it (stat's st_dev is a btrfs subvolume's,
// not the filesystem's). nil, everything, when there are no selectors.
func scanDevs(self mountinfo.Table, sel []selector) []uint64 {
	var devs []uint64
	add := func(d uint64) {
		if !slices.Contains(devs, d) {
			devs = append(devs, d)
		}
	}
	for _, s := range sel {
		add(s.dev)
		if !s.fs {
			if m, ok := self.Containing(s.path); ok {
				add(m.Dev())
			}
		}
	}
	return devs
}

// mountPoint returns the mount visible at p when p is a mount point.
func mountPoint(t mountinfo.Table, p string) (mountinfo.Mount, bool) {
	m, ok := t.Containing(p)
	if !ok || m.Point != p {
		return mountinfo.Mount{}, false
	}
	return m, true
}
