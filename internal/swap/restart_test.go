package swap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
)

// svcFixture is a machine right after the pivot, for the restart steps:
// a fake /proc and root, the init system initsys detects in them, a
// runner that records every command and lets the test act on it, and a
// kill that only removes the fake process.
type svcFixture struct {
	t     *testing.T
	proc  string
	root  string
	rt    *Runtime
	s     *State
	mu    sync.Mutex
	calls []string
	kills []string
	// on is called with each command line; its answer is the command's.
	on func(argv string) (string, error)
}

func newSvcFixture(t *testing.T, pid1Exe string, pid1Argv ...string) *svcFixture {
	t.Helper()
	d := t.TempDir()
	f := &svcFixture{t: t, proc: filepath.Join(d, "proc"), root: filepath.Join(d, "root")}
	f.process(1, 0, filepath.Base(pid1Exe), pid1Exe, pid1Argv...)
	return f
}

// init detects the init system and builds the runtime; call it once the
// tree is laid out.
func (f *svcFixture) init() {
	f.t.Helper()
	run := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		argv := strings.Join(append([]string{name}, args...), " ")
		f.mu.Lock()
		f.calls = append(f.calls, argv)
		f.mu.Unlock()
		if f.on != nil {
			out, err := f.on(argv)
			return []byte(out), err
		}
		return nil, nil
	}
	sys, err := initsys.Config{ProcRoot: f.proc, Root: f.root, Run: run}.Detect(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	f.rt = &Runtime{
		ProcRoot: f.proc, Init: sys, Self: 4242, Session: map[int]bool{},
		Command: run,
		Now:     func() time.Time { return now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			now = now.Add(d)
			return nil
		},
		Kill: func(pid int, sig syscall.Signal) error {
			f.mu.Lock()
			f.kills = append(f.kills, fmt.Sprintf("%d %s", pid, unixSignalName(sig)))
			f.mu.Unlock()
			return os.RemoveAll(filepath.Join(f.proc, fmt.Sprint(pid)))
		},
	}
	f.rt.Report = &Report{InitKind: string(sys.Kind())}
	f.s = &State{Opts: DefaultOptions("/dev/sys/root")}
}

func unixSignalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGHUP:
		return "HUP"
	}
	return sig.String()
}

func (f *svcFixture) write(base, rel, content string, mode os.FileMode) {
	f.t.Helper()
	p := filepath.Join(base, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		f.t.Fatal(err)
	}
}

func (f *svcFixture) file(rel, content string) { f.write(f.root, rel, content, 0o755) }

// process writes /proc/PID/{comm,cmdline,stat,status} and the exe link.
func (f *svcFixture) process(pid, ppid int, comm, exe string, argv ...string) {
	f.t.Helper()
	d := fmt.Sprint(pid)
	f.write(f.proc, d+"/comm", comm+"\n", 0o644)
	f.write(f.proc, d+"/cmdline", strings.Join(argv, "\x00")+"\x00", 0o644)
	f.write(f.proc, d+"/stat", fmt.Sprintf("%d (%s) S %d %d %d 0 -1 4194560\n", pid, comm, ppid, pid, pid), 0o644)
	f.write(f.proc, d+"/status", fmt.Sprintf("Name:\t%s\nState:\tS (sleeping)\nPid:\t%d\nPPid:\t%d\n", comm, pid, ppid), 0o644)
	if exe != "" {
		os.Remove(filepath.Join(f.proc, d, "exe"))
		if err := os.Symlink(exe, filepath.Join(f.proc, d, "exe")); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *svcFixture) alive(pid int) bool { return alive(f.proc, pid) }

func (f *svcFixture) got() (calls, kills []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), append([]string(nil), f.kills...)
}

const dropbearScript = `#!/bin/sh
NAME="dropbear"
DAEMON="/usr/sbin/${NAME}"
case "$1" in
	start) $DAEMON -R -p 22 ;;
	stop) killall $NAME ;;
esac
`

