package status

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/swap"
)

func write(t *testing.T, recs ...journal.Record) string {
	p := filepath.Join(t.TempDir(), "journal")
	now := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	j, err := journal.Create(p, func() time.Time { now = now.Add(time.Second); return now })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		j.Add(r)
	}
	j.Close()
	return p
}

func run(t *testing.T, args ...string) (string, int) {
	var out bytes.Buffer
	env := cli.OSEnv()
	env.Stdout, env.Stderr = &out, &out
	env.ProcRoot = t.TempDir() // no engine alive in an empty /proc
	os.MkdirAll(filepath.Join(env.ProcRoot, "self"), 0o755)
	os.WriteFile(filepath.Join(env.ProcRoot, "self", "stat"), nil, 0o644)
	err := Main(context.Background(), env, args)
	var code cli.ExitCode
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &code):
		return out.String(), int(code)
	}
	return out.String() + err.Error(), -1
}

func TestStatusWords(t *testing.T) {
	steps := []journal.Record{
		{Kind: journal.KindStart, PID: 4242},
		{Kind: journal.KindBegin, Step: "remount-ro"}, {Kind: journal.KindEnd, Step: "remount-ro"},
		{Kind: journal.KindBegin, Step: "pivot"}, {Kind: journal.KindEnd, Step: "pivot"},
		{Kind: journal.KindBegin, Step: "restart-sshd"}, {Kind: journal.KindEnd, Step: "restart-sshd"},
		{Kind: journal.KindBegin, Step: "start-services"}, {Kind: journal.KindEnd, Step: "start-services"},
	}
	ok := write(t, append(steps, journal.Record{Kind: journal.KindDone, Result: "succeeded"})...)
	out, code := run(t, "--journal", ok)
	if code != 0 || !strings.HasPrefix(out, "succeeded\n") {
		t.Errorf("succeeded journal: %d\n%s", code, out)
	}
	for _, w := range []string{"read-only window (remount-ro to services back): 7s", "pivot to sshd back: 3s"} {
		if !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	// No done record and no engine: it died in the step it was in.
	died := write(t, steps[:4]...)
	out, code = run(t, "--journal", died)
	if code != 1 || !strings.HasPrefix(out, "failed pivot\n") || !strings.Contains(out, "died") {
		t.Errorf("dead engine: %d\n%s", code, out)
	}
	rb := write(t, append(steps[:3], journal.Record{Kind: journal.KindDone, Result: "rolled-back", Err: "copy failed"})...)
	if out, code = run(t, "--journal", rb); code != 1 || !strings.HasPrefix(out, "rolled-back\n") {
		t.Errorf("rolled back: %d\n%s", code, out)
	}
	if got := FirstLine(swap.Status{Summary: journal.Summary{Phase: journal.Failed}}); got != "failed" {
		t.Errorf("failed before any step: %q, want %q (no trailing space)", got, "failed")
	}
	if got := FirstLine(swap.Status{Summary: journal.Summary{Phase: journal.RollingBack}}); got != "running rollback" {
		t.Errorf("a rollback in progress reads %q, want one of the five words: running rollback", got)
	}
	out, code = run(t, "--journal", ok, "--json")
	if code != 0 || !strings.Contains(out, `"status": "succeeded"`) {
		t.Errorf("--json: %d\n%s", code, out)
	}
}

// While release waits, status names each holder of the old root and
// what the engine does about it; after the bound, the commands to finish.
func TestStatusShowsOldRootHolders(t *testing.T) {
	holders := `[{"pid":300,"comm":"cron","service":"cron.service","holds":["cwd /mnt/oldroot/var/spool/cron"],"action":"restarting cron.service"},` +
		`{"pid":500,"comm":"sshd","holds":["exe /mnt/oldroot/usr/sbin/sshd"],"action":"waiting: the SSH session that started run; log out of it"}]`
	recs := []journal.Record{
		{Kind: journal.KindStart, PID: 4242},
		{Kind: journal.KindBegin, Step: "release-oldroot"},
		{Kind: journal.KindHolders, Step: "release-oldroot", Data: map[string]string{"holders": holders}},
	}
	var out bytes.Buffer
	env := cli.OSEnv()
	env.Stdout, env.Stderr = &out, &out
	env.ProcRoot = t.TempDir()
	os.MkdirAll(filepath.Join(env.ProcRoot, "self"), 0o755)
	os.WriteFile(filepath.Join(env.ProcRoot, "self", "stat"), nil, 0o644)
	os.MkdirAll(filepath.Join(env.ProcRoot, "4242"), 0o755)
	os.WriteFile(filepath.Join(env.ProcRoot, "4242", "comm"), []byte("rootswap\n"), 0o644)
	p := write(t, recs...)
	err := Main(context.Background(), env, []string{"--journal", p})
	var code cli.ExitCode
	if !errors.As(err, &code) || code != 4 || !strings.HasPrefix(out.String(), "running release-oldroot\n") {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
	for _, w := range []string{
		"the old root is held by:\n",
		"  cron[300] (cron.service) cwd /mnt/oldroot/var/spool/cron: restarting cron.service\n",
		"  sshd[500] exe /mnt/oldroot/usr/sbin/sshd: waiting: the SSH session that started run; log out of it\n",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("status lacks %q:\n%s", w, out.String())
		}
	}
	out.Reset()
	Main(context.Background(), env, []string{"--journal", p, "--json"})
	var js struct {
		Holders []swap.OldRootHolder `json:"old_root_holders"`
	}
	if err := json.Unmarshal(out.Bytes(), &js); err != nil || len(js.Holders) != 2 || js.Holders[0].PID != 300 || js.Holders[0].Action != "restarting cron.service" {
		t.Errorf("--json holders %+v, %v\n%s", js.Holders, err, out.String())
	}

	// The bound passed: the run succeeded, with the commands to finish.
	done := write(t, append(recs[:2],
		journal.Record{Kind: journal.KindHolders, Step: "release-oldroot", Data: map[string]string{"holders": holders, "finish": `["kill -HUP 500   # sshd","umount /mnt/oldroot"]`}},
		journal.Record{Kind: journal.KindNote, Describe: "WARNING: /mnt/oldroot is still mounted (read-only)"},
		journal.Record{Kind: journal.KindEnd, Step: "release-oldroot"},
		journal.Record{Kind: journal.KindDone, Result: "succeeded"})...)
	got, c := run(t, "--journal", done)
	if c != 0 || !strings.HasPrefix(got, "succeeded\n") ||
		!strings.Contains(got, "to finish the release by hand:\n  kill -HUP 500   # sshd\n  umount /mnt/oldroot\n") ||
		!strings.Contains(got, "note: WARNING: /mnt/oldroot is still mounted") {
		t.Errorf("succeeded with holders left: %d\n%s", c, got)
	}
}

// A FIFO given as the journal is refused at once (it hung status, which
// then ignored SIGTERM); so is a journal others may write.
func TestStatusRefusesUnsafeJournal(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	open := write(t, journal.Record{Kind: journal.KindStart, PID: 4242})
	os.Chmod(open, 0o666)
	for p, want := range map[string]string{fifo: "not a regular file", open: "writable by group or others"} {
		out, code := run(t, "--journal", p)
		if code != -1 || !strings.Contains(out, want) {
			t.Errorf("status --journal %s = %d %q, want an error: %s", filepath.Base(p), code, out, want)
		}
	}
}

// A swap that succeeded ends with the command to type next: finish, after
// the release by hand when the engine stopped waiting; nothing else does.
func TestStatusNext(t *testing.T) {
	start := journal.Record{Kind: journal.KindStart, PID: 4242}
	done := journal.Record{Kind: journal.KindDone, Result: "succeeded"}
	held := journal.Record{Kind: journal.KindHolders, Step: "release-oldroot", Data: map[string]string{"holders": "[]", "finish": `["umount /mnt/oldroot"]`}}
	for _, tc := range []struct {
		name string
		recs []journal.Record
		want string
	}{
		{"succeeded", []journal.Record{start, done}, "next: " + swap.NextFinish + "\n"},
		{"release by hand", []journal.Record{start, held, done}, "next: the commands that finish the release (above), then " + swap.NextFinish + "\n"},
		{"rolled back", []journal.Record{start, {Kind: journal.KindDone, Result: "rolled-back"}}, ""},
		{"grub first", []journal.Record{start, {Kind: journal.KindBegin, Step: swap.StepRelabelOld},
			{Kind: journal.KindFail, Step: swap.StepRelabelOld, Err: "/dev/vda2: skipped: ... rootswap finish --grub-install DISK (the disk the machine boots from) reinstalls GRUB"}, done},
			"next: rootswap finish --grub-install DISK (the disk the machine boots from)\n"},
	} {
		got, _ := run(t, "--journal", write(t, tc.recs...))
		if tc.want == "" && strings.Contains(got, "next:") || !strings.HasSuffix(got, tc.want) {
			t.Errorf("%s: status ends\n%s\nwant %q", tc.name, got, tc.want)
		}
	}
	if !strings.HasPrefix(swap.NextFinish, "rootswap finish ") {
		t.Errorf("next command %q", swap.NextFinish)
	}
}

// A running file copy shows its round, bytes, files, rate and ETA.
func TestStatusCopyProgress(t *testing.T) {
	prog := `{"round":2,"bytes":1048576,"files":12,"entries":500,"total_bytes":734003200,"total_entries":1000,"rate":524288,"eta_seconds":3}`
	p := write(t, journal.Record{Kind: journal.KindStart, PID: 4242},
		journal.Record{Kind: journal.KindBegin, Step: "copy"},
		journal.Record{Kind: journal.KindProgress, Step: "copy", Describe: prog})
	var out bytes.Buffer
	env := cli.OSEnv()
	env.Stdout, env.Stderr = &out, &out
	env.ProcRoot = t.TempDir()
	os.MkdirAll(filepath.Join(env.ProcRoot, "4242"), 0o755)
	os.WriteFile(filepath.Join(env.ProcRoot, "4242", "comm"), []byte("rootswap\n"), 0o644)
	Main(context.Background(), env, []string{"--journal", p})
	want := "copy round 2: 1.0 MiB of ~700 MiB, 12 files, 500 of ~1000 entries, 512 KiB/s, ETA 3s\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, out.String())
	}
	out.Reset()
	Main(context.Background(), env, []string{"--journal", p, "--json"})
	var js struct {
		Progress *swap.CopyProgress `json:"progress"`
	}
	if err := json.Unmarshal(out.Bytes(), &js); err != nil || js.Progress == nil || js.Progress.Round != 2 || js.Progress.ETA != 3 || js.Progress.Files != 12 {
		t.Errorf("status --json progress %+v (%v):\n%s", js.Progress, err, out.String())
	}
}
