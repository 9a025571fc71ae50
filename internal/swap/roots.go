package swap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// What the root's filesystem type asks of the swap beyond a block copy:
// a new identity for the copy (xfs, btrfs), the subvolume / lives on
// (btrfs), and the submounts that are the same filesystem.

// rootBlockDev is the block device / lives on. mountinfo gives a btrfs
// mount an anonymous device (0:N, one per superblock), so its source,
// the device the kernel opened, names the disk instead.
func rootBlockDev(root mountinfo.Mount) (uint64, error) {
	if root.Major != 0 {
		return root.Dev(), nil
	}
	if !filepath.IsAbs(root.Source) {
		return 0, fmt.Errorf("/ is %s: no block device under it", root)
	}
	var st unix.Stat_t
	if err := unix.Stat(root.Source, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: root.Source, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("/ is %s: %s is not a block device", root, root.Source)
	}
	return uint64(st.Rdev), nil
}

// btrfsDevices lists the devices of the btrfs filesystem that has the
// device name (sysfs name: "vda2", "dm-0") among them, from
// /sys/fs/btrfs/FSID/devices. A filesystem of more than one device
// cannot be copied block by block from one of them.
func btrfsDevices(sysRoot, name string) []string {
	dirs, _ := filepath.Glob(filepath.Join(sysRoot, "fs/btrfs/*/devices"))
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		var names []string
		found := false
		for _, e := range ents {
			names = append(names, e.Name())
			found = found || e.Name() == name
		}
		if found {
			return names
		}
	}
	return nil
}

// CanonicalDevice is the name mount(8) shows for the block device at
// path (blockdev.Canonical: /dev/mapper/VG-LV for /dev/VG/LV), or path
// itself when it cannot be resolved.
func CanonicalDevice(sysRoot, path string) string {
	if c, err := blockdev.Canonical(sysRoot, path); err == nil {
		return c
	}
	return path
}

// superOption is the value of key=value among a mount's superblock
// options ("" when absent).
func superOption(m mountinfo.Mount, key string) string {
	for _, o := range strings.Split(m.SuperOptions, ",") {
		if v, ok := strings.CutPrefix(o, key+"="); ok {
			return v
		}
	}
	return ""
}

// subvolume is the btrfs subvolume a mount shows: its id and path from
// the superblock options, ok false for other filesystems or a kernel
// that shows neither.
func subvolume(m mountinfo.Mount) (id, path string, ok bool) {
	if m.FSType != "btrfs" {
		return "", "", false
	}
	id, path = superOption(m, "subvolid"), mountinfo.Unescape(superOption(m, "subvol"))
	return id, path, id != "" || path != ""
}

// subvolData is the mount data that selects m's subvolume on the copy:
// subvolid= (a block copy keeps the ids, and a number needs no escaping,
// unlike a path, which may hold a comma), else subvol= from the mount's
// root. "" for a filesystem without subvolumes, and for a btrfs mount of
// the top level.
func subvolData(m mountinfo.Mount) string {
	id, _, ok := subvolume(m)
	switch {
	case ok && id != "" && id != "5":
		return "subvolid=" + id
	case ok && id == "5":
		return ""
	case m.FSType == "btrfs" && m.Root != "/":
		return "subvol=" + m.Root
	}
	return ""
}

// describeSubvol is " (subvolume /@, id 256)" for plan, "" when there is
// no subvolume to name.
func describeSubvol(m mountinfo.Mount) string {
	id, path, ok := subvolume(m)
	if !ok || id == "5" {
		return ""
	}
	if path == "" {
		path = m.Root
	}
	if id == "" {
		return " (subvolume " + path + ")"
	}
	return fmt.Sprintf(" (subvolume %s, id %s)", path, id)
}

