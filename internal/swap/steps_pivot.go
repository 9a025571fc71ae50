package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
	"golang.org/x/sys/unix"
)

// ---- mount-new ------------------------------------------------------------

type mountNew struct{ rt *Runtime }

func (*mountNew) Name() string { return stepMountNew }
func (*mountNew) Fatal() bool  { return true }
func (st *mountNew) Describe(s *State) string {
	if t := st.rt.Report.Mkfs; t != "" {
		return fmt.Sprintf("the copy (%s), mounted at %s since precopy, is the new root: checks it has /sbin/init", t, s.Opts.NewRoot)
	}
	root := st.rt.Report.Root.Mount
	return fmt.Sprintf("mount %s at %s (%s, read-write)%s", CanonicalDevice(st.rt.SysRoot, s.Opts.Target), s.Opts.NewRoot,
		st.rt.Report.Root.FSType, describeSubvol(root))
}
func (st *mountNew) Do(ctx context.Context, s *State) error {
	// / is read-only now; /mnt/newroot must already exist on it (plan
	// says so) or live on a tmpfs. Creating it is tried all the same.
	if _, err := os.Stat(s.Opts.NewRoot); err != nil {
		if err := os.MkdirAll(s.Opts.NewRoot, 0o755); err != nil {
			return fmt.Errorf("%s is missing and / is read-only: %w", s.Opts.NewRoot, err)
		}
	}
	rt := st.rt
	root := rt.Report.Root.Mount
	if rt.Report.Mkfs != "" {
		return checkNewRoot(s) // precopy mounted it
	}
	flags := mountFlags(root.Options) &^ unix.MS_RDONLY
	// The name mount(8) would show (/dev/mapper/VG-LV, not the
	// /dev/VG/LV link the admin typed): the kernel keeps the string it
	// is given as the mount's source.
	source := CanonicalDevice(rt.SysRoot, s.Opts.Target)
	data := newRootData(root)
	err := rt.Mounter.Mount(source, s.Opts.NewRoot, root.FSType, flags, data)
	if err != nil && errors.Is(err, unix.EINVAL) && data != subvolData(root) {
		// An option the kernel showed for / but does not take back:
		// the subvolume alone; the rest comes back with the next boot.
		rt.logf("    %v: mounting with %q only", err, subvolData(root))
		err = rt.Mounter.Mount(source, s.Opts.NewRoot, root.FSType, flags, subvolData(root))
	}
	if err != nil {
		return err
	}
	s.Mounted = true
	return checkNewRoot(s)
}

// checkNewRoot makes the place of the old root on the new one and
// checks that the new one has an init.
func checkNewRoot(s *State) error {
	// The copy is the old root; it must be able to hold the old root.
	put := filepath.Join(s.Opts.NewRoot, s.Opts.PutOld)
	if err := os.MkdirAll(put, 0o755); err != nil {
		return fmt.Errorf("mkdir %s on the new root: %w", put, err)
	}
	if _, err := os.Stat(filepath.Join(s.Opts.NewRoot, "sbin/init")); err != nil {
		if _, err2 := os.Lstat(filepath.Join(s.Opts.NewRoot, "sbin/init")); err2 != nil {
			return fmt.Errorf("the new root has no /sbin/init: %w", err)
		}
	}
	return nil
}
func (st *mountNew) Undo(ctx context.Context, s *State) error {
	if !s.Mounted {
		return nil
	}
	if err := st.rt.Mounter.Unmount(s.Opts.NewRoot, 0); err != nil {
		// Something still has it open: detach it; the device stays for inspection.
		if err2 := st.rt.Mounter.Unmount(s.Opts.NewRoot, unix.MNT_DETACH); err2 != nil {
			return err
		}
	}
	s.Mounted = false
	return nil
}

// ---- pivot ----------------------------------------------------------------

type pivot struct{ rt *Runtime }

