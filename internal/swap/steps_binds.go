package swap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
)

// ---- remake-binds ---------------------------------------------------------

// remakeBinds replaces the bind mounts of the old root's own directories,
// which move-mounts carried back under / still pointing into the old
// filesystem, by binds of the same directories of the new root.
type remakeBinds struct{ rt *Runtime }

func (*remakeBinds) Name() string { return "remake-binds" }
func (*remakeBinds) Fatal() bool  { return true }
func (st *remakeBinds) Describe(*State) string {
	bs := st.rt.Report.Binds
	if len(bs) == 0 {
		return "no bind mount of a directory of /: nothing to re-make"
	}
	var p []string
	for _, b := range bs {
		p = append(p, b.String())
	}
	return "re-make from the new root, parents first, the bind mounts of the old root's directories (moved, they would keep it busy): " +
		strings.Join(p, ", ") + "; the old ones are unmounted (detached when in use: their users are restarted)"
}

func stagingDir(s *State) string { return filepath.Join(s.Opts.EngineDir, "binds") }

func (st *remakeBinds) Do(ctx context.Context, s *State) error {
	rt := st.rt
	if len(rt.Report.Binds) == 0 {
		return nil
	}
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return err
	}
	res, err := mountops.Remake(rt.Mounter, t, rt.Report.Binds, mountops.RemakeOptions{
		SourceRoot: "/", Leaving: s.OldRoot.Dev(), Staging: stagingDir(s), Logf: rt.logf,
	})
	for _, r := range res {
		if r.Made {
			s.Rebound = append(s.Rebound, r.Bind)
		} else if r.Skipped != "" {
			rt.logf("    left %s: %s", r.Point, r.Skipped)
		}
	}
	if err != nil {
		// Not in the rollback's list when it fails: put back what it made.
		if uerr := st.Undo(ctx, s); uerr != nil {
			return errors.Join(err, fmt.Errorf("putting the old bind mounts back: %w", uerr))
		}
	}
	return err
}

// Undo re-makes them from the old root at its place, before move-mounts'
// undo carries them back under it.
func (st *remakeBinds) Undo(ctx context.Context, s *State) error {
	rt := st.rt
	if len(s.Rebound) == 0 {
		return nil
	}
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return err
	}
	root, ok := t.Containing("/")
	if !ok {
		return fmt.Errorf("no mount holds / in %s/self/mountinfo", rt.ProcRoot)
	}
	res, err := mountops.Remake(rt.Mounter, t, s.Rebound, mountops.RemakeOptions{
		SourceRoot: oldRootPath(s), Leaving: root.Dev(), Staging: stagingDir(s), Logf: rt.logf,
	})
	var left []mountops.Bind
	for _, r := range res {
		if !r.Made && r.Skipped == "" {
			left = append(left, r.Bind)
		}
	}
	s.Rebound = left
	return err
}
