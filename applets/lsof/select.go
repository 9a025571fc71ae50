package lsof

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
)

// selector is one PATH operand: a whole filesystem (a mount point was
// named) or one file; or a +d or +D directory.
type selector struct {
	path  string
	fs    bool   // the path is a mount point: match every file of the filesystem
	dev   uint64 // the filesystem (fs, walk) or the file's device
	ino   uint64 // the file's inode (!fs)
	isDir bool
	walk  walk
}

// walk says how a +d or +D directory selects files. lsof walks the tree
// and stats every entry; rootswap compares names instead (no walk, no
// stat): a file is selected when its name is the directory or below it
// and it lies on the directory's filesystem, which keeps out the files
// of filesystems mounted below (lsof does not cross into them either)
// and deleted files (a walk cannot find them).
type walk uint8

const (
	noWalk   walk = iota
	walkDir       // +d: the directory and the files directly in it
	walkTree      // +D: the directory and everything below it
)

// inside is whether name is at or below s.path, as s.walk wants.
func (s *selector) inside(name string) bool {
	if name == s.path {
		return true
	}
	if s.walk == walkDir {
		i := strings.LastIndexByte(name, '/')
		return i >= 0 && (name[:i] == s.path || i == 0 && s.path == "/")
	}
	return s.path == "/" && strings.HasPrefix(name, "/") || strings.HasPrefix(name, s.path) && name[len(s.path)] == '/'
}

// matchWalk matches a file by name and device against a +d or +D selector.
func (s *selector) matchWalk(name string, deleted bool, devs ...uint64) bool {
	return !deleted && slices.Contains(devs, s.dev) && s.inside(name)
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

// dirSelectors turns absolute +d and +D directories into selectors.
func dirSelectors(self mountinfo.Table, dirs []dirOpt, stat statFunc) ([]selector, error) {
	var out []selector
	for _, d := range dirs {
		s := selector{path: filepath.Clean(d.path), isDir: true, walk: walkDir}
		if d.tree {
			s.walk = walkTree
		}
		if m, ok := mountPoint(self, s.path); ok {
			s.dev = m.Dev()
		} else {
			var err error
			if s.dev, s.ino, s.isDir, err = stat(s.path); err != nil {
				return nil, err
			}
		}
		out = append(out, s)
	}
	return out, nil
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

// Selection classes, lsof's SEL* flags: a file is listed when it earns
// every class given (-a) or any of them (the default).
const (
	selPID uint8 = 1 << iota
	selCmd
	selUID
	selFD
	selName
)

// filter is what the options select.
type filter struct {
	sel   []selector // PATHs, +d and +D
	and   bool
	flags uint8 // the classes given; 0 lists every file

	pids, notPIDs []int
	cmds, notCmds []string
	cmdRx         []*regexp.Regexp
	uids, notUIDs []int
	fds           fdList
}

func newFilter(o *options, sel []selector, uids, notUIDs []int) *filter {
	f := &filter{sel: sel, and: o.and, pids: o.pids, notPIDs: o.notPIDs, cmds: o.cmds, notCmds: o.notCmds,
		cmdRx: o.cmdRx, uids: uids, notUIDs: notUIDs, fds: o.fds}
	if len(f.pids) > 0 {
		f.flags |= selPID
	}
	if len(f.cmds)+len(f.cmdRx) > 0 {
		f.flags |= selCmd
	}
	if len(f.uids) > 0 {
		f.flags |= selUID
	}
	if f.fds.set {
		f.flags |= selFD
	}
	if len(f.sel) > 0 {
		f.flags |= selName
	}
	return f
}

// proc returns the classes a process earns as a whole; ok false when it
// is excluded (^ lists) or cannot have a file listed.
func (f *filter) proc(p *procscan.Process) (flags uint8, ok bool) {
	if slices.Contains(f.notPIDs, p.PID) || slices.Contains(f.notUIDs, p.UID) {
		return 0, false
	}
	for _, c := range f.notCmds {
		if strings.HasPrefix(p.Comm, c) {
			return 0, false
		}
	}
	if slices.Contains(f.pids, p.PID) {
		flags |= selPID
	}
	if slices.Contains(f.uids, p.UID) {
		flags |= selUID
	}
	if f.flags&selCmd != 0 && f.command(p.Comm) {
		flags |= selCmd
	}
	procClasses := f.flags & (selPID | selCmd | selUID)
	switch {
	case f.flags == 0:
		return 0, true
	case f.and:
		return flags, flags&procClasses == procClasses
	default:
		return flags, flags != 0 || f.flags&(selFD|selName) != 0
	}
}

func (f *filter) command(comm string) bool {
	for _, c := range f.cmds {
		if strings.HasPrefix(comm, c) {
			return true
		}
	}
	for _, rx := range f.cmdRx {
		if rx.MatchString(comm) {
			return true
		}
	}
	return false
}

// keep is whether a file that earned flags is listed.
func (f *filter) keep(flags uint8) bool {
	switch {
	case f.flags == 0:
		return true
	case f.and:
		return flags&f.flags == f.flags
	}
	return flags != 0
}

// fd is the selFD class of a descriptor (num >= 0) or of cwd, rtd, txt,
// mem, DEL (num < 0, by name).
func (f *filter) fd(num int, name string) uint8 {
	if f.fds.set && f.fds.selected(num, name) {
		return selFD
	}
	return 0
}

// onlyNames is whether only files some selector matches can be listed,
// so that the scan may leave the other filesystems out.
func (f *filter) onlyNames() bool {
	return f.flags == selName || f.and && f.flags&selName != 0
}

// onlyPIDs is whether only the -p processes can be listed.
func (f *filter) onlyPIDs() bool {
	return f.flags == selPID || f.and && f.flags&selPID != 0
}
