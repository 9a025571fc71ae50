package swap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountinfo"
)

// RollbackFromJournal undoes, in reverse, every step the journal shows
// completed and not yet undone, with the state saved after the last of
// them: `rootswap rollback` after the engine died (SIGKILL, OOM).
//
// The state is the one saved last, at a step boundary or in the intent
// record of a mount operation; the operations of the step that was
// running are replayed on it (replayIntents), the one the engine was
// killed in settled by the live mount table. trusted says the journal
// is the engine's own (its tmpfs, or the archive): from any other file,
// no command line it holds is run (killed daemons are not started again;
// the admin is told their command lines instead).
func RollbackFromJournal(ctx context.Context, rt *Runtime, path string, trusted bool, j *journal.Journal) (Result, error) {
	recs, err := journal.ReadFile(path)
	if err != nil {
		return Result{}, err
	}
	var state *State
	running := -1 // index of the begin or undo record of a step that never ended
	for i, r := range recs {
		if d := r.Data["state"]; d != "" {
			if s, err := Unmarshal(d); err == nil {
				state = s
			}
		}
		switch r.Kind {
		case journal.KindBegin, journal.KindUndo:
			running = i
		case journal.KindEnd, journal.KindFail, journal.KindUndone, journal.KindUndoFail:
			running = -1
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
	if t, err := mountinfo.Read(rt.ProcRoot, "self"); err == nil {
		if running >= 0 {
			for _, n := range replayIntents(state, recs[running].Step, recs[running+1:], t) {
				rt.logf("    %s", n)
			}
		}
		// Whatever the journal says, the mount table knows the pivot.
		if live := pivotedLive(state, t); live != state.Pivoted {
			rt.logf("    the mount table says pivoted: %v (the journal's state said %v): going by the mount table", live, state.Pivoted)
			state.Pivoted = live
		}
	} else {
		rt.logf("    cannot read the mount table (%v): going by the journal alone", err)
	}
	if !trusted {
		for i := range state.Killed {
			if k := &state.Killed[i]; len(k.Argv) > 0 {
				rt.logf("    not starting %s again: %s is not the engine's own journal; its command line was: %s", k.Comm, path, strings.Join(k.Argv, " "))
				k.Argv, k.Environ = nil, nil
			}
		}
		// A service's name becomes a script's path on sysvinit and OpenRC.
		state.Stopped = slices.DeleteFunc(state.Stopped, func(n string) bool { return strings.ContainsRune(n, '/') })
	}
	if state.Pivoted && !exists(filepath.Join(rt.ProcRoot, "self/stat")) {
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
	e.Journaled(rt, nil)
	return e.Rollback(ctx, done, state, "rollback asked for from a new session (the engine is gone)"), nil
}
