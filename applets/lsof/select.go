package lsof

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
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
func selectors(snap *procscan.Snapshot, paths []string, stat statFunc) ([]selector, error) {
	var out []selector
	for _, p := range paths {
		p = filepath.Clean(p)
		if m, ok := mountPoint(snap.Self, p); ok {
			out = append(out, selector{path: p, fs: true, dev: m.Dev(), isDir: true})
			continue
		}
		dev, ino, isDir, err := stat(p)
		if err != nil {
			return nil, err
		}
		// A symlink to a mount point names that mount point.
		if real, err := filepath.EvalSymlinks(p); err == nil && real != p {
			if m, ok := mountPoint(snap.Self, real); ok && m.Dev() == dev {
				out = append(out, selector{path: real, fs: true, dev: dev, isDir: true})
				continue
			}
		}
		out = append(out, selector{path: p, dev: dev, ino: ino, isDir: isDir})
	}
	return out, nil
}

// mountPoint returns the mount visible at p when p is a mount point.
func mountPoint(t mountinfo.Table, p string) (mountinfo.Mount, bool) {
	m, ok := t.Containing(p)
	if !ok || m.Point != p {
		return mountinfo.Mount{}, false
	}
	return m, true
}
