package swap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// A squashfs image attached read-only from a file on / (a snap, a live
// system's image) need not be unmounted: the copy holds a byte-identical
// file, and LOOP_CHANGE_FD moves the loop device onto it while the mount
// stays in use. Only squashfs: on Linux 6.6 and later the media change
// that LOOP_CHANGE_FD signals shuts down a filesystem that has a shutdown
// operation (ext4, xfs, btrfs...), which squashfs has not; those images
// are unmounted and mounted again instead.
func rebackable(sysRoot string, m mountinfo.Mount, rootDev uint64) (blockdev.LoopInfo, bool) {
	if m.FSType != "squashfs" || !strings.HasPrefix(filepath.Base(m.Source), "loop") {
		return blockdev.LoopInfo{}, false
	}
	li, err := blockdev.Loop(sysRoot, m.Source)
	if err != nil || !li.ReadOnly || li.FileDev != rootDev || !filepath.IsAbs(li.File) {
		return blockdev.LoopInfo{}, false
	}
	li.Point = m.Point
	return li, true
}

// ---- reback-loops ---------------------------------------------------------

type rebackLoops struct{ rt *Runtime }

func (*rebackLoops) Name() string { return "reback-loops" }

// A loop left on the old file keeps the old root busy, nothing more:
// release names it.
func (*rebackLoops) Fatal() bool { return false }
func (st *rebackLoops) Describe(*State) string {
	ls := st.rt.Report.Rebacks
	if len(ls) == 0 {
		return "no read-only squashfs image of / mounted: no loop device to move"
	}
	var p []string
	for _, l := range ls {
		p = append(p, fmt.Sprintf("%s (%s on %s)", l.Dev, l.File, l.Point))
	}
	return "move the loop devices of squashfs images on / onto the new root's copies of their files (LOOP_CHANGE_FD; mounted and in use throughout): " + strings.Join(p, ", ")
}

func (st *rebackLoops) Do(ctx context.Context, s *State) error {
	var errs []error
	for _, l := range st.rt.Report.Rebacks {
		// After the pivot the file's path names the new root's copy.
		if err := rebackOnto(l, l.File, s.OldRoot.Dev()); err != nil {
			errs = append(errs, err)
			continue
		}
		st.rt.logf("    %s now reads %s of the new root", l.Dev, l.File)
		s.Rebacked = append(s.Rebacked, l)
	}
	return errors.Join(errs...)
}

// Undo moves them back onto the old root's files, which sit under the
// put-old directory until the pivot is undone.
func (st *rebackLoops) Undo(ctx context.Context, s *State) error {
	var errs []error
	for i := len(s.Rebacked) - 1; i >= 0; i-- {
		l := s.Rebacked[i]
		if err := blockdev.ChangeLoopBacking(l.Dev, filepath.Join(oldRootPath(s), l.File)); err != nil {
			errs = append(errs, err)
		}
	}
	s.Rebacked = nil
	return errors.Join(errs...)
}

// rebackOnto points loop l at file, refusing a file still on the old
// root's device (the pivot not done, or the path not on /).
func rebackOnto(l blockdev.LoopInfo, file string, oldDev uint64) error {
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil {
		return fmt.Errorf("%s: %w", l.Dev, err)
	}
	if st.Dev == oldDev {
		return fmt.Errorf("%s: %s is still on the old root's device", l.Dev, file)
	}
	return blockdev.ChangeLoopBacking(l.Dev, file)
}
