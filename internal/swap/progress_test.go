package swap

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountops"
)

// status shows where file mode's copy stands, from the journal alone:
// the live pass as round 1, the frozen delta as round 2, each with its
// bytes, files, rate and ETA, and nothing once its step is over.
func TestFileCopyProgressInStatus(t *testing.T) {
	d, jpath, proc, j := liveEngineJournal(t)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var log strings.Builder
	rt := &Runtime{Mounter: &mountops.Fake{}, Journal: j, Out: &log, Report: &Report{Mkfs: "xfs"},
		Now: func() time.Time { now = now.Add(3 * time.Second); return now }}
	s := &State{Opts: Options{EngineDir: filepath.Join(d, "engine"), NewRoot: filepath.Join(d, "new"), Target: "/dev/fake"}}
	must(t, os.MkdirAll(s.Opts.NewRoot, 0o755))
	// The fake mounter binds nothing: the view is / as the test makes it.
	for _, p := range []string{"etc/a", "usr/bin/b", "usr/lib/c", "var/d"} {
		p = filepath.Join(viewPath(s), p)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte("some bytes"), 0o644))
	}
	status := func() *CopyProgress {
		t.Helper()
		st, err := LoadStatus(proc, jpath)
		if err != nil {
			t.Fatal(err)
		}
		return st.Progress
	}
	j.Add(journal.Record{Kind: journal.KindStart, PID: 4242})
	j.Add(journal.Record{Kind: journal.KindBegin, Step: StepPrecopy})
	if err := (&filePrecopy{rt}).Do(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	p := status()
	if p == nil || p.Round != 1 || p.Files == 0 || p.Bytes == 0 || p.Entries == 0 || p.Rate <= 0 || p.TotalBytes <= 0 {
		t.Fatalf("status during the live copy: progress %+v, want round 1 live with files, bytes, rate and totals", p)
	}
	if !strings.Contains(log.String(), "copy round 1: ") || !strings.Contains(p.String(), "/s, ETA ") {
		t.Errorf("progress %q; log:\n%s", p, log.String())
	}
	j.Add(journal.Record{Kind: journal.KindEnd, Step: StepPrecopy})
	j.Add(journal.Record{Kind: journal.KindBegin, Step: StepCopy})
	if p := status(); p != nil {
		t.Errorf("status after the live copy: progress %+v, want none", p)
	}
	must(t, os.WriteFile(filepath.Join(viewPath(s), "var/d"), []byte("more bytes now"), 0o644))
	if err := (&fileCopy{rt}).Do(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if p := status(); p == nil || p.Round != 2 || p.Entries == 0 {
		t.Errorf("status during the frozen delta: progress %+v, want round 2 frozen", p)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A block copy reports each phase's bytes, rate and ETA, as dd does, to
// the log and to status.
func TestBlockCopyProgressInStatus(t *testing.T) {
	_, jpath, proc, j := liveEngineJournal(t)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var log strings.Builder
	rt := &Runtime{Journal: j, Out: &log, Now: func() time.Time { return now }}
	j.Add(journal.Record{Kind: journal.KindStart, PID: 4242})
	j.Add(journal.Record{Kind: journal.KindBegin, Step: StepPrecopy})
	show := blockProgress(rt, func() (string, int) { return StepPrecopy, 1 })
	const mib = 1 << 20
	show(blockcopy.PhaseCopy, 0, 800*mib)
	now = now.Add(4 * time.Second)
	show(blockcopy.PhaseCopy, 200*mib, 800*mib) // 50 MiB/s, 12 s left
	st, err := LoadStatus(proc, jpath)
	if err != nil {
		t.Fatal(err)
	}
	want := "round 1: copy 200 MiB of 800 MiB (25%), 50 MiB/s, ETA 12s"
	if st.Progress == nil || st.Progress.String() != want {
		t.Fatalf("status progress %v, want %q", st.Progress, want)
	}
	if !strings.Contains(log.String(), "copy "+want) {
		t.Errorf("log:\n%s\nwant %q", log.String(), want)
	}
	// The read-back starts its own clock.
	now = now.Add(time.Second)
	show(blockcopy.PhaseVerify, 0, 800*mib)
	now = now.Add(2 * time.Second)
	show(blockcopy.PhaseVerify, 400*mib, 800*mib)
	if got := log.String(); !strings.Contains(got, "verify 400 MiB of 800 MiB (50%), 200 MiB/s, ETA 2s") {
		t.Errorf("log:\n%s\nwant the verify phase at 200 MiB/s", got)
	}
}

// liveEngineJournal is a journal in a temporary directory d whose engine
// (pid 4242 under proc) is alive, as status sees it mid-step.
func liveEngineJournal(t *testing.T) (d, jpath, proc string, j *journal.Journal) {
	t.Helper()
	d = t.TempDir()
	jpath = filepath.Join(d, "journal")
	j, err := journal.Create(jpath, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	proc = filepath.Join(d, "proc")
	must(t, os.MkdirAll(filepath.Join(proc, "4242"), 0o755))
	must(t, os.WriteFile(filepath.Join(proc, "4242", "comm"), []byte("rootswap\n"), 0o644))
	return d, jpath, proc, j
}
