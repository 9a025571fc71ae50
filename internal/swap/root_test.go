package swap_test

// Root tier: the real engine, run by the real binary inside the sandbox
// server (its own PID and mount namespaces, sysvinit as PID 1, daemons).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/sandbox"
	"github.com/rootswap/rootswap/internal/swap"
	"github.com/rootswap/rootswap/internal/testutil"
)

var binary = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("ROOTSWAP_BIN"); p != "" {
		return p, nil
	}
	dir, err := os.MkdirTemp("", "swap-test-bin-")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "rootswap")
	cmd := exec.Command("go", "build", "-trimpath", "-o", p, "github.com/rootswap/rootswap")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return p, nil
})

type server struct {
	*sandbox.Server
	t *testing.T
}

func start(t *testing.T, o sandbox.Options) server {
	t.Helper()
	testutil.RequireRoot(t)
	// No busybox: without one in PATH, sandbox.Build fetches busybox-static.
	testutil.RequireTool(t, "losetup", "mkfs.ext3", "nsenter", "e2fsck", "resize2fs")
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	o.Binary = bin
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := sandbox.Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return server{s, t}
}

// sh runs a shell command inside the server and returns its output and
// exit status.
func (s server) sh(env []string, script string) (string, int) {
	s.t.Helper()
	var out bytes.Buffer
	argv := append([]string{"/bin/busybox", "env"}, env...)
	argv = append(argv, "/bin/busybox", "sh", "-c", script)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := s.Exec(ctx, nil, &out, &out, argv...)
	if err == nil {
		return out.String(), 0
	}
	var ee *exec.ExitError
	if as(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	s.t.Fatalf("exec %q: %v\n%s", script, err, out.String())
	return "", -1
}

// waitDone polls rootswap status until the swap has ended and returns its
// output and exit status.
func (s server) waitDone() (string, int) {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, code := s.sh(nil, "/usr/sbin/rootswap status")
		if code != 4 || time.Now().After(deadline) {
			return out, code
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s server) snapshot() sandbox.State {
	s.t.Helper()
	st, err := s.Snapshot(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// checkOn asserts that / is dev, read-write, and that init and every
// daemon run from it and the page is served.
func (s server) checkOn(st sandbox.State, dev string) {
	s.t.Helper()
	if st.Root.Device != dev || st.Root.ReadOnly {
		s.t.Errorf("/ is %s (read-only %v), want %s read-write", st.Root.Device, st.Root.ReadOnly, dev)
	}
	for _, p := range append([]sandbox.Process{st.Init}, st.Daemons...) {
		if p.Err != "" || !p.OnServerRoot {
			s.t.Errorf("%s: runs from %s (err %q), want %s", p.Name, p.RunsFrom, p.Err, dev)
		}
	}
	if st.PageErr != "" {
		s.t.Errorf("page not served: %s", st.PageErr)
	}
}

// fileSums is the md5 of every regular file under /etc, /bin and /var/www.
const fileSums = "/bin/busybox find /etc /bin /sbin /var/www -xdev -type f | /bin/busybox sort | /bin/busybox xargs /bin/busybox md5sum"

func TestSwapMovesRootAndEveryDaemon(t *testing.T) {
	s := start(t, sandbox.Options{})
	before := s.snapshot()
	s.checkOn(before, s.RootDev)
	sums, _ := s.sh(nil, fileSums)

	out, code := s.sh(nil, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --no-lifeline --confirm-timeout 0 --release-wait 30s")
	if code != 0 {
		t.Fatalf("run exited %d:\n%s", code, out)
	}
	status, code := s.waitDone()
	if code != 0 || !strings.HasPrefix(status, "succeeded\n") {
		t.Fatalf("status exited %d:\n%s\nrun:\n%s", code, status, out)
	}
	after := s.snapshot()
	s.checkOn(after, s.TargetDev)
	if after.Root.Size <= before.Root.Size {
		t.Errorf("new root is %d bytes, not grown beyond %d", after.Root.Size, before.Root.Size)
	}
	for _, m := range after.Mounts {
		if strings.HasPrefix(m.Point, "/mnt/oldroot") || strings.HasPrefix(m.Point, "/mnt/newroot") {
			t.Errorf("still mounted after the swap: %s", m)
		}
	}
	// No superblock of the old filesystem is left in the kernel.
	if _, err := os.Stat("/sys/fs/ext4/" + filepath.Base(s.RootDev)); err == nil {
		t.Errorf("/sys/fs/ext4/%s still exists: the old root was not released", filepath.Base(s.RootDev))
	}
	if got, _ := s.sh(nil, fileSums); got != sums {
		t.Errorf("files differ after the swap:\nbefore:\n%s\nafter:\n%s", sums, got)
	}
	// The log written across the swap: syslogd restarted on the new root
	// still writes /var/log/messages.
	s.sh(nil, "/bin/busybox logger -t swaptest after-the-swap")
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, _ := s.sh(nil, "/bin/busybox cat /var/log/messages")
		if strings.Contains(msgs, "after-the-swap") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/var/log/messages on the new root lacks the line logged after the swap:\n%s", msgs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range []string{"read-only window", "pivot to sshd back"} {
		if !strings.Contains(status, w) {
			t.Errorf("status lacks %q:\n%s", w, status)
		}
	}
}

// Every fatal step, failed on purpose, must leave the server on its old
// root, read-write, with every daemon running from it.
// fatalSteps are the steps whose failure rolls the swap back, in run
// order, and whether each comes after sshd's restart (the foreground has
// returned by then: a failure shows in status only).
func fatalSteps() (names []string, late map[string]bool) {
	late = map[string]bool{}
	afterSSHD := false
	for _, st := range swap.Steps(&swap.Runtime{}) {
		if st.Fatal() {
			names = append(names, st.Name())
			late[st.Name()] = afterSSHD
		}
		if st.Name() == swap.StepRestartSSHD {
			afterSSHD = true
		}
	}
	return names, late
}

// Every fatal step, taken from the step list itself, fails once on
// request: the swap rolls back and the server runs on its old root.
func TestFaultAtEachStepRollsBack(t *testing.T) {
	steps, lateSteps := fatalSteps()
	if len(steps) < 10 {
		t.Fatalf("only %d fatal steps: %v", len(steps), steps)
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			s := start(t, sandbox.Options{})
			out, code := s.sh([]string{"ROOTSWAP_TEST_FAULT=" + step}, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --no-lifeline --confirm-timeout 0")
			late := lateSteps[step]
			if !late && (code != 1 || !strings.Contains(out, "rolled back")) {
				t.Errorf("run exited %d, want 1 with 'rolled back':\n%s", code, out)
			}
			status, code := s.waitDone()
			if code != 1 || !strings.HasPrefix(status, "rolled-back\n") {
				t.Errorf("status exited %d, want 1 and rolled-back:\n%s", code, status)
			}
			after := s.snapshot()
			s.checkOn(after, s.RootDev)
			for _, m := range after.Mounts {
				if strings.HasPrefix(m.Point, "/mnt/") {
					t.Errorf("left mounted after rollback: %s", m)
				}
			}
		})
	}
}

// killPoints are where TestRollbackAfterEngineKilled kills the engine:
// at the start of every step, and in the middle of the pivot and of the
// move of the submounts, right after a mount operation and before its
// outcome reached the journal.
func killPoints() []string {
	var out []string
	for _, st := range swap.Steps(&swap.Runtime{}) {
		out = append(out, st.Name())
	}
	return append(out, "precopy/round#1", "copy/frozen",
		"remount-ro/remount#1", "mount-new/mount#1", "pivot/pivot#1", "move-mounts/move#1", "move-mounts/move#3")
}

// The engine dies (SIGKILL) at a step boundary or in the middle of the
// pivot or of the moves; rootswap rollback from a new session reads the
// journal it left (the write-ahead intent of a mount operation settled by
// the live mount table) and ends on the old root, read-write, with every
// daemon running from it.
func TestRollbackAfterEngineKilled(t *testing.T) {
	for _, point := range killPoints() {
		t.Run(strings.ReplaceAll(point, "/", ":"), func(t *testing.T) {
			step, _, _ := strings.Cut(point, "/")
			s := start(t, sandbox.Options{})
			s.runAndKill(point)
			out, code := s.sh(nil, "/usr/sbin/rootswap rollback")
			if step == "fsck-old" || step == swap.StepRelabelOld {
				// Past the release there is no way back, and no need:
				// the new root runs everything.
				if code == 0 || !strings.Contains(out, "already released") {
					t.Errorf("rollback after the release exited %d, want a refusal naming the release:\n%s", code, out)
				}
				s.checkOn(s.snapshot(), s.TargetDev)
				return
			}
			s.rolledBack(out, code)
		})
	}
}

// runAndKill starts run hanging at the fault point, waits
// until it hangs there and SIGKILLs the engine; status must then say it
// died in point's step.
func (s server) runAndKill(point string) {
	s.t.Helper()
	step, _, _ := strings.Cut(point, "/")
	// The foreground returns when the engine stops advancing only
	// after the pivot; run it in the background.
	s.sh([]string{"ROOTSWAP_TEST_FAULT=" + point + ":hang"},
		"/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --no-lifeline --confirm-timeout 0 >/run/run.out 2>&1 &")
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := s.sh(nil, "/usr/sbin/rootswap status")
		if strings.HasPrefix(st, "running "+step) && strings.Contains(st, "hanging at "+point+"\n") {
			break
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("never reached %s:\n%s", point, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The engine's pid (in the server's PID namespace) from status.
	st, _ := s.sh(nil, "/usr/sbin/rootswap status")
	var pid int
	for _, line := range strings.Split(st, "\n") {
		if i := strings.Index(line, "engine pid "); i >= 0 {
			fmt.Sscanf(line[i:], "engine pid %d", &pid)
		}
	}
	if pid <= 1 {
		s.t.Fatalf("no engine pid in status:\n%s", st)
	}
	s.sh(nil, fmt.Sprintf("kill -KILL %d", pid))
	st, code := s.sh(nil, "/usr/sbin/rootswap status")
	for i := 0; i < 50 && code == 4; i++ { // until the kill is seen
		time.Sleep(100 * time.Millisecond)
		st, code = s.sh(nil, "/usr/sbin/rootswap status")
	}
	if code != 1 || !strings.HasPrefix(st, "failed "+step) || !strings.Contains(st, "died") {
		s.t.Errorf("status after SIGKILL exited %d:\n%s", code, st)
	}
}

// rolledBack checks that rollback (its output and exit status) ended
// the swap on the old root, read-write, every daemon running from it,
// and returns the server's state.
func (s server) rolledBack(out string, code int) sandbox.State {
	s.t.Helper()
	if code != 0 {
		s.t.Errorf("rollback exited %d:\n%s", code, out)
	}
	st, code := s.sh(nil, "/usr/sbin/rootswap status")
	if code != 1 || !strings.HasPrefix(st, "rolled-back") {
		s.t.Errorf("status after rollback exited %d:\n%s\nrollback:\n%s", code, st, out)
	}
	after := s.snapshot()
	s.checkOn(after, s.RootDev)
	if s.t.Failed() {
		s.t.Logf("rollback:\n%s", out)
	}
	return after
}

// Bad input is refused before anything changes.
func TestBadTargetRefused(t *testing.T) {
	s := start(t, sandbox.Options{NewRootSize: 32 << 20})
	for _, tc := range []struct{ target, want string }{
		{s.TargetDev, "smaller than the root filesystem"},
		{s.RootDev, "is / itself"},
		{"/dev/null", "not a block device"},
	} {
		out, code := s.sh(nil, "/usr/sbin/rootswap run --to "+tc.target+" --yes --no-lifeline --confirm-timeout 0")
		if code != 3 || !strings.Contains(out, tc.want) {
			t.Errorf("run --to %s exited %d, want 3 and %q:\n%s", tc.target, code, tc.want, out)
		}
	}
	if out, _ := s.sh(nil, "/bin/busybox ls /run/rootswap 2>&1; /bin/busybox grep ' / ' /proc/mounts"); strings.Contains(out, "journal") || !strings.Contains(out, " rw") {
		t.Errorf("something changed after refusals:\n%s", out)
	}
	s.checkOn(s.snapshot(), s.RootDev)
}

func as(err error, target **exec.ExitError) bool {
	for err != nil {
		if e, ok := err.(*exec.ExitError); ok {
			*target = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// A daemon with no service that writes to / blocks the swap unless
// --kill; with it, the daemon is killed for the copy and started again
// from the new root with the same command line.
func TestKillRespawnsDaemon(t *testing.T) {
	s := start(t, sandbox.Options{})
	s.sh(nil, "cd /; /bin/busybox setsid /bin/busybox sh -c 'exec 3>>/var/log/orphan.log; exec /bin/busybox sleep 100000' </dev/null >/dev/null 2>&1 &")
	// plan must see the writer: wait until it holds the file.
	for i := 0; ; i++ {
		if _, code := s.sh(nil, "/bin/busybox ls -l /proc/[0-9]*/fd 2>/dev/null | /bin/busybox grep -q orphan.log"); code == 0 {
			break
		}
		if i == 100 {
			t.Fatal("the writer never opened /var/log/orphan.log")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, code := s.sh(nil, "/usr/sbin/rootswap plan --no-lifeline --to "+s.TargetDev)
	if code != 3 || !strings.Contains(out, "belongs to no service") || !strings.Contains(out, "--kill") {
		t.Fatalf("plan without --kill exited %d, want 3 naming the writer and --kill:\n%s", code, out)
	}
	out, code = s.sh(nil, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --kill --no-lifeline --confirm-timeout 0")
	if code != 0 {
		t.Fatalf("run --kill exited %d:\n%s", code, out)
	}
	if status, code := s.waitDone(); code != 0 {
		t.Fatalf("status %d:\n%s", code, status)
	}
	s.checkOn(s.snapshot(), s.TargetDev)
	// The daemon runs again, from the new root.
	ps, _ := s.sh(nil, "for p in /proc/[0-9]*; do c=$(/bin/busybox tr '\\0' ' ' < $p/cmdline 2>/dev/null); case \"$c\" in *'sleep 100000'*) echo \"$c\"; /bin/busybox readlink $p/exe;; esac; done")
	if !strings.Contains(ps, "sleep 100000") {
		t.Errorf("the killed daemon was not started again:\n%s", ps)
	}
}
