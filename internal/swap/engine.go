package swap

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/rootswap/rootswap/internal/journal"
)

// ErrRollbackRequested is returned by a step (the confirm wait) when the
// admin asked for a rollback or the confirm deadline passed.
var ErrRollbackRequested = errors.New("rollback requested")

// Engine runs steps, journaling each.
type Engine struct {
	Journal *journal.Journal
	// Log receives the progress lines the engine prints (its own stderr
	// or a log file in the tmpfs).
	Log func(format string, args ...any)
	// Inject, when set, is asked before each step's Do; an error it
	// returns fails the step without running it. Root tests use it
	// (through ROOTSWAP_TEST_FAULT) to prove rollback from every step.
	Inject func(step string) error

	wal *wal // set by Journaled: the steps' mount operations, journaled
}

// Journaled wires the engine's journal into rt: every mount, move,
// unmount, remount and pivot_root the steps make through rt.Mounter gets
// an intent record before it and an outcome after it. inject, when set,
// is also asked after each such operation (fault points STEP/OP#N).
func (e *Engine) Journaled(rt *Runtime, inject func(string) error) {
	e.wal = &wal{j: e.Journal, fault: inject}
	rt.Mounter = &walMounter{rt.Mounter, e.wal}
}

func (e *Engine) enter(step string, undo bool, s *State) {
	if e.wal != nil {
		e.wal.enter(step, undo, s)
	}
}

// journalErr is the first journal write that failed since the last call.
func (e *Engine) journalErr() error {
	if e.Journal == nil {
		return nil
	}
	return e.Journal.TakeErr()
}

// Result is how a run ended.
type Result struct {
	Phase  journal.Phase
	Failed string // the step that failed, if any
	Err    error
	Undone []string
	// UndoErrors are steps whose undo failed: the machine needs a human.
	UndoErrors map[string]error
}

// Run executes steps in order. When a fatal step fails, it undoes every
// completed step in reverse and returns the rolled-back result. State is
// saved in every end record so that a new session can rebuild it.
//
// A journal that cannot be written (ENOSPC) fails the step: a step is not
// begun unless its begin record is written, and one whose records were
// lost has failed, whatever it did, and is rolled back with the others.
func (e *Engine) Run(ctx context.Context, steps []Step, s *State) Result {
	data := EngineIdentity("/proc", os.Getpid())
	data["state"] = s.Marshal()
	e.add(journal.Record{Kind: journal.KindStart, PID: os.Getpid(), Data: data})
	if err := e.journalErr(); err != nil {
		e.logf("!!! the journal cannot be written: %v", err)
		return Result{Phase: journal.Failed, Err: err}
	}
	var done []Step
	for _, st := range steps {
		desc := st.Describe(s)
		e.logf("==> %s: %s", st.Name(), desc)
		e.add(journal.Record{Kind: journal.KindBegin, Step: st.Name(), Describe: desc})
		err := e.journalErr()
		jfail := err != nil // fatal whatever the step: nothing may go on unrecorded
		if jfail {
			err = fmt.Errorf("not begun: the journal cannot record it: %w", err)
		}
		if err == nil && e.Inject != nil {
			err = e.Inject(st.Name())
		}
		if err == nil {
			e.enter(st.Name(), false, s)
			err = st.Do(ctx, s)
			e.enter("", false, nil)
			if jerr := e.journalErr(); err == nil && jerr != nil {
				// Done but not recorded: undone with the others.
				done = append(done, st)
				err, jfail = fmt.Errorf("the journal cannot record it: %w", jerr), true
			}
		}
		if err == nil {
			done = append(done, st)
			e.add(journal.Record{Kind: journal.KindEnd, Step: st.Name(), Data: map[string]string{"state": s.Marshal()}})
			if jerr := e.journalErr(); jerr != nil {
				err, jfail = fmt.Errorf("the journal cannot record its end: %w", jerr), true
			} else {
				continue
			}
		}
		e.add(journal.Record{Kind: journal.KindFail, Step: st.Name(), Err: err.Error(), Data: map[string]string{"state": s.Marshal()}})
		if !st.Fatal() && !jfail {
			e.logf("    %s failed (not fatal, going on): %v", st.Name(), err)
			e.add(journal.Record{Kind: journal.KindNote, Describe: fmt.Sprintf("%s failed, not fatal: %v", st.Name(), err)})
			continue
		}
		e.logf("!!! %s failed: %v", st.Name(), err)
		if s.PastNoReturn {
			// Nothing to walk back to: the old root is gone. Say so.
			e.add(journal.Record{Kind: journal.KindDone, Result: string(journal.Failed), Step: st.Name(), Err: err.Error()})
			return Result{Phase: journal.Failed, Failed: st.Name(), Err: err}
		}
		res := e.Rollback(ctx, done, s, fmt.Sprintf("%s failed: %v", st.Name(), err))
		res.Failed, res.Err = st.Name(), err
		return res
	}
	e.add(journal.Record{Kind: journal.KindDone, Result: string(journal.Succeeded)})
	return Result{Phase: journal.Succeeded}
}

// Rollback undoes done (completed steps, in the order they ran) in reverse.
// An undo that fails is reported and rollback goes on: stopping half-way
// would leave the machine in a state nobody planned.
func (e *Engine) Rollback(ctx context.Context, done []Step, s *State, why string) Result {
	// Rollback must finish even when the run's context was cancelled.
	ctx = context.WithoutCancel(ctx)
	e.logf("<== rolling back: %s", why)
	e.add(journal.Record{Kind: journal.KindRollback, Err: why})
	res := Result{Phase: journal.RolledBack, UndoErrors: map[string]error{}}
	for i := len(done) - 1; i >= 0; i-- {
		st := done[i]
		e.logf("<== undo %s", st.Name())
		e.add(journal.Record{Kind: journal.KindUndo, Step: st.Name()})
		e.enter(st.Name(), true, s)
		err := st.Undo(ctx, s)
		e.enter("", false, nil)
		if err != nil {
			e.logf("!!! undo %s failed: %v", st.Name(), err)
			res.UndoErrors[st.Name()] = err
			e.add(journal.Record{Kind: journal.KindUndoFail, Step: st.Name(), Err: err.Error(), Data: map[string]string{"state": s.Marshal()}})
			continue
		}
		res.Undone = append(res.Undone, st.Name())
		e.add(journal.Record{Kind: journal.KindUndone, Step: st.Name(), Data: map[string]string{"state": s.Marshal()}})
	}
	if len(res.UndoErrors) > 0 {
		res.Phase = journal.Failed
		e.add(journal.Record{Kind: journal.KindDone, Result: string(journal.Failed), Err: fmt.Sprintf("rollback incomplete: %d undo steps failed", len(res.UndoErrors))})
		return res
	}
	e.add(journal.Record{Kind: journal.KindDone, Result: string(journal.RolledBack), Err: why})
	return res
}

func (e *Engine) add(r journal.Record) {
	if e.Journal == nil {
		return
	}
	if err := e.Journal.Add(r); err != nil {
		e.logf("journal: %v", err)
	}
}

func (e *Engine) logf(format string, args ...any) {
	if e.Log != nil {
		e.Log(format, args...)
	}
}