// newRootData is the mount data for the copy of root: the filesystem's
// own options as the kernel shows them (a btrfs root's compress=, ssd,
// space_cache) with the subvolume chosen by id. Other types get none: the
// copy mounts with the defaults, as / did at boot without rootflags.
func newRootData(root mountinfo.Mount) string {
	if root.FSType != "btrfs" {
		return ""
	}
	var keep []string
	for _, o := range strings.Split(superData(root.SuperOptions), ",") {
		if o == "" || strings.HasPrefix(o, "subvol=") || strings.HasPrefix(o, "subvolid=") {
			continue
		}
		keep = append(keep, o)
	}
	if d := subvolData(root); d != "" {
		keep = append(keep, d)
	}
	return strings.Join(keep, ",")
}

// SameFS is a submount of / that is the same filesystem mounted again: a
// btrfs subvolume other than /'s (/home on subvol=@home). Moved after the
// pivot, it would keep the old device busy for ever; it is mounted again
// from the copy instead.
type SameFS struct {
	Point  string `json:"point"`
	Subvol string `json:"subvol"` // " (subvolume /@home, id 257)"
}

// sameFSSubmounts lists the mounts below / that show root's superblock
// and a subvolume of their own, parents first. Bind mounts of a
// directory of /'s own subvolume are not among them: those are paths in
// the new root, re-made by bind.
func sameFSSubmounts(t mountinfo.Table, root mountinfo.Mount) []SameFS {
	var out []SameFS
	for _, m := range t.Below(root.Point) {
		if isOtherSubvol(m, root) {
			out = append(out, SameFS{Point: m.Point, Subvol: describeSubvol(m)})
		}
	}
	return out
}

// isOtherSubvol reports whether m is root's btrfs filesystem with a
// subvolume of its own mounted at its own root.
func isOtherSubvol(m, root mountinfo.Mount) bool {
	if m.FSType != "btrfs" || m.Major != root.Major || m.Minor != root.Minor {
		return false
	}
	id, path, ok := subvolume(m)
	rid, _, _ := subvolume(root)
	if !ok || id == rid {
		return false
	}
	// A subdirectory of a subvolume bound elsewhere shows the subvolume's
	// id and path but a deeper root: not a subvolume mount.
	return path == "" || path == m.Root
}

// checkRootFS adds what the root's filesystem type needs to the report:
// the refusals plan shows and the submounts mount-new's copy replaces.
func (r *Report) checkRootFS(sysRoot string, t mountinfo.Table, root mountinfo.Mount) {
	if root.FSType != "btrfs" || r.Root.Device == "" {
		return
	}
	if devs := btrfsDevices(sysRoot, filepath.Base(r.Root.Device)); len(devs) > 1 {
		r.block(fmt.Sprintf("/ is a btrfs filesystem of %d devices (%s): a block copy of one of them is no filesystem", len(devs), strings.Join(devs, ", ")),
			"move a multi-device btrfs online instead: btrfs replace start OLD NEW /")
	}
	if _, err := os.Stat(filepath.Join(sysRoot, "fs/btrfs/features/metadata_uuid")); err != nil {
		r.block("this kernel cannot mount a btrfs whose fsid was changed in place (no metadata_uuid support, Linux 5.0): the copy cannot get an fsid of its own, and one with the fsid of / will not mount beside it",
			"boot a newer kernel")
	}
	if _, path, ok := subvolume(root); ok && path != "" && path != root.Root {
		r.block(fmt.Sprintf("/ is the directory %s of btrfs subvolume %s, not a subvolume: the copy can only be mounted by subvolume", root.Root, path),
			"make / a subvolume of its own")
	}
	r.SameFS = sameFSSubmounts(t, root)
}

// unmountBelow unmounts what is still mounted below old (children
// first), only the mounts of filesystem dev unless dev is 0: the old
// root's own subvolumes, which move-mounts left there when it mounted
// them again from the copy. A busy one stays; the unmount of old then
// fails with EBUSY and release waits as for old.
func unmountBelow(rt *Runtime, old string, dev uint64) {
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return
	}
	below := t.Below(old)
	for i := len(below) - 1; i >= 0; i-- {
		if dev != 0 && below[i].Dev() != dev {
			continue
		}
		if err := rt.Mounter.Unmount(below[i].Point, 0); err != nil && !errors.Is(err, unix.EBUSY) {
			rt.logf("    %s: %v", below[i].Point, err)
		}
	}
}
