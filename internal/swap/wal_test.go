package swap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountinfo"
)

// The operations of the step the engine was killed in are replayed on the
// state saved before them; the last one, without an outcome, is settled by
// the mount table.
func TestReplayIntents(t *testing.T) {
	opts := Options{PutOld: "mnt/oldroot"}
	old := mountinfo.Mount{ID: 10, Major: 7, Minor: 0, Point: "/", Options: "rw"}
	intent := func(step, op, source, target, flags string) journal.Record {
		return journal.Record{Kind: journal.KindIntent, Step: step, Data: map[string]string{"op": op, "source": source, "target": target, "flags": flags}}
	}
	outcome := func(step, op, target, err string) journal.Record {
		return journal.Record{Kind: journal.KindOutcome, Step: step, Err: err, Data: map[string]string{"op": op, "target": target}}
	}
	pivoted := mountinfo.Table{
		{ID: 20, Major: 7, Minor: 1, Point: "/", Options: "rw"},
		{ID: 10, Parent: 20, Major: 7, Minor: 0, Point: "/mnt/oldroot", Options: "ro"},
		{ID: 11, Parent: 20, Major: 0, Minor: 5, Point: "/proc", Options: "rw"},
		{ID: 13, Parent: 10, Major: 0, Minor: 7, Point: "/mnt/oldroot/dev", Options: "rw"},
	}
	for _, tc := range []struct {
		name  string
		step  string
		recs  []journal.Record
		t     mountinfo.Table
		check func(s *State) bool
	}{
		{"killed right after pivot_root", StepPivot,
			[]journal.Record{intent(StepPivot, "pivot", ".", "mnt/oldroot", "")}, pivoted,
			func(s *State) bool { return s.Pivoted }},
		{"killed just before pivot_root", StepPivot,
			[]journal.Record{intent(StepPivot, "pivot", ".", "mnt/oldroot", "")},
			mountinfo.Table{old, {ID: 20, Parent: 10, Major: 7, Minor: 1, Point: "/mnt/newroot"}},
			func(s *State) bool { return !s.Pivoted }},
		{"killed in the moves", StepMoveMounts, []journal.Record{
			intent(StepMoveMounts, "move", "/mnt/oldroot/proc", "/proc", "MS_MOVE"),
			outcome(StepMoveMounts, "move", "/proc", ""),
			intent(StepMoveMounts, "move", "/mnt/oldroot/sys", "/sys", "MS_MOVE"),
			outcome(StepMoveMounts, "move", "/sys", "mount: invalid argument"),
			intent(StepMoveMounts, "move", "/mnt/oldroot/run", "/run", "MS_MOVE"),
			{Kind: journal.KindNote, Describe: "fault injected"},
		}, pivoted,
			func(s *State) bool { return reflect.DeepEqual(s.Moved, []string{"/proc", "/run"}) }},
		{"killed before the move took place", StepMoveMounts, []journal.Record{
			intent(StepMoveMounts, "move", "/mnt/oldroot/dev", "/dev", "MS_MOVE"),
		}, pivoted,
			func(s *State) bool { return len(s.Moved) == 0 }},
		{"killed right after remount,ro", StepRemountRO, []journal.Record{
			intent(StepRemountRO, "remount", "", "/", "MS_RDONLY|MS_REMOUNT"),
		}, mountinfo.Table{{ID: 10, Major: 7, Minor: 0, Point: "/", Options: "ro,relatime"}},
			func(s *State) bool { return s.ReadOnly }},
		{"killed in unmount-extra before the unmount", stepUnmountExtra, []journal.Record{
			intent(stepUnmountExtra, "unmount", "", "/srv/nfs", ""),
		}, mountinfo.Table{old, {ID: 30, Parent: 10, Point: "/srv/nfs", FSType: "nfs"}},
			func(s *State) bool { return len(s.Unmounted) == 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &State{Opts: opts, OldRoot: old, Unmounted: mountinfo.Table{{Point: "/srv/nfs", FSType: "nfs"}}}
			if tc.step == StepMoveMounts {
				s.Pivoted = true
			}
			replayIntents(s, tc.step, tc.recs, tc.t)
			if !tc.check(s) {
				t.Errorf("state after replay: Pivoted %v, Moved %q, ReadOnly %v, Unmounted %d", s.Pivoted, s.Moved, s.ReadOnly, len(s.Unmounted))
			}
		})
	}
}

// journalLoser is a step that makes the journal unwritable (as a full
// tmpfs does) while it runs.
type journalLoser struct {
	fakeStep
	j *journal.Journal
}

