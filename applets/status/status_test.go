package status

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	if got := FirstLine(swap.Status{Summary: journal.Summary{Phase: journal.RollingBack}}); got != "running rollback" {
		t.Errorf("a rollback in progress reads %q, want one of the five words: running rollback", got)
	}
	out, code = run(t, "--journal", ok, "--json")
	if code != 0 || !strings.Contains(out, `"status": "succeeded"`) {
		t.Errorf("--json: %d\n%s", code, out)
	}
}
