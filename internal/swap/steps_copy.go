package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/ext"
	"github.com/rootswap/rootswap/internal/extent"
	"github.com/rootswap/rootswap/internal/fstools"
	"golang.org/x/sys/unix"
)

// ---- copy -----------------------------------------------------------------

// copyRoot is the copy with / read-only: the pre-copy's frozen round,
// or, when no pre-copy ran (--backup), the whole used area.
type copyRoot struct {
	rt  *Runtime
	pre *precopy
}

func (*copyRoot) Name() string { return StepCopy }
func (*copyRoot) Fatal() bool  { return true }
func (st *copyRoot) Describe(s *State) string {
	r := st.rt.Report
	if st.pre != nil && st.pre.skipped(s) == "" {
		e := st.pre.estimate(s)
		if e.tracked {
			return fmt.Sprintf("copy what the tracked writes changed since the pre-copy, and what came into use, from %s to %s; read back every byte written: the copy then equals the still /", r.Root.Device, s.Opts.Target)
		}
		return fmt.Sprintf("read the used area of %s again, compare each 1 MiB chunk's hash with the pre-copy's, copy the chunks that differ to %s and read them back: the copy then equals the still /", r.Root.Device, s.Opts.Target)
	}
	how := "every block"
	if fstools.IsExt(r.Root.FSType) {
		how = "the blocks " + r.Root.FSType + " uses"
	}
	d := fmt.Sprintf("copy %s of %s (%s) to %s with O_DIRECT, then read it back and verify", how, r.Root.Device, human(r.Root.Size), s.Opts.Target)
	if s.Opts.Backup != "" {
		d += "; zstd backup to " + s.Opts.Backup
	}
	return d
}