func (f *journalLoser) Do(ctx context.Context, s *State) error {
	f.j.File().Close()
	return f.fakeStep.Do(ctx, s)
}

// A step whose records cannot be written has failed, fatal or not: it is
// rolled back with the steps before it, and nothing after it runs.
func TestJournalFailureFailsTheStep(t *testing.T) {
	var log []string
	e, _ := newEngine(t)
	steps := []Step{
		&fakeStep{name: "a", fatal: true, log: &log},
		&journalLoser{fakeStep{name: "b", fatal: false, log: &log}, e.Journal},
		&fakeStep{name: "c", fatal: true, log: &log},
	}
	res := e.Run(context.Background(), steps, &State{})
	want := []string{"do a", "do b", "undo b", "undo a"}
	if !reflect.DeepEqual(log, want) {
		t.Errorf("calls = %q, want %q", log, want)
	}
	if res.Phase != journal.RolledBack || res.Failed != "b" || !errors.Is(res.Err, os.ErrClosed) {
		t.Errorf("result = %+v, want rolled back, failed in b on the journal", res)
	}
}

// A pid reused by another process (same name or not) is no live engine:
// the start time and the executable must match.
func TestEngineAliveByIdentity(t *testing.T) {
	self := EngineIdentity("/proc", os.Getpid())
	if self["start_time"] == "" || self["exe"] == "" {
		t.Fatalf("EngineIdentity(self) = %v", self)
	}
	if !engineAlive("/proc", os.Getpid(), self) {
		t.Error("this process, with its own identity, is not alive")
	}
	other := map[string]string{"start_time": "1", "exe": self["exe"]}
	if engineAlive("/proc", os.Getpid(), other) {
		t.Error("a pid with another start time passes for the engine")
	}
	other = map[string]string{"start_time": self["start_time"], "exe": "1:1"}
	if engineAlive("/proc", os.Getpid(), other) {
		t.Error("a pid with another executable passes for the engine")
	}
}

// Rollback from a journal that is not the engine's own runs none of the
// command lines it holds; from the engine's own, the killed daemon is
// started again.
func TestUntrustedJournalRunsNoCommand(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		dir := t.TempDir()
		marker := filepath.Join(dir, "ran")
		f := newSvcFixture(t, "/sbin/init", "/sbin/init")
		f.init()
		f.s.Killed = []Killed{{PID: 99, Comm: "evil", Daemon: true, Argv: []string{"/bin/sh", "-c", "echo > " + marker}}}
		path := filepath.Join(dir, "journal")
		j, err := journal.Create(path, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range []journal.Record{
			{Kind: journal.KindStart, PID: 4242},
			{Kind: journal.KindBegin, Step: StepStopServices},
			{Kind: journal.KindEnd, Step: StepStopServices, Data: map[string]string{"state": f.s.Marshal()}},
		} {
			if err := j.Add(rec); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := RollbackFromJournal(context.Background(), f.rt, path, trusted, j); err != nil {
			t.Fatal(err)
		}
		j.Close()
		ran := false
		for i := 0; i < 100 && trusted && !ran; i++ { // the daemon is started detached
			_, err := os.Stat(marker)
			ran = err == nil
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := os.Stat(marker); (err == nil) != trusted {
			t.Errorf("trusted %v: the journal's command ran: %v, want %v", trusted, err == nil, trusted)
		}
	}
}

// The archive is written only into a directory of root's that nobody
// else can write, never through a link: a link planted at last.journal
// is replaced, its target left alone.
func TestArchiveJournal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the archive directory must be root's")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "journal")
	os.WriteFile(src, []byte(`{"kind":"start","pid":1}`+"\n"), 0o600)
	now := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)

	arch := filepath.Join(dir, "rootswap")
	os.Mkdir(arch, 0o700)
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	os.Symlink(victim, filepath.Join(arch, "last.journal"))
	if err := ArchiveJournal(arch, src, now); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep" {
		t.Errorf("the link's target was written: %q", b)
	}
	if recs, err := journal.ReadFile(filepath.Join(arch, "last.journal")); err != nil || len(recs) != 1 {
		t.Errorf("archived last.journal: %d records, %v", len(recs), err)
	}
	if _, err := os.Stat(filepath.Join(arch, "20261207T060000Z.journal")); err != nil {
		t.Error(err)
	}

	link := filepath.Join(dir, "link")
	os.Symlink(arch, link)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o700)
	os.Chmod(open, 0o775)
	for p, want := range map[string]string{link: "not a directory", open: "writable by group or others"} {
		if err := ArchiveJournal(p, src, now); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ArchiveJournal(%s) = %v, want %q", filepath.Base(p), err, want)
		}
	}
}
