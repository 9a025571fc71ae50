package blockdev

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Canonical is the name mount(8) gives the block device at path, and so
// the one to mount it by: symbolic links (/dev/disk/by-uuid/…, LVM's
// /dev/VG/LV) resolved to the node they name, and a device-mapper node
// (dm-N) named /dev/mapper/NAME, as findmnt and /proc/mounts then show it.
func Canonical(sysRoot, path string) (string, error) {
	return canonicalIn(sysRoot, "", path)
}

// canonicalIn resolves path as seen from root ("" for the live system;
// a fixture tree in tests, whose udev-style links are relative).
func canonicalIn(sysRoot, root, path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("%s: not an absolute path", path)
	}
	real, err := filepath.EvalSymlinks(root + filepath.Clean(path))
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	node := real
	if root != "" {
		rel, err := filepath.Rel(root, real)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return "", fmt.Errorf("%s resolves to %s, outside %s", path, real, root)
		}
		node = "/" + rel
	}
	// The kernel's name of the device: from its number when the node is
	// one (a /dev/mapper node made without udev is not called dm-N), else
	// the node's own name, which udev gives every block device.
	name := filepath.Base(node)
	var st unix.Stat_t
	if unix.Stat(real, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		link := filepath.Join(sysRoot, "dev", "block", fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
		if dir, err := filepath.EvalSymlinks(link); err == nil {
			name = filepath.Base(dir)
		}
	}
	dm, err := readString(filepath.Join(sysRoot, "class", "block", name, "dm", "name"))
	if err != nil || dm == "" {
		return node, nil
	}
	mapper := "/dev/mapper/" + dm
	// Only a name that exists: mount(8) falls back to the node too.
	if _, err := os.Stat(root + mapper); err != nil {
		return node, nil
	}
	return mapper, nil
}
