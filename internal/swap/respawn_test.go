package swap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
)

// ifupDhclient is a sysvinit server whose eth0 ifup configured by DHCP:
// dhclient (pid 1159) holds its lease file open on / and belongs to no
// script. Its command line is a shell that writes its working directory
// and one variable of its environment to out, so the test sees what a
// copy started again was given.
func ifupDhclient(t *testing.T) (f *svcFixture, out string) {
	f = newSvcFixture(t, "/sbin/init", "init [2]")
	work := t.TempDir()
	out = filepath.Join(work, "out")
	f.file("run/dhclient.eth0.pid", "1159\n")
	if err := syscall.Mkfifo(filepath.Join(f.root, "run/initctl"), 0o600); err != nil {
		t.Fatal(err) // sysvinit's FIFO: Detect tells it from busybox init by it
	}
	f.file("etc/init.d/networking", "#!/bin/sh\nifup -a\n")
	f.file("etc/network/interfaces", "auto eth0\niface eth0 inet dhcp\n")
	f.process(1159, 1, "dhclient", "/sbin/dhclient",
		"/bin/sh", "-c", `pwd >"$OUT"; echo "$FOO" >>"$OUT"`, "-pf", "/run/dhclient.eth0.pid", "eth0")
	f.write(f.proc, "1159/environ", "FOO=from-ifup\x00OUT="+out+"\x00PATH=/usr/sbin:/usr/bin:/sbin:/bin\x00", 0o644)
	if err := os.Symlink(work, filepath.Join(f.proc, "1159", "cwd")); err != nil {
		t.Fatal(err)
	}
	f.init()
	return f, out
}

// waitOut waits for the respawned shell's account, at most 10 s.
func waitOut(t *testing.T, out string) string {
	t.Helper()
	for n := 0; n < 200; n++ {
		if b, err := os.ReadFile(out); err == nil && strings.Count(string(b), "\n") == 2 {
			return string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the command was not started again: no %s", out)
	return ""
}

// stop-services kills ifup's dhclient with SIGKILL (no init script, no
// --kill); start-services starts it again with its command line, working
// directory and environment; plan says both.
func TestIfupDhclientStoppedAndStartedByCommandLine(t *testing.T) {
	f, out := ifupDhclient(t)
	svc, ok := f.rt.Init.ServiceOf(1159)
	if !ok || svc.Kind != initsys.CommandLine {
		t.Fatalf("ServiceOf(1159) = %+v, %v; want a command-line service", svc, ok)
	}
	f.rt.Report.Respawn = []Proc{{PID: 1159, Comm: "dhclient", What: "writes 3w /var/lib/dhcp/dhclient.eth0.leases",
		Service: svc.Name, Note: svc.Why, Signal: svc.StopSignal}}

	stop, start := &stopServices{f.rt}, &startServices{f.rt}
	wantStop := "kill dhclient[1159] with SIGKILL and start it again by its command line after the pivot (dhclient.eth0: " + svc.Why + ")"
	if got := stop.Describe(f.s); got != wantStop {
		t.Errorf("stop-services: %q\nwant %q", got, wantStop)
	}
	if got, want := start.Describe(f.s), "no service was stopped; start dhclient.eth0 again by their own command line, working directory and environment"; got != want {
		t.Errorf("start-services: %q\nwant %q", got, want)
	}
	if err := stop.Do(context.Background(), f.s); err != nil {
		t.Fatal(err)
	}
	calls, kills := f.got()
	if want := []string{"1159 KILL"}; !reflect.DeepEqual(kills, want) {
		t.Errorf("kills = %q, want %q (a SIGTERM may run dhclient-script's STOP)", kills, want)
	}
	if len(calls) != 0 {
		t.Errorf("commands = %q, want none (networking's stop is ifdown)", calls)
	}
	if len(f.s.Killed) != 1 || f.s.Killed[0].Service != "dhclient.eth0" || !f.s.Killed[0].Daemon {
		t.Fatalf("Killed = %+v, want dhclient.eth0, a daemon", f.s.Killed)
	}
	if err := start.Do(context.Background(), f.s); err != nil {
		t.Fatal(err)
	}
	if got, want := waitOut(t, out), filepath.Dir(out)+"\nfrom-ifup\n"; got != want {
		t.Errorf("started again with cwd and $FOO %q, want %q", got, want)
	}
	r := f.s.Killed[0].Respawned
	if r == 0 {
		t.Fatal("Respawned not recorded (start-services' undo stops it by that pid)")
	}
	// A rollback stops the copy the same way: no STOP for it either.
	if err := start.Undo(context.Background(), f.s); err != nil {
		t.Fatal(err)
	}
	if _, kills := f.got(); !reflect.DeepEqual(kills, []string{"1159 KILL", fmt.Sprintf("%d KILL", r)}) {
		t.Errorf("kills = %q, want 1159 and %d with SIGKILL", kills, r)
	}
}

// A dhclient still on the old root after the pivot (it wrote nothing, so
// stop-services left it) is restarted by its command line by
// restart-holders, not reported as an orphan.
func TestIfupDhclientRestartedByRestartHolders(t *testing.T) {
	f, out := ifupDhclient(t)
	f.rt.ScanHolders = func(uint64) ([]Holder, error) {
		if !f.alive(1159) {
			return nil, nil
		}
		return []Holder{{PID: 1159, Comm: "dhclient", Uses: []string{"txt /sbin/dhclient"}}}, nil
	}
	st := &restartHolders{f.rt}
	if err := st.Do(context.Background(), f.s); err != nil {
		t.Fatal(err)
	}
	calls, kills := f.got()
	if want := []string{"1159 KILL"}; !reflect.DeepEqual(kills, want) || len(calls) != 0 {
		t.Errorf("kills = %q, commands = %q; want %q and no command", kills, calls, want)
	}
	if want := []string{"dhclient.eth0"}; !reflect.DeepEqual(f.s.Restarted, want) || len(f.s.Holders) != 0 {
		t.Errorf("Restarted = %q, Holders = %q; want %q and no orphan", f.s.Restarted, f.s.Holders, want)
	}
	waitOut(t, out)
}
