package mountops

import (
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// MakePrivate marks the mount at path private (with recursive, every
// mount below it too). pivot_root and MS_MOVE refuse shared mounts
// (EINVAL), and a private mount keeps the swap's mounts from propagating
// into other namespaces.
func MakePrivate(m Mounter, path string, recursive bool) error {
	return m.Mount("", path, "", propagationFlags(unix.MS_PRIVATE, recursive), "")
}

// MakeShared marks the mount at path shared, in a new peer group of its own.
func MakeShared(m Mounter, path string, recursive bool) error {
	return m.Mount("", path, "", propagationFlags(unix.MS_SHARED, recursive), "")
}

func propagationFlags(kind uintptr, recursive bool) uintptr {
	if recursive {
		return kind | unix.MS_REC
	}
	return kind
}

// Propagation is a shared mount as it was before the swap made it private.
type Propagation struct {
	Point     string
	PeerGroup int // the N of shared:N; peer groups cannot be rejoined, only recorded
}

// SavePropagation lists the shared mounts at and below the path below,
// parents first, to be re-marked by RestoreShared once the swap is done:
// systemd makes every mount shared, and services started later (with
// PrivateTmp=, ProtectSystem=, in containers) expect mount events from
// the host to reach them.
func SavePropagation(t mountinfo.Table, below string) []Propagation {
	below = filepath.Clean(below)
	var mounts mountinfo.Table
	if m, ok := t.Containing(below); ok && m.Point == below {
		mounts = append(mounts, m)
	}
	mounts = append(mounts, t.Below(below)...)
	var out []Propagation
	for _, m := range mounts {
		if m.Shared() {
			out = append(out, Propagation{Point: m.Point, PeerGroup: m.PeerGroup()})
		}
	}
	return out
}

// RestoreShared marks MS_SHARED (not recursively: mounts that were
// private stay private) every saved mount point that is a mount point in
// now, the table read after the submounts were moved back. Saved points
// that are no longer mount points (the new root's old place,
// /mnt/newroot) are returned as skipped, not errors.
//
// Each mount gets a fresh peer group: mounts that were peers of each
// other (bind mounts of one another) are no longer peers, and slave
// mounts in other namespaces no longer receive events from them. Services
// that keep such namespaces (PrivateTmp=) should be restarted after the
// swap anyway, as they still run from the old root.
func RestoreShared(m Mounter, now mountinfo.Table, saved []Propagation) (skipped []Propagation, err error) {
	var errs []error
	for _, p := range saved {
		if cur, ok := now.Containing(p.Point); !ok || cur.Point != p.Point {
			skipped = append(skipped, p)
			continue
		}
		if e := MakeShared(m, p.Point, false); e != nil {
			errs = append(errs, fmt.Errorf("restoring shared propagation (was shared:%d): %w", p.PeerGroup, e))
		}
	}
	return skipped, errors.Join(errs...)
}