func (*pivot) Name() string { return StepPivot }
func (*pivot) Fatal() bool  { return true }
func (st *pivot) Describe(s *State) string {
	return fmt.Sprintf("make / private, cd %s; pivot_root . %s (old root to /%s)", s.Opts.NewRoot, s.Opts.PutOld, s.Opts.PutOld)
}
func (st *pivot) Do(ctx context.Context, s *State) error {
	rt := st.rt
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return err
	}
	// Recorded before Pivot makes everything private, restored after the
	// submounts are back.
	for _, p := range mountops.SavePropagation(t, "/") {
		s.Shared = append(s.Shared, p.Point)
	}
	if err := mountops.Pivot(rt.Mounter, t, s.Opts.NewRoot, filepath.Join(s.Opts.NewRoot, s.Opts.PutOld), rt.logf); err != nil {
		restoreShared(rt, s) // / may be private already; a failed step is not undone
		return err
	}
	s.Pivoted = true
	// /proc now names the new root's empty directory; procfs is below
	// the old root until move-mounts.
	rt.ProcRoot = filepath.Join(oldRootPath(s), "proc")
	return nil
}
func (st *pivot) Undo(ctx context.Context, s *State) error {
	if !s.Pivoted {
		// Killed between making / private and pivot_root: the
		// propagation is all there is to take back.
		restoreShared(st.rt, s)
		return nil
	}
	rt := st.rt
	procRoot := filepath.Join(oldRootPath(s), "proc")
	t, err := mountinfo.Read(procRoot, "self")
	if err != nil {
		return err
	}
	if err := mountops.PivotBack(rt.Mounter, t, oldRootPath(s), s.Opts.NewRoot, rt.logf); err != nil {
		return err
	}
	s.Pivoted = false
	rt.ProcRoot = "/proc"
	restoreShared(rt, s)
	// Everything restarted onto the new root comes back to the old one.
	// The device is the mount's, as the holders are matched: a btrfs
	// subvolume's st_dev is not.
	now, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return err
	}
	m, ok := now.Containing(s.Opts.NewRoot)
	if !ok || m.Point != s.Opts.NewRoot {
		return fmt.Errorf("after the pivot back, %s is no mount point", s.Opts.NewRoot)
	}
	return rehome(ctx, rt, s, m.Dev())
}

func restoreShared(rt *Runtime, s *State) {
	if len(s.Shared) == 0 {
		return
	}
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		rt.logf("    restoring shared propagation: %v", err)
		return
	}
	var saved []mountops.Propagation
	for _, p := range s.Shared {
		saved = append(saved, mountops.Propagation{Point: p})
	}
	if _, err := mountops.RestoreShared(rt.Mounter, t, saved); err != nil {
		rt.logf("    restoring shared propagation: %v", err)
	}
}

// ---- move-mounts ----------------------------------------------------------

type moveMounts struct{ rt *Runtime }

func (*moveMounts) Name() string { return StepMoveMounts }
func (*moveMounts) Fatal() bool  { return true }
func (st *moveMounts) Describe(s *State) string {
	r := st.rt.Report
	d := fmt.Sprintf("mount --move every submount of /%s back under / (%d: %v)", s.Opts.PutOld, len(r.Submounts), r.Submounts)
	if len(r.SameFS) > 0 {
		var p []string
		for _, m := range r.SameFS {
			p = append(p, m.Point+m.Subvol)
		}
		d += fmt.Sprintf("; except %s, the same %s filesystem as / (moved, it would keep the old device busy): mounted again from %s, the old ones unmounted with the old root",
			strings.Join(p, ", "), r.Root.FSType, CanonicalDevice(st.rt.SysRoot, s.Opts.Target))
	}
	return d + ", then restore shared propagation"
}

