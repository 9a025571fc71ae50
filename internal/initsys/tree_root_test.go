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

	"github.com/rootswap/rootswap/internal/testutil"
)

// TestRealRunitTreeRestart restarts a real runit tree the way the swap
// does after a pivot: ServiceOf finds the tree of a supervised process
// and the init script that started runsvdir (by the pidfile its text
// names), Restart sends runsvdir SIGHUP (for real: runsvdir sends TERM
// to each runsv, which stops its service and exits), waits for every
// old supervisor to go, and starts the script again, which brings a new
// runsvdir, runsv and service.
func TestRealRunitTreeRestart(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "runsvdir", "runsv", "kill")
	d := t.TempDir()
	scan := filepath.Join(d, "service")
	if err := os.MkdirAll(filepath.Join(scan, "sleeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(scan, "sleeper", "run"), []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr := newTree(t)
	tr.file("etc/init.d/svtree", "#!/bin/sh\nstart-stop-daemon --start -b -m --pidfile /run/svtree.pid --exec /usr/bin/runsvdir -- -P "+scan+"\n")
	tr.dir("run")
	pidfile := filepath.Join(tr.root, "run/svtree.pid")

	var started []*exec.Cmd
	start := func() {
		cmd := exec.Command("runsvdir", "-P", scan)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go cmd.Wait()
		started = append(started, cmd)
		if err := os.WriteFile(pidfile, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var calls []string
	run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, strings.Join(append([]string{name}, args...), " "))
		if name == "/etc/init.d/svtree" && len(args) == 1 && args[0] == "start" {
			start() // what start-stop-daemon would do
			return nil, nil
		}
		return ExecRunner(ctx, name, args...)
	}
	sys := &SysV{cfg: Config{ProcRoot: "/proc", Root: tr.root, Run: run, cache: newCache()}}
	t.Cleanup(func() {
		// SIGHUP: each runsvdir takes its runsv and their sleep with it;
		// wait for them before the scan directory is removed.
		for _, c := range started {
			tree := sys.cfg.treePIDs(Tree{Top: c.Process.Pid})
			syscall.Kill(c.Process.Pid, syscall.SIGHUP)
			sys.cfg.waitGone(context.Background(), tree, treeDownWait)
		}
	})
	start()
	first := started[0].Process.Pid

	sleeper := func(notPID int) (sup, svc int) {
		t.Helper()
		waitFor(t, "runsv and sleep 1000", func() bool {
			sup, svc = 0, 0
			for _, pid := range sys.cfg.pids() {
				if sys.cfg.comm(pid) == "sleep" && pid != notPID {
					if pp, _ := sys.cfg.ppid(pid); sys.cfg.comm(pp) == "runsv" {
						sup, svc = pp, pid
						return true
					}
				}
			}
			return false
		})
		return sup, svc
	}
	runsv, sleep := sleeper(0)
	svc, ok := sys.ServiceOf(runsv)
	wantTree := Tree{Kind: RunitService, Top: first, Scanner: true, Dir: scan, Starter: "svtree", StarterKind: InitDScript}
	if !ok || svc.Tree != wantTree || !svc.Restartable {
		t.Fatalf("ServiceOf(runsv %d) = %+v, want the tree %+v", runsv, svc, wantTree)
	}
	if got, _ := sys.ServiceOf(sleep); got.Name != filepath.Join(scan, "sleeper") {
		t.Errorf("ServiceOf(sleep %d) = %+v, want the service directory (its runsv works here)", sleep, got)
	}

	if err := sys.Restart(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	want := []string{"kill -HUP " + strconv.Itoa(first), "/etc/init.d/svtree start"}
	if strings.Join(calls, "|") != strings.Join(want, "|") {
		t.Errorf("commands = %q, want %q", calls, want)
	}
	for _, pid := range []int{first, runsv, sleep} {
		if alive(pid) {
			t.Errorf("pid %d (%s) of the old tree still runs", pid, sys.cfg.comm(pid))
		}
	}
	runsv2, _ := sleeper(sleep)
	if pp, _ := sys.cfg.ppid(runsv2); pp != started[1].Process.Pid {
		t.Errorf("the new runsv %d runs under %d, want the new runsvdir %d", runsv2, pp, started[1].Process.Pid)
	}
}
