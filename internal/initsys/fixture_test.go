package initsys

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// tree is a fixture: a fake /proc and a fake root, built in t.TempDir()
// (symlinks and FIFOs do not live well in testdata/).
type tree struct {
	t    testing.TB
	proc string
	root string
}

func newTree(t testing.TB) *tree {
	t.Helper()
	d := t.TempDir()
	tr := &tree{t: t, proc: filepath.Join(d, "proc"), root: filepath.Join(d, "root")}
	for _, p := range []string{tr.proc, tr.root} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func (tr *tree) write(base, rel, content string) string {
	tr.t.Helper()
	p := filepath.Join(base, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	return p
}

func (tr *tree) file(rel, content string) string { return tr.write(tr.root, rel, content) }

func (tr *tree) dir(rel string) {
	tr.t.Helper()
	if err := os.MkdirAll(filepath.Join(tr.root, rel), 0o755); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) symlink(base, rel, target string) {
	tr.t.Helper()
	p := filepath.Join(base, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *tree) fifo(rel string) string {
	tr.t.Helper()
	p := filepath.Join(tr.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := unix.Mkfifo(p, 0o600); err != nil {
		tr.t.Fatal(err)
	}
	return p
}

// process writes /proc/PID/{comm,cmdline,stat} and, if exe is not "",
// an exe link with that text.
func (tr *tree) process(pid, ppid int, comm, exe string, argv ...string) {
	tr.t.Helper()
	d := fmt.Sprint(pid)
	tr.write(tr.proc, d+"/comm", comm+"\n")
	cmd := ""
	for _, a := range argv {
		cmd += a + "\x00"
	}
	tr.write(tr.proc, d+"/cmdline", cmd)
	tr.write(tr.proc, d+"/stat", fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560\n", pid, comm, ppid, pid, pid))
	if exe != "" {
		tr.symlink(tr.proc, d+"/exe", exe)
	}
}

func (tr *tree) config(run Runner) Config {
	return Config{ProcRoot: tr.proc, Root: tr.root, Run: run}
}

// fakeRunner records argv and answers from a table keyed by the joined
// argv; unknown commands succeed with no output.
type fakeRunner struct {
	mu      sync.Mutex
	calls   []string
	answers map[string]answer
	// on, when set, acts on each command after it is recorded (what the
	// command would do to the fixture).
	on func(argv string)
}

type answer struct {
	out  string
	code int // exit status; 0 is success
}

type exitErr int

func (e exitErr) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitErr) ExitCode() int { return int(e) }

func (f *fakeRunner) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	argv := strings.Join(append([]string{name}, args...), " ")
	f.calls = append(f.calls, argv)
	a := f.answers[argv]
	if f.on != nil {
		f.mu.Unlock()
		f.on(argv)
		f.mu.Lock()
	}
	if a.code != 0 {
		return []byte(a.out), &CommandError{Argv: append([]string{name}, args...), Output: []byte(a.out), Err: exitErr(a.code)}
	}
	return []byte(a.out), nil
}

func (f *fakeRunner) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}
