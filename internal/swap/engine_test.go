package swap

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/journal"
)

// fakeStep records Do and Undo calls in a shared log.
type fakeStep struct {
	name    string
	fail    error
	undoErr error
	fatal   bool
	log     *[]string
}

func (f *fakeStep) Name() string           { return f.name }
func (f *fakeStep) Describe(*State) string { return "do " + f.name }
func (f *fakeStep) Fatal() bool            { return f.fatal }
func (f *fakeStep) Do(context.Context, *State) error {
	*f.log = append(*f.log, "do "+f.name)
	return f.fail
}
func (f *fakeStep) Undo(context.Context, *State) error {
	*f.log = append(*f.log, "undo "+f.name)
	return f.undoErr
}

func newEngine(t *testing.T) (*Engine, string) {
	p := filepath.Join(t.TempDir(), "journal")
	j, err := journal.Create(p, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return &Engine{Journal: j}, p
}

func TestRunRollsBackOnFatalFailure(t *testing.T) {
	var log []string
	steps := []Step{
		&fakeStep{name: "a", fatal: true, log: &log},
		&fakeStep{name: "b", fatal: false, fail: errors.New("soft"), log: &log},
		&fakeStep{name: "c", fatal: true, log: &log},
		&fakeStep{name: "d", fatal: true, fail: errors.New("boom"), log: &log},
		&fakeStep{name: "e", fatal: true, log: &log},
	}
	e, path := newEngine(t)
	res := e.Run(context.Background(), steps, &State{})
	want := []string{"do a", "do b", "do c", "do d", "undo c", "undo a"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("calls = %q, want %q", log, want)
	}
	if res.Phase != journal.RolledBack || res.Failed != "d" {
		t.Errorf("result = %+v", res)
	}
	st, err := LoadStatus("/proc", path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != journal.RolledBack || st.Err == "" {
		t.Errorf("status = %s %q", st.Phase, st.Err)
	}
}

func TestRollbackGoesOnPastFailedUndo(t *testing.T) {
	var log []string
	steps := []Step{
		&fakeStep{name: "a", fatal: true, log: &log},
		&fakeStep{name: "b", fatal: true, undoErr: errors.New("stuck"), log: &log},
		&fakeStep{name: "c", fatal: true, fail: errors.New("boom"), log: &log},
	}
	e, _ := newEngine(t)
	res := e.Run(context.Background(), steps, &State{})
	if want := []string{"do a", "do b", "do c", "undo b", "undo a"}; !reflect.DeepEqual(log, want) {
		t.Errorf("calls = %q, want %q", log, want)
	}
	if res.Phase != journal.Failed || res.UndoErrors["b"] == nil {
		t.Errorf("result = %+v, want failed with b's undo error", res)
	}
}

func TestNoRollbackPastNoReturn(t *testing.T) {
	var log []string
	release := &fakeStep{name: "release", fatal: true, log: &log}
	steps := []Step{
		&fakeStep{name: "a", fatal: true, log: &log},
		release,
		&fakeStep{name: "z", fatal: true, fail: errors.New("late"), log: &log},
	}
	s := &State{}
	e, _ := newEngine(t)
	// The release step marks the point of no return.
	steps[1] = stepFunc{release, func(s *State) { s.PastNoReturn = true }}
	res := e.Run(context.Background(), steps, s)
	if want := []string{"do a", "do release", "do z"}; !reflect.DeepEqual(log, want) {
		t.Errorf("calls = %q, want %q", log, want)
	}
	if res.Phase != journal.Failed {
		t.Errorf("phase = %s, want failed", res.Phase)
	}
}

type stepFunc struct {
	*fakeStep
	after func(*State)
}

func (s stepFunc) Do(ctx context.Context, st *State) error {
	err := s.fakeStep.Do(ctx, st)
	s.after(st)
	return err
}

func TestStateSurvivesJournal(t *testing.T) {
	s := &State{Stopped: []string{"cron", "rsyslog"}, Pivoted: true}
	s.Opts.Target = "/dev/sys/root"
	got, err := Unmarshal(s.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Stopped, s.Stopped) || !got.Pivoted || got.Opts.Target != s.Opts.Target {
		t.Errorf("round trip = %+v", got)
	}
}
