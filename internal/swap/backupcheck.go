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
	rootBlock uint64          // the block device under / (btrfs shows 0:N in root)
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
	p := c.path
	fix := "name a file on a filesystem that stays mounted and writable during the copy, not / (e.g. --backup /srv/backup/root.zst on another disk)"
	if !filepath.IsAbs(p) {
		return "--backup " + p + " is not an absolute path: the engine runs in its own tmpfs (" + c.engineDir + "), where it would land", fix
	}
	if p == c.engineDir || strings.HasPrefix(p, c.engineDir+"/") {
		return "--backup " + p + " is in the engine's tmpfs, sized for the engine alone", fix
	}
	if _, err := os.Lstat(p); err == nil {
		return "--backup " + p + " already exists", "remove it or name a new file"
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	var st unix.Stat_t
	if err == nil {
		err = unix.Stat(dir, &st)
	}
	if err != nil {
		return "--backup " + p + ": its directory: " + err.Error(), "create the directory first (mkdir -p " + filepath.Dir(p) + ")"
	}
	if st.Dev == c.root.Dev() {
		return "--backup " + p + " is on / itself, which is read-only during the copy", fix
	}
	m, _ := c.mounts.Containing(dir)
	for _, u := range c.unmount {
		if u.ID == m.ID {
			return "--backup " + p + " is on " + m.Point + " (" + m.FSType + "), which run unmounts before the copy", fix
		}
	}
	if m.ReadOnly() || hasOpt(m.SuperOptions, "ro") {
		return "--backup " + p + " is on " + m.Point + ", mounted read-only", fix
	}
	node := blockdev.Node{Path: dir, Dev: st.Dev, Ino: st.Ino}
	if rel, why := c.stack.Overlap(node, c.target); rel {
		return "--backup " + p + " is on the target " + c.target.Path + ": " + why, fix
	}
	if rel, why := c.stack.Overlap(node, blockdev.Node{Block: true, Rdev: c.rootBlock}); rel && c.rootBlock != 0 {
		return "--backup " + p + " is on a filesystem stored on /: " + why, fix
	}
	var fs unix.Statfs_t
	if unix.Statfs(dir, &fs) == nil && c.need > 0 {
		if free := int64(fs.Bavail) * fs.Bsize; free < c.need {
			return "--backup " + p + ": " + m.Point + " has " + human(free) + " free, the image needs about " + human(c.need) +
				" (half of what / uses: zstd's usual ratio on system files)", "free space there or name another filesystem"
		}
	}
	return "", ""
}

// backupEstimate is the size the zstd image of / is expected to reach:
// half of what its filesystem uses.
func backupEstimate() int64 {
	var fs unix.Statfs_t
	if unix.Statfs("/", &fs) != nil {
		return 0
	}
	return int64(fs.Blocks-fs.Bfree) * fs.Bsize / 2
}