func (st *copyRoot) Do(ctx context.Context, s *State) error {
	if st.pre != nil && st.pre.sess != nil {
		return st.frozenRound(ctx, s)
	}
	rt := st.rt
	r := rt.Report
	src, err := os.OpenFile(r.Root.Device, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer src.Close()
	// O_EXCL on a block device: fails with EBUSY if anyone mounted it
	// since the plan.
	dst, err := os.OpenFile(s.Opts.Target, os.O_RDWR|unix.O_EXCL, 0)
	if err != nil {
		return err
	}
	defer dst.Close()
	size := r.Root.Size
	extents := []extent.Extent{{Off: 0, Len: size}}
	if fstools.IsExt(r.Root.FSType) {
		used, err := ext.UsedExtents(src)
		switch {
		case err == nil:
			extents = used
		case errors.Is(err, ext.ErrNeedsRecovery) || errors.Is(err, ext.ErrNotClean):
			// The bitmaps cannot be trusted: copy every block.
			rt.logf("    %v: copying every block", err)
		default:
			return fmt.Errorf("reading %s's block bitmaps: %w", r.Root.Device, err)
		}
	}
	opts := blockcopy.Options{MergeGap: blockcopy.DefaultMergeGap, Direct: true, Verify: true, Sync: true, Span: extent.Extent{Off: 0, Len: size}}
	if s.Opts.Backup != "" {
		// The backup goes to the engine's tmpfs or another filesystem:
		// never the old root, which is read-only now.
		f, err := os.OpenFile(s.Opts.Backup, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer f.Close()
		opts.Backup, opts.BackupLevel = f, 3
	}
	opts.Progress = blockProgress(rt, func() (string, int) { return StepCopy, 1 })
	res, err := blockcopy.Copy(ctx, dst, src, extents, opts)
	s.Copied = res.Written
	if err != nil {
		return err
	}
	rt.logf("    copied %s in %s, verified %s in %s", humanize.IBytes(uint64(res.Written)), res.CopyTime.Round(time.Millisecond),
		humanize.IBytes(uint64(res.Verified)), res.VerifyTime.Round(time.Millisecond))
	return nil
}

// frozenRound is the pre-copy's last round, / read-only.
func (st *copyRoot) frozenRound(ctx context.Context, s *State) error {
	defer st.pre.close()
	st.pre.sess.mu.Lock()
	st.pre.sess.frozen = true
	st.pre.sess.mu.Unlock()
	r, err := st.pre.sess.p.Final(ctx)
	st.pre.record(s, r)
	return err
}

// The new device is left as it is for inspection: nothing to undo.
func (*copyRoot) Undo(context.Context, *State) error { return nil }

// ---- fsck -----------------------------------------------------------------

type checkNew struct{ rt *Runtime }

func (*checkNew) Name() string { return "fsck" }
func (*checkNew) Fatal() bool  { return true }
func (st *checkNew) Describe(s *State) string {
	in, why := checkInWindow(st.rt, s)
	if !in {
		return "no forced check in the read-only window: the copy is read back and proven equal to / as remount-ro left it clean (fsck-old checks the old root read-only once released; --fsck always checks here), unless / turns out unclean"
	}
	args, err := fstools.CheckArgs(st.rt.Report.Root.FSType, s.Opts.Target, fstools.Preen)
	if err != nil {
		return "check the copy: " + err.Error()
	}
	return fmt.Sprintf("%v (a forced check of the copy: %s)", args, why)
}
func (st *checkNew) Do(ctx context.Context, s *State) error {
	in, why := checkInWindow(st.rt, s)
	if !in {
		st.rt.logf("    no forced check here: the copy equals / as frozen clean; the old root is checked read-only once released")
		return nil
	}
	st.rt.logf("    %s", why)
	fstype := st.rt.Report.Root.FSType
	args, err := fstools.CheckArgs(fstype, s.Opts.Target, fstools.Preen)
	if err != nil {
		return err
	}
	if fstools.IsExt(fstype) {
		args = []string{"e2fsck", "-f", "-p", s.Opts.Target} // no -C0 bar in a log file
	}
	out, err := st.rt.Command(ctx, args[0], args[1:]...)
	if err == nil {
		return nil
	}
	code := fstools.ExitStatus(err)
	if fstools.IsExt(fstype) {
		meaning, fixed := fstools.E2fsckMeaning(code)
		if fixed {
			st.rt.logf("    e2fsck: %s", meaning)
			return nil
		}
		return fmt.Errorf("e2fsck exit %d: %s\n%s", code, meaning, out)
	}
	return fmt.Errorf("%v: %w\n%s", args, err, out)
}
func (*checkNew) Undo(context.Context, *State) error { return nil }

// ---- resize ---------------------------------------------------------------

// resizeNew grows an ext copy unmounted, in the window, only where it
// cannot grow mounted after the pivot (the grow step).
type resizeNew struct{ rt *Runtime }

func (*resizeNew) Name() string { return "resize" }

// A failed grow leaves a valid filesystem of the old size: reported, not fatal.
func (*resizeNew) Fatal() bool { return false }
func (st *resizeNew) Describe(s *State) string {
	r := st.rt.Report
	g := planGrow(st.rt)
	switch {
	case !g.need:
		return "the target is the size of / : nothing to grow"
	case g.offline == "":
		return "nothing here: the copy grows online after the pivot (grow), outside the read-only window"
	}
	return fmt.Sprintf("grow the copy from %s to the device's %s (resize2fs), unmounted: %s", human(r.Root.Size), human(r.Target.Size), g.offline)
}
func (st *resizeNew) Do(ctx context.Context, s *State) error {
	if g := planGrow(st.rt); !g.need || g.offline == "" {
		return nil
	}
	out, err := st.rt.Command(ctx, "resize2fs", s.Opts.Target)
	if err != nil {
		return fmt.Errorf("resize2fs %s: %w\n%s", s.Opts.Target, err, out)
	}
	return nil
}
func (*resizeNew) Undo(context.Context, *State) error { return nil }

// lastLine is the last non-empty line of a tool's output.
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// ---- new-uuid -------------------------------------------------------------

// newUUID gives the copy of an xfs or btrfs root a UUID of its own
// before it is mounted beside the original, which stays mounted (read-
// only) until the release. xfs refuses to mount a second filesystem with
// a UUID already mounted; btrfs before Linux 6.7 a second device with a
// mounted fsid. Mounting the xfs copy with nouuid would work too, but
// would leave two filesystems with one UUID on the machine: fstab's
// UUID= and the boot loader's root=UUID= could then find either on the
// next boot, and udev's /dev/disk/by-uuid link names one at random. With
// a new UUID they keep naming the old root, a known way back, until
// finish points them at the new one. xfs_admin needs a clean log, which
// remount-ro leaves; it never zeroes a dirty one (xfs_repair -L would
// lose its last changes), and the swap then rolls back. ext filesystems
// mount duplicates: their copy keeps the UUID and finish relabels the
// old root.
type newUUID struct{ rt *Runtime }

func (*newUUID) Name() string { return "new-uuid" }
func (*newUUID) Fatal() bool  { return true }

func needsNewUUID(fstype string) bool { return fstype == "xfs" || fstype == "btrfs" }

func (st *newUUID) Describe(s *State) string {
	fstype := st.rt.Report.Root.FSType
	if !needsNewUUID(fstype) {
		return "the copy keeps the UUID and label of / (" + fstype + " mounts a duplicate); relabel-old gives the old root a new UUID and label once it is released"
	}
	args, err := fstools.NewUUIDArgs(fstype, s.Opts.Target)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%s: a UUID of its own for the copy (%s refuses to mount a duplicate of the mounted /); fstab and the boot loader name the old root until finish",
		strings.Join(args, " "), fstype)
}

func (st *newUUID) Do(ctx context.Context, s *State) error {
	rt := st.rt
	fstype := rt.Report.Root.FSType
	if !needsNewUUID(fstype) {
		return nil
	}
	args, err := fstools.NewUUIDArgs(fstype, s.Opts.Target)
	if err != nil {
		return err
	}
	before, err := fstools.DetectPath(s.Opts.Target)
	if err != nil {
		return err
	}
	out, err := rt.Command(ctx, args[0], args[1:]...)
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
	}
	// xfs_admin exits 0 when xfs_db refused (a dirty log): the
	// superblock says whether it worked.
	after, err := fstools.DetectPath(s.Opts.Target)
	if err != nil {
		return err
	}
	if after.UUID == "" || strings.EqualFold(after.UUID, before.UUID) {
		return fmt.Errorf("%s left the UUID of %s at %s:\n%s", strings.Join(args, " "), s.Opts.Target, before.UUID, out)
	}
	s.NewUUID = after.UUID
	rt.logf("    the copy's UUID is now %s (the old root keeps %s)", after.UUID, before.UUID)
	return nil
}

// The copy is left as it is for inspection: nothing to undo.
func (*newUUID) Undo(context.Context, *State) error { return nil }
