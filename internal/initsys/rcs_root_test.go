package initsys

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestRealBusyboxRCScript runs a Buildroot-style script with real busybox
// in a chroot: S40scheduler starts crond through start-stop-daemon with
// the pidfile /var/run/cron-daily.pid, named after neither. ServiceOf
// finds the script from the live /proc, Stop stops crond, Start starts it
// again.
func TestRealBusyboxRCScript(t *testing.T) {
	testutil.RequireRoot(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not found (apt-get install busybox-static)")
	}
	testutil.InMountNS(t, func() { realBusyboxRCScript(t, bb) })
}

func realBusyboxRCScript(t *testing.T, bb string) {
	root := t.TempDir()
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"bin", "sbin", "usr/sbin", "proc", "var/run", "etc/init.d", "etc/cron/crontabs"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"bin/sh", "bin/rm", "bin/cat", "bin/sleep", "sbin/start-stop-daemon", "usr/sbin/crond"} {
		if err := os.Symlink("/bin/busybox", filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	script, err := os.ReadFile("testdata/busybox/etc/init.d/S40scheduler")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/init.d/S40scheduler"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	// busybox start-stop-daemon looks for processes in /proc.
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", 0, ""); err != nil {
		t.Fatalf("mount proc on %s: %v", root, err)
	}
	pidfile := filepath.Join(root, "var/run/cron-daily.pid")
	t.Cleanup(func() {
		if pid, ok := readPidfile(pidfile); ok {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	chrooted := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = []string{"PATH=/bin:/sbin:/usr/sbin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
		out, err := cmd.CombinedOutput()
		if err != nil {
			return out, &CommandError{Argv: append([]string{name}, args...), Output: out, Err: err}
		}
		return out, nil
	}
	sys := &Busybox{cfg: Config{ProcRoot: "/proc", Root: root, Run: chrooted}}
	ctx := context.Background()
	svc := Service{Name: "S40scheduler", Kind: InitDScript, Restartable: true}

	start := func() int {
		t.Helper()
		os.Remove(pidfile)
		if err := sys.Start(ctx, svc); err != nil {
			t.Fatal(err)
		}
		var pid int
		waitFor(t, "crond's pidfile", func() bool {
			var ok bool
			pid, ok = readPidfile(pidfile)
			return ok && alive(pid)
		})
		return pid
	}
	pid := start()
	got, ok := sys.ServiceOf(pid)
	want := Service{Name: "S40scheduler", Kind: InitDScript, Restartable: true,
		Why: "/var/run/cron-daily.pid holds " + strconv.Itoa(pid) + ", named by /etc/init.d/S40scheduler"}
	if !ok || got != want {
		t.Fatalf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v", pid, got, ok, want)
	}
	if up, err := sys.Running(ctx, svc); !up || err != nil {
		t.Errorf("Running = %v, %v; want true", up, err)
	}

	if err := sys.Stop(ctx, svc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "crond to stop", func() bool { return !alive(pid) })
	if up, err := sys.Running(ctx, svc); up || err != nil {
		t.Errorf("Running after Stop = %v, %v; want false", up, err)
	}

	pid2 := start()
	if pid2 == pid {
		t.Fatalf("Start: pidfile still holds the old pid %d", pid)
	}
	if got, ok := sys.ServiceOf(pid2); !ok || got.Name != "S40scheduler" || !got.Restartable {
		t.Errorf("ServiceOf(%d) after Start = %+v, %v", pid2, got, ok)
	}
	if err := sys.Stop(ctx, svc); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "crond to stop", func() bool { return !alive(pid2) })
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || !strings.HasPrefix(string(b[i+1:]), " Z")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
