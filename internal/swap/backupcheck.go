package swap

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// backupCheck is what the preflight knows when it checks --backup.
type backupCheck struct {
	path      string
	mounts    mountinfo.Table // the caller's
	root      mountinfo.Mount // /
	unmount   mountinfo.Table // what unmount-extra unmounts before the copy
	engineDir string
	stack     *blockdev.Stack
	target    blockdev.Node
	need      int64 // the image's estimated size
}

// problem says why the copy could not write the backup where --backup
// names it, and how to fix that; "" when it can. The engine writes it
// after services stopped and / went read-only: a relative path would land
// in the engine's tmpfs, a file on / could not be written, a network or
// FUSE mount is unmounted by then, a file on the target is overwritten.
func (c backupCheck) problem() (string, string) {
	why, fix := c.why()
	if why == "" {
		return "", ""
	}
	if fix == "" {
		fix = "name a file on a filesystem that stays mounted and writable, not /"
	}
	return "--backup " + c.path + why, fix
}

func (c backupCheck) why() (string, string) {
	p := c.path
	if !filepath.IsAbs(p) {
		return " is not an absolute path: it would land in the engine's tmpfs (" + c.engineDir + ")", ""
	}
	if p == c.engineDir || strings.HasPrefix(p, c.engineDir+"/") {
		return " is in the engine's tmpfs", ""
	}
	if _, err := os.Lstat(p); err == nil {
		return " already exists", "remove it or name a new file"
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	var st unix.Stat_t
	if err == nil {
		err = unix.Stat(dir, &st)
	}
	if err != nil {
		return ": its directory: " + err.Error(), "create the directory first"
	}
	m, _ := c.mounts.Containing(dir)
	if st.Dev == c.root.Dev() || m.Source == c.root.Source && m.FSType == c.root.FSType { // another btrfs subvolume of /'s

		return " is on / itself, which is read-only during the copy", ""
	}
	for i := range c.unmount {
		if c.unmount[i].ID == m.ID {
			return " is on " + m.Point + " (" + m.FSType + "), which run unmounts before the copy", ""
		}
	}
	if m.ReadOnly() || hasOpt(m.SuperOptions, "ro") {
		return " is on " + m.Point + ", mounted read-only", ""
	}
	node := blockdev.Node{Path: dir, Dev: st.Dev, Ino: st.Ino}
	if rel, why := c.stack.Overlap(node, c.target); rel {
		return " is on the target " + c.target.Path + ": " + why, ""
	}
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) == nil && int64(fs.Bavail)*fs.Bsize < c.need {
		return ": " + m.Point + " has " + human(int64(fs.Bavail)*fs.Bsize) + " free, the image needs about " + human(c.need) +
			" (half of what / uses)", "free space there or name another filesystem"
	}
	return "", ""
}