// busyboxDropbear: busybox init, S50dropbear's daemon still running from
// the old root (its exe link reads /mnt/oldroot/usr/sbin/dropbear).
func busyboxDropbear(t *testing.T) *svcFixture {
	f := newSvcFixture(t, "/bin/busybox", "init")
	f.file("etc/init.d/S50dropbear", dropbearScript)
	f.file("etc/init.d/rcS", "#!/bin/sh\n")
	f.file("etc/inittab", "::sysinit:/etc/init.d/rcS\nttyS0::respawn:/sbin/getty -L ttyS0 115200 vt100\n")
	f.process(160, 1, "dropbear", "/mnt/oldroot/usr/sbin/dropbear", "/usr/sbin/dropbear", "-R", "-p", "22")
	f.init()
	return f
}

// The step asks for "dropbear", the daemon belongs to S50dropbear: the
// old daemon that outlives the script's restart (its killall ran from
// the new root, the new daemon cannot bind port 22 while it listens) is
// found, stopped, and the script started again.
func TestRestartSSHDBusyboxStopsSurvivor(t *testing.T) {
	f := busyboxDropbear(t)
	f.on = func(argv string) (string, error) {
		if argv == "/etc/init.d/S50dropbear start" && !f.alive(160) {
			f.process(600, 1, "dropbear", "/usr/sbin/dropbear", "/usr/sbin/dropbear", "-R", "-p", "22")
		}
		return "", nil
	}
	st := &restartService{f.rt, StepRestartSSHD, []string{"ssh", "sshd", "dropbear"}, true}
	if err := st.Do(context.Background(), f.s); err != nil {
		t.Fatal(err)
	}
	calls, kills := f.got()
	wantCalls := []string{
		"/etc/init.d/S50dropbear stop", "/etc/init.d/S50dropbear start", // the script's restart
		"/etc/init.d/S50dropbear start", // again, once the survivor is gone
	}
	if !reflect.DeepEqual(calls, wantCalls) {
		t.Errorf("commands = %q\nwant %q", calls, wantCalls)
	}
	if want := []string{"160 TERM"}; !reflect.DeepEqual(kills, want) {
		t.Errorf("kills = %q, want %q", kills, want)
	}
	if want := []string{"S50dropbear"}; !reflect.DeepEqual(f.s.Restarted, want) {
		t.Errorf("Restarted = %q, want %q (as restart-holders and release name it)", f.s.Restarted, want)
	}
	if !f.alive(600) {
		t.Error("no dropbear from the new root")
	}
}

// A dropbear that does not come back from the new root fails the step
// (which is fatal: nobody could log in again).
func TestRestartSSHDNotBack(t *testing.T) {
	f := busyboxDropbear(t)
	f.on = func(argv string) (string, error) {
		if argv == "/etc/init.d/S50dropbear stop" {
			os.RemoveAll(filepath.Join(f.proc, "160"))
		}
		return "", nil // start: the new root's dropbear fails at once
	}
	st := &restartService{f.rt, StepRestartSSHD, []string{"ssh", "sshd", "dropbear"}, true}
	err := st.Do(context.Background(), f.s)
	if err == nil || !strings.Contains(err.Error(), "S50dropbear did not come back after its restart from the new root") {
		t.Fatalf("Do = %v, want S50dropbear did not come back", err)
	}
	if !st.Fatal() {
		t.Error("restart-sshd is not fatal")
	}
}

// The stopped writers start right after the mounts are back, before
// sshd's restart (which the old sshd covers meanwhile), and journald's
// flush, heavy I/O, waits until sshd is back.
func TestWritersStartBeforeSSHDRestart(t *testing.T) {
	pos := map[string]int{}
	for i, st := range Steps(&Runtime{}) {
		pos[st.Name()] = i
	}
	if !(pos["remount-extra"] < pos[StepStartServices] && pos[StepStartServices] < pos[StepRestartSSHD] && pos[StepRestartSSHD] < pos["flush-journal"]) {
		t.Errorf("step positions %v: want remount-extra, start-services, restart-sshd, flush-journal in that order", pos)
	}
}
