package swap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rootswap/rootswap/internal/journal"
)

// RollbackFromJournal undoes, in reverse, every step the journal shows
// completed and not yet undone, with the state saved after the last of
// them: `rootswap rollback` after the engine died (SIGKILL, OOM).
func RollbackFromJournal(ctx context.Context, rt *Runtime, path string, j *journal.Journal) (Result, error) {
	recs, err := journal.ReadFile(path)
	if err != nil {
		return Result{}, err
	}
	var state *State
	for _, r := range recs {
		if d := r.Data["state"]; d != "" {
			if s, err := Unmarshal(d); err == nil {
				state = s
			}
		}
	}
	if state == nil {
		return Result{}, errors.New("the journal holds no saved state: nothing was changed")
	}
	sum := journal.Summarize(recs)
	switch sum.Phase {
	case journal.Succeeded, journal.RolledBack:
		return Result{}, fmt.Errorf("the swap already ended: %s", sum.Phase)
	}
	if state.PastNoReturn {
		return Result{}, errors.New("the old root was already released: there is nothing to go back to")
	}
	if state.Pivoted && len(state.Moved) == 0 {
		rt.ProcRoot = filepath.Join(oldRootPath(state), "proc")
	}
	rt.Report = &Report{}
	rt.Report.Root.Mount = state.OldRoot
	rt.Report.Mkfs = state.Opts.Mkfs
	rt.NoBPF = state.Opts.NoBPF
	byName := map[string]Step{}
	for _, st := range Steps(rt) {
		byName[st.Name()] = st
	}
	var done []Step
	for _, st := range sum.Steps {
		if st.Done && !st.Undone {
			if s, ok := byName[st.Name]; ok {
				done = append(done, s)
			}
		}
	}
	// A step that failed half-way may have changed something its state
	// records (a pivot that happened, then its mkdir failed): undo it too
	// when the state says so; each Undo checks its own state first.
	if last := sum.Steps; len(last) > 0 && !last[len(last)-1].Done && !last[len(last)-1].Undone {
		if s, ok := byName[last[len(last)-1].Name]; ok {
			done = append(done, s)
		}
	}
	e := &Engine{Journal: j, Log: rt.logf}
	return e.Rollback(ctx, done, state, "rollback asked for from a new session (the engine is gone)"), nil
}
