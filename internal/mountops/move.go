package mountops

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// MoveOptions tune MoveSubmounts.
type MoveOptions struct {
	// DryRun plans without calling mount(2) or creating anything.
	DryRun bool
	// NoMkdir leaves a mount whose mount point is missing in the new root
	// where it is (with the reason in Move.Skipped) instead of creating
	// the mount point.
	NoMkdir bool
	// Leave, when set, names mounts to leave where they are, with the
	// reason for Move.Skipped ("" moves it): the caller re-makes them.
	Leave func(mountinfo.Mount) string
}

// Move is one top-level mount below OLDROOT and what became of it.
type Move struct {
	Mount    mountinfo.Mount // as it sits below OLDROOT
	From, To string          // "/mnt/oldroot/proc" -> "/proc"
	// Children are the mounts stacked below From that travel with it,
	// by the paths they have once it moved ("/dev/pts", "/dev/shm").
	Children []string
	// Created: To was missing and was made (in a dry run: would be).
	Created bool
	// Hides names a mount already at To that the moved mount will cover.
	Hides string
	// Skipped says why the mount was left where it is; "" for a move.
	Skipped string
	// Done: mount(MS_MOVE) succeeded. Never set in a dry run.
	Done bool
}

// MoveSubmounts moves every mount below oldroot to the same path under /
// ("/mnt/oldroot/proc" -> "/proc"), the "mount --move" step after
// pivot_root, leaving oldroot itself where it is.
//
// Only top-level submounts need MS_MOVE: a moved mount takes its own
// submounts along (moving /mnt/oldroot/dev moves /mnt/oldroot/dev/pts).
// Top-level means mounted on oldroot's own mount, however deep the path:
// /mnt/oldroot/var/log mounted on the old root's /var directory is
// top-level and is moved by itself. The mounts are walked parents first
// in the kernel's order, and the moves keep that order.
//
// A mount point missing in the new root is created (the new root is a
// copy of the old one, so normally they all exist), unless NoMkdir; a
// mount that cannot be moved is reported in Skipped, never dropped
// silently. The first failing mount(2) stops the walk: the moves so far
// are returned with the error.
//
// Rollback uses the same function with the roles swapped: after
// PivotBack the submounts sit below the new root's old place, so
// MoveSubmounts(m, t, "/mnt/newroot", opts) puts them back under the old
// root.
func MoveSubmounts(m Mounter, t mountinfo.Table, oldroot string, opts MoveOptions) ([]Move, error) {
	oldroot = filepath.Clean(oldroot)
	if !filepath.IsAbs(oldroot) || oldroot == "/" {
		return nil, fmt.Errorf("mount-move: OLDROOT %q must be an absolute path other than /", oldroot)
	}
	rootMnt, ok := t.Containing(oldroot)
	if !ok || rootMnt.Point != oldroot {
		return nil, fmt.Errorf("mount-move: OLDROOT %s is not a mount point (nothing was pivoted there?)", oldroot)
	}

	moves := plan(t.Below(oldroot), rootMnt, oldroot)
	for i := range moves {
		mv := &moves[i]
		if mv.Skipped == "" && opts.Leave != nil {
			mv.Skipped = opts.Leave(mv.Mount)
		}
		if mv.Skipped != "" {
			continue
		}
		if cur, ok := t.Containing(mv.To); ok && cur.Point == mv.To {
			mv.Hides = cur.String()
		}
		mv.Created, mv.Skipped = makeMountPoint(m, mv.From, mv.To, opts)
		if mv.Skipped != "" || opts.DryRun {
			continue
		}
		if err := m.Mount(mv.From, mv.To, "", unix.MS_MOVE, ""); err != nil {
			var e *Error
			if errors.As(err, &e) && errors.Is(e.Err, unix.EINVAL) {
				e.Hint = explainMove(t, mv.Mount, mv.To)
			}
			return moves[:i+1], err
		}
		mv.Done = true
	}
	return moves, nil
}

// plan groups the mounts below oldroot (parents first) into top-level
// moves with the children they carry.
func plan(below mountinfo.Table, rootMnt mountinfo.Mount, oldroot string) []Move {
	var moves []Move
	owner := map[int]int{} // mount ID -> index of the move that takes it along
	for _, mt := range below {
		to := strings.TrimPrefix(mt.Point, oldroot)
		if i, ok := owner[mt.Parent]; ok {
			moves[i].Children = append(moves[i].Children, to)
			owner[mt.ID] = i
			continue
		}
		mv := Move{Mount: mt, From: mt.Point, To: to}
		if mt.Parent != rootMnt.ID {
			// Mounted on something that is not the visible OLDROOT mount:
			// a mount stacked under it, hidden. MS_MOVE by path would
			// reach the wrong one.
			mv.Skipped = fmt.Sprintf("its parent mount %d is not the mount visible at %s (%d): hidden below a stacked mount", mt.Parent, oldroot, rootMnt.ID)
		}
		owner[mt.ID] = len(moves)
		moves = append(moves, mv)
	}
	return moves
}

// makeMountPoint makes sure to exists, creating it (a directory, or an
// empty file for a file bind mount) unless opts say not to.
func makeMountPoint(m Mounter, from, to string, opts MoveOptions) (created bool, skipped string) {
	_, err := m.Lstat(to)
	switch {
	case err == nil:
		return false, ""
	case !isNotExist(err):
		return false, fmt.Sprintf("cannot check mount point %s: %v", to, err)
	case opts.NoMkdir:
		return false, fmt.Sprintf("mount point %s is missing in the new root (not created: no-mkdir)", to)
	case opts.DryRun:
		return true, ""
	}
	isDir := true
	if fi, err := m.Lstat(from); err == nil && !fi.IsDir() {
		isDir = false
	}
	if isDir {
		err = m.MkdirAll(to, 0o755)
	} else if err = m.MkdirAll(filepath.Dir(to), 0o755); err == nil {
		err = m.CreateFile(to, 0o644)
	}
	if err != nil {
		return false, fmt.Sprintf("mount point %s is missing in the new root and could not be created: %v", to, err)
	}
	return true, ""
}

// explainMove names why MS_MOVE gave EINVAL, from the table.
func explainMove(t mountinfo.Table, mt mountinfo.Mount, to string) string {
	parent, _ := t.ByID(mt.Parent)
	dest, _ := t.Containing(to)
	if parent.Shared() || dest.Shared() {
		return "the mount's parent or the target mount is shared; make / private first (rootswap pivot does)"
	}
	return "the source is not a mount point any more, or the target lies below the source"
}
