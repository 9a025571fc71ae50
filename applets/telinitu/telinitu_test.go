package telinitu

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/initsys"
	"golang.org/x/sys/unix"
)

type fixture struct {
	t                *testing.T
	proc, root, base string
}

func newFixture(t *testing.T) *fixture {
	d := t.TempDir()
	return &fixture{t: t, base: d, proc: filepath.Join(d, "proc"), root: filepath.Join(d, "root")}
}

func (f *fixture) write(p, content string) string {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) link(p, target string) {
	f.t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.Remove(p)
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

// pid1 writes /proc/1 with the exe link text given.
func (f *fixture) pid1(comm, exe, argv0 string) {
	f.write(filepath.Join(f.proc, "1/comm"), comm+"\n")
	f.write(filepath.Join(f.proc, "1/cmdline"), argv0+"\x00")
	f.link(filepath.Join(f.proc, "1/exe"), exe)
}

func newEnv(procRoot string) (*cli.Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &cli.Env{Stdout: &out, Stderr: &errb, ProcRoot: procRoot, Now: time.Now}, &out, &errb
}

var applet = cli.Applet{Name: "telinit-u", Summary: Summary, Usage: Usage, Main: Main}

func TestBusyboxRefusal(t *testing.T) {
	f := newFixture(t)
	f.pid1("init", "/bin/busybox", "init")
	env, out, errb := newEnv(f.proc)
	code := cli.Run(context.Background(), env, applet, nil)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	want := "rootswap telinit-u: busybox init has no re-exec: its only restart (SIGQUIT) kills every process first. " +
		"PID 1 keeps the old root busy until the next reboot; rootswap detaches the old root lazily instead " +
		"(it is read-only by then, nothing is lost)\n"
	if errb.String() != want {
		t.Errorf("stderr =\n%s\nwant\n%s", errb.String(), want)
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q, want nothing", out.String())
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"now"}, {"--timeout", "0s"}, {"--timeout", "soon"}} {
		env, _, errb := newEnv(t.TempDir())
		if code := cli.Run(context.Background(), env, applet, args); code != 2 {
			t.Errorf("telinit-u %q: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

func TestUnknownInitRefused(t *testing.T) {
	f := newFixture(t)
	f.pid1("process_api", "/process_api", "/process_api")
	env, _, _ := newEnv(f.proc)
	err := reexec(context.Background(), env, initsys.Config{ProcRoot: f.proc, Root: f.root,
		Run: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			t.Errorf("ran %s %q for an unknown init", name, args)
			return nil, nil
		}}, time.Second, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `cannot re-execute PID 1: unknown init "process_api" (/process_api)`) {
		t.Errorf("reexec = %v, want a refusal naming process_api", err)
	}
}

func TestSystemdReexecSucceeds(t *testing.T) {
	f := newFixture(t)
	oldInit := f.write(filepath.Join(f.base, "oldroot/usr/lib/systemd/systemd"), "old")
	newInit := f.write(filepath.Join(f.root, "usr/lib/systemd/systemd"), "new")
	f.link(filepath.Join(f.root, "sbin/init"), "../usr/lib/systemd/systemd")
	f.pid1("systemd", oldInit, "/sbin/init")

	var calls []string
	run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		argv := strings.Join(append([]string{name}, args...), " ")
		calls = append(calls, argv)
		if argv == "systemctl daemon-reexec" {
			// what PID 1 does when it re-executes after pivot_root
			f.link(filepath.Join(f.proc, "1/exe"), newInit)
		}
		if argv == "systemctl --version" {
			return []byte("systemd 252 (252.39-1~deb12u1)\n"), nil
		}
		return nil, nil
	}
	env, out, _ := newEnv(f.proc)
	err := reexec(context.Background(), env, initsys.Config{ProcRoot: f.proc, Root: f.root, Run: run}, 5*time.Second, time.Millisecond)
	if err != nil {
		t.Fatalf("reexec: %v\n%s", err, out)
	}
	if want := []string{"systemctl --version", "systemctl daemon-reexec"}; strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("commands %q, want %q", calls, want)
	}
	for _, line := range []string{
		"PID 1: systemd 252 (re-exec: systemctl daemon-reexec)\n",
		"before: PID 1 runs " + oldInit + " (",
		"re-executing PID 1: systemctl daemon-reexec\n",
		": PID 1 runs /sbin/init of this root (",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
}

func TestSysvinitNoReexecTimesOut(t *testing.T) {
	f := newFixture(t)
	oldInit := f.write(filepath.Join(f.base, "oldroot/sbin/init"), "old")
	f.write(filepath.Join(f.root, "sbin/init"), "new")
	f.pid1("init", oldInit, "init [2]")
	fifo := filepath.Join(f.root, "run/initctl")
	os.MkdirAll(filepath.Dir(fifo), 0o755)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	env, _, _ := newEnv(f.proc)
	err = reexec(context.Background(), env, initsys.Config{ProcRoot: f.proc, Root: f.root}, 300*time.Millisecond, 10*time.Millisecond)
	if err == nil {
		t.Fatal("reexec succeeded though PID 1 never re-executed")
	}
	for _, want := range []string{"the re-exec request was delivered but after 300ms PID 1 runs " + oldInit, "not an init binary of this root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	buf := make([]byte, 1024)
	n, _ := unix.Read(fd, buf)
	if !bytes.Equal(buf[:n], initsys.InitRequest('u', 5)) {
		t.Errorf("init read % x, want the telinit u request", buf[:min(n, 16)])
	}
}
