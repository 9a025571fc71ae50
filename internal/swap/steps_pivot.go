package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
	"golang.org/x/sys/unix"
)

// ---- mount-new ------------------------------------------------------------

type mountNew struct{ rt *Runtime }

func (*mountNew) Name() string { return "mount-new" }
func (*mountNew) Fatal() bool  { return true }
func (st *mountNew) Describe(s *State) string {
	return fmt.Sprintf("mount %s at %s (%s, read-write)", newRootSource(st.rt, s), s.Opts.NewRoot, st.rt.Report.Root.FSType)
}
func (st *mountNew) Do(ctx context.Context, s *State) error {
	// / is read-only now; /mnt/newroot must already exist on it (plan
	// says so) or live on a tmpfs. Creating it is tried all the same.
	if _, err := os.Stat(s.Opts.NewRoot); err != nil {
		if err := os.MkdirAll(s.Opts.NewRoot, 0o755); err != nil {
			return fmt.Errorf("%s is missing and / is read-only: %w", s.Opts.NewRoot, err)
		}
	}
	root := st.rt.Report.Root.Mount
	flags := mountFlags(root.Options) &^ unix.MS_RDONLY
	if err := st.rt.Mounter.Mount(newRootSource(st.rt, s), s.Opts.NewRoot, root.FSType, flags, ""); err != nil {
		return err
	}
	s.Mounted = true
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
	var newDev unix.Stat_t
	if err := unix.Stat(s.Opts.NewRoot, &newDev); err != nil {
		return fmt.Errorf("stat %s after the pivot back: %w", s.Opts.NewRoot, err)
	}
	return rehome(ctx, rt, s, newDev.Dev)
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
	return fmt.Sprintf("mount --move every submount of /%s back under / (%d: %v), then restore shared propagation", s.Opts.PutOld, len(st.rt.Report.Submounts), st.rt.Report.Submounts)
}
func (st *moveMounts) Do(ctx context.Context, s *State) error {
	rt := st.rt
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return err
	}
	moves, err := mountops.MoveSubmounts(rt.Mounter, t, oldRootPath(s), mountops.MoveOptions{})
	for _, m := range moves {
		if m.Done {
			s.Moved = append(s.Moved, m.To)
			rt.logf("    moved %s -> %s (%s)", m.From, m.To, m.Mount.FSType)
		} else if m.Skipped != "" {
			rt.logf("    left %s: %s", m.From, m.Skipped)
		}
	}
	if err != nil {
		return err
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
	rt.ProcRoot = filepath.Join(oldRootPath(s), "proc")
	return errors.Join(errs...)
}