func (st *moveMounts) Do(ctx context.Context, s *State) error {
	rt := st.rt
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return err
	}
	oldMnt, _ := t.Containing(oldRootPath(s))
	sameFS := func(m mountinfo.Mount) bool { return isOtherSubvol(m, oldMnt) }
	leave := func(m mountinfo.Mount) string {
		if sameFS(m) {
			return "the old root's own filesystem: mounted again from the new device"
		}
		return ""
	}
	moves, err := mountops.MoveSubmounts(rt.Mounter, t, oldRootPath(s), mountops.MoveOptions{Leave: leave})
	var again []mountinfo.Mount
	for _, m := range moves {
		switch {
		case m.Done:
			s.Moved = append(s.Moved, m.To)
			rt.logf("    moved %s -> %s (%s)", m.From, m.To, m.Mount.FSType)
		case sameFS(m.Mount):
			again = append(again, m.Mount)
		case m.Skipped != "":
			rt.logf("    left %s: %s", m.From, m.Skipped)
		}
	}
	if err != nil {
		return err
	}
	source := CanonicalDevice(rt.SysRoot, s.Opts.Target)
	for _, m := range again {
		if err := remountSameFS(rt, s, t, m, source); err != nil {
			return err
		}
	}
	rt.ProcRoot = "/proc"
	restoreShared(rt, s)
	return nil
}
func (st *moveMounts) Undo(ctx context.Context, s *State) error {
	rt := st.rt
	// MS_MOVE refuses mounts below a shared parent: private first.
	if err := mountops.MakePrivate(rt.Mounter, "/", true); err != nil {
		return err
	}
	var errs []error
	for i := len(s.Moved) - 1; i >= 0; i-- {
		to := filepath.Join(oldRootPath(s), s.Moved[i])
		if err := rt.Mounter.Mount(s.Moved[i], to, "", unix.MS_MOVE, ""); err != nil {
			errs = append(errs, err)
			continue
		}
		s.Moved = s.Moved[:i]
	}
	// The copy's mounts of the same filesystem go; the old ones they
	// replaced are still below the old root and come back with it.
	for i := len(s.Remounted) - 1; i >= 0; i-- {
		if err := rt.Mounter.Unmount(s.Remounted[i], unix.MNT_DETACH); err != nil {
			errs = append(errs, err)
			continue
		}
		s.Remounted = s.Remounted[:i]
	}
	rt.ProcRoot = filepath.Join(oldRootPath(s), "proc")
	return errors.Join(errs...)
}

// remountSameFS mounts m, a subvolume of the old root's filesystem below
// the old root, again from the new device at its place under /; moves
// the mounts on it there (or mounts them again the same way when they
// are the same filesystem too). The old one stays below the old root,
// for a rollback, until release-oldroot unmounts it with the old root.
func remountSameFS(rt *Runtime, s *State, t mountinfo.Table, m mountinfo.Mount, source string) error {
	old := oldRootPath(s)
	to := strings.TrimPrefix(m.Point, old)
	if err := os.MkdirAll(to, 0o755); err != nil {
		return fmt.Errorf("mount point %s on the new root: %w", to, err)
	}
	if err := rt.Mounter.Mount(source, to, m.FSType, mountFlags(m.Options), subvolData(m)); err != nil {
		return err
	}
	s.Remounted = append(s.Remounted, to)
	rt.logf("    mounted %s%s again, from %s", to, describeSubvol(m), source)
	oldMnt, _ := t.Containing(old)
	for _, c := range t {
		if c.Parent != m.ID {
			continue
		}
		if isOtherSubvol(c, oldMnt) {
			if err := remountSameFS(rt, s, t, c, source); err != nil {
				return err
			}
			continue
		}
		cto := strings.TrimPrefix(c.Point, old)
		if err := rt.Mounter.Mount(c.Point, cto, "", unix.MS_MOVE, ""); err != nil {
			return err
		}
		s.Moved = append(s.Moved, cto)
		rt.logf("    moved %s -> %s (%s)", c.Point, cto, c.FSType)
	}
	return nil
}
