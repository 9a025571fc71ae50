package sandbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/testutil"
)

// builtDir is where rootswapBin built rootswap, for TestMain to remove.
var builtDir string

// rootswapBin is ROOTSWAP_BIN, or a rootswap built once into a temp dir.
var rootswapBin = sync.OnceValues(func() (string, error) {
	if p := os.Getenv("ROOTSWAP_BIN"); p != "" {
		return p, nil
	}
	dir, err := os.MkdirTemp("", "sandbox-test-bin-")
	if err != nil {
		return "", err
	}
	builtDir = dir
	p := filepath.Join(dir, "rootswap")
	// Static, as make build makes it: run refuses a dynamic binary.
	cmd := exec.Command("go", "build", "-o", p, "github.com/rootswap/rootswap")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build rootswap: %v\n%s", err, out)
	}
	return p, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// startServer builds and starts a sandbox closed in Cleanup.
func startServer(t *testing.T, o Options) *Server {
	t.Helper()
	testutil.RequireRoot(t)
	// No busybox: without one in PATH, Build fetches busybox-static.
	testutil.RequireTool(t, "losetup", "mkfs.ext3", "nsenter")
	bin, err := rootswapBin()
	if err != nil {
		t.Fatal(err)
	}
	o.Binary = bin
	o.Log = testLog{t}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("build %s, start %s, init %s, root %s, target %s",
		s.Timings.Build, s.Timings.Start, s.Init, s.RootDev, s.TargetDev)
	return s
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// inside runs argv in the server and returns its stdout.
func inside(t *testing.T, s *Server, argv ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if err := s.Exec(context.Background(), nil, &out, &errb, argv...); err != nil {
		t.Fatalf("%v\nstderr: %s", err, errb.String())
	}
	return out.String()
}

// poll waits up to 10s for cond, failing with what it last said.
func poll(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 10s: %s", what, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServer(t *testing.T) {
	s := startServer(t, Options{Init: InitSysvinit})

	t.Run("init", func(t *testing.T) {
		if got, want := strings.TrimSpace(inside(t, s, "cat", "/proc/1/comm")), "init"; got != want {
			t.Errorf("/proc/1/comm = %q, want %q", got, want)
		}
		if got, want := strings.TrimSpace(inside(t, s, "hostname")), "sandbox"; got != want {
			t.Errorf("hostname = %q, want %q", got, want)
		}
	})

	t.Run("root", func(t *testing.T) {
		st, err := s.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if st.Root.Device != s.RootDev || st.Root.FSType != "ext3" || st.Root.ReadOnly {
			t.Errorf("root = %+v, want %s ext3 rw", st.Root, s.RootDev)
		}
		if st.Root.Size == 0 || st.Root.Size > uint64(64<<20) {
			t.Errorf("root size = %d, want (0, 64 MiB]", st.Root.Size)
		}
		for _, p := range []string{"/proc", "/sys", "/dev", "/dev/pts", "/run"} {
			m, ok := st.Mounts.Containing(p)
			if !ok || m.Point != p {
				t.Errorf("no mount at %s in the server (got %+v)", p, m)
			}
		}
		if m, _ := st.Mounts.Containing("/"); m.Shared() {
			t.Errorf("/ is shared without Options.Shared: %+v", m)
		}
	})

	t.Run("daemons", func(t *testing.T) {
		st, err := s.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range append([]Process{st.Init}, st.Daemons...) {
			names = append(names, p.Name)
			if p.Err != "" || !p.OnServerRoot || p.RunsFrom != s.RootDev {
				t.Errorf("%s: %+v, want running from %s", p.Name, p, s.RootDev)
			}
		}
		want := append(append([]string{"init"}, Services()...), "getty")
		if !reflect.DeepEqual(names, want) {
			t.Errorf("processes = %v, want %v", names, want)
		}
		var tab bytes.Buffer
		st.WriteTable(&tab)
		t.Logf("snapshot:\n%s", tab.String())
		if st.Page != Page {
			t.Errorf("page = %q (%s), want %q", st.Page, st.PageErr, Page)
		}
	})

	t.Run("logger", func(t *testing.T) {
		mark := fmt.Sprintf("hello-%d", time.Now().UnixNano())
		inside(t, s, "logger", mark)
		poll(t, "/var/log/messages has "+mark, func() (bool, string) {
			b, err := os.ReadFile(s.HostPath("/var/log/messages"))
			return bytes.Contains(b, []byte(mark)), fmt.Sprint(len(b), " bytes, ", err)
		})
		// The socket syslogd reads is on the root filesystem.
		out := inside(t, s, "stat", "-c", "%F %d", SyslogSocket)
		if !strings.HasPrefix(out, "socket") {
			t.Errorf("stat %s = %q, want a socket", SyslogSocket, out)
		}
	})

	t.Run("deleted", func(t *testing.T) {
		out := inside(t, s, "sh", "-c", "ls -l /proc/*/fd/ 2>/dev/null")
		if !strings.Contains(out, HeldFile+" (deleted)") {
			t.Errorf("ls -l /proc/*/fd inside shows no %s (deleted):\n%s", HeldFile, out)
		}
		st, err := s.Snapshot(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		holder, _ := s.ServicePID("holder")
		var found bool
		for _, f := range st.Deleted {
			found = found || (f.PID == holder && f.FD == 3 && strings.HasSuffix(f.Target, HeldFile+" (deleted)"))
		}
		if !found {
			t.Errorf("Snapshot.Deleted = %+v, want holder (pid %d) fd 3 -> %s (deleted)", st.Deleted, holder, HeldFile)
		}
	})

	t.Run("service-restart", func(t *testing.T) {
		before, err := s.ServicePID("httpd")
		if err != nil {
			t.Fatal(err)
		}
		inside(t, s, "/etc/init.d/httpd", "restart")
		after, err := s.ServicePID("httpd")
		if err != nil {
			t.Fatal(err)
		}
		if after == before {
			t.Errorf("httpd pid %d unchanged by restart", after)
		}
		if page, err := s.Fetch(context.Background(), "/"); err != nil || page != Page {
			t.Errorf("after restart: page %q, %v", page, err)
		}
	})

	t.Run("telinit-u", func(t *testing.T) {
		// Replace /sbin/init by a copy (a new inode): the running init's
		// exe is then "(deleted)" until it re-executes itself.
		inside(t, s, "sh", "-c", "cp /sbin/init /sbin/init.new && mv /sbin/init.new /sbin/init")
		exe := func() string { l, _ := os.Readlink(s.HostPath("/proc/1/exe")); return l }
		if got := exe(); got != "/sbin/init (deleted)" {
			t.Fatalf("before telinit u: /proc/1/exe = %q, want /sbin/init (deleted)", got)
		}
		req := initRequest('u')
		if len(req) != 384 {
			t.Fatalf("init_request is %d bytes, want 384", len(req))
		}
		var errb bytes.Buffer
		if err := s.Exec(context.Background(), bytes.NewReader(req), nil, &errb, "busybox", "dd", "of=/run/initctl", "bs=384", "count=1"); err != nil {
			t.Fatalf("%v: %s", err, errb.String())
		}
		poll(t, "PID 1 re-executed", func() (bool, string) { e := exe(); return e == "/sbin/init", e })
		// Still the same server afterwards: init answers on its FIFO and
		// respawns the getty.
		gettys := findByCmdline(s.HostPath("/proc"), GettyCmdline)
		if len(gettys) != 1 {
			t.Fatalf("gettys = %v, want one", gettys)
		}
		inside(t, s, "kill", fmt.Sprint(gettys[0]))
		poll(t, "getty respawned", func() (bool, string) {
			g := findByCmdline(s.HostPath("/proc"), GettyCmdline)
			return len(g) == 1 && g[0] != gettys[0], fmt.Sprint(g)
		})
	})
}

// initRequest is sysvinit's struct init_request (initreq.h): magic, cmd
// INIT_CMD_RUNLVL, runlevel, sleeptime, 368 bytes of union.
func initRequest(runlevel byte) []byte {
	var b bytes.Buffer
	for _, v := range []int32{0x03091969, 1, int32(runlevel), 0} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.Write(make([]byte, 368))
	return b.Bytes()
}

// TestBusyboxInitShared covers the other init and shared propagation.
func TestBusyboxInitShared(t *testing.T) {
	s := startServer(t, Options{Init: InitBusybox, Shared: true})
	if s.Init != InitBusybox {
		t.Fatalf("Init = %q, want %q", s.Init, InitBusybox)
	}
	exe, err := os.Readlink(s.HostPath("/proc/1/exe"))
	if err != nil || exe != "/bin/busybox" {
		t.Errorf("/proc/1/exe = %q, %v; want /bin/busybox", exe, err)
	}
	st, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/proc", "/dev", "/run"} {
		if m, ok := st.Mounts.Containing(p); !ok || !m.Shared() {
			t.Errorf("%s not shared with Options.Shared: %+v", p, m)
		}
	}
	for _, p := range st.Daemons {
		if p.Err != "" || !p.OnServerRoot {
			t.Errorf("%s: %+v", p.Name, p)
		}
	}
}

// TestCloseLeavesNothing checks the host after Close: no loop device on
// the sandbox's files, no mount under its directory, no directory.
func TestCloseLeavesNothing(t *testing.T) {
	s := startServer(t, Options{Init: InitAuto})
	dir, pid := s.Dir, s.PID1()
	// A mount of the target inside, as a swap in progress has.
	inside(t, s, "sh", "-c", "mke2fs -F "+s.TargetDev+" >/dev/null && mount "+s.TargetDev+" /mnt/newroot")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after Close: %v", dir, err)
	}
	out := testutil.Run(t, "losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE")
	if devs := parseLoopList(out, dir); len(devs) > 0 {
		t.Errorf("loop devices left on %s: %v", dir, devs)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mi, []byte(dir)) {
		t.Errorf("host mountinfo still mentions %s:\n%s", dir, mi)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !os.IsNotExist(err) {
		t.Errorf("init (host pid %d) still exists: %v", pid, err)
	}
}

func TestParseLoopList(t *testing.T) {
	out := "/dev/loop0 /tmp/a/root.img\n/dev/loop1 /tmp/ab/root.img\n/dev/loop2 /tmp/a/target.img (deleted)\n/dev/loop3 /tmp/a\n\n"
	got := parseLoopList(out, "/tmp/a")
	want := []string{"/dev/loop0", "/dev/loop2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseLoopList = %v, want %v", got, want)
	}
}

func FuzzParseLoopList(f *testing.F) {
	f.Add("/dev/loop0 /tmp/a/root.img\n", "/tmp/a")
	f.Fuzz(func(t *testing.T, out, dir string) {
		for _, d := range parseLoopList(out, dir) {
			if !strings.Contains(out, d) {
				t.Errorf("device %q not in input", d)
			}
		}
	})
}

func TestElfDeps(t *testing.T) {
	// A dynamic host program: the interpreter and libc must come out, each once.
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls")
	}
	interp, libs, err := elfDeps(ls, libDirs())
	if err != nil {
		t.Fatal(err)
	}
	if interp == "" {
		t.Errorf("%s: no PT_INTERP found", ls)
	}
	seen := map[string]int{}
	var libc bool
	for _, l := range libs {
		seen[l]++
		libc = libc || filepath.Base(l) == "libc.so.6"
	}
	if !libc {
		t.Errorf("libs of %s = %v, no libc.so.6", ls, libs)
	}
	for l, n := range seen {
		if n > 1 {
			t.Errorf("%s listed %d times", l, n)
		}
	}
}

func TestInittabAndScripts(t *testing.T) {
	for _, init := range []string{InitSysvinit, InitBusybox} {
		s := &Server{Init: init, HTTPPort: 8080}
		tab := s.inittab()
		if !strings.Contains(tab, "sysinit:/etc/init.d/rcS") || !strings.Contains(tab, "respawn:"+GettyCmdline) {
			t.Errorf("%s inittab lacks rcS or the getty:\n%s", init, tab)
		}
		if got := strings.Contains(tab, "initdefault"); got != (init == InitSysvinit) {
			t.Errorf("%s inittab: initdefault present = %v", init, got)
		}
	}
	s := &Server{Init: InitSysvinit, HTTPPort: 8080}
	var names []string
	for _, svc := range s.services() {
		names = append(names, svc.name)
	}
	if !reflect.DeepEqual(names, Services()) {
		t.Errorf("service scripts %v, Services() %v", names, Services())
	}
	for _, f := range s.files() {
		if f.path == "etc/init.d/httpd" && !strings.Contains(f.content, "-p 8080") {
			t.Errorf("httpd script ignores the port:\n%s", f.content)
		}
	}
}

// TestBuildRefusesNonEmptyDir: Close removes Dir, so Build must not adopt
// a directory that holds anything, and must leave it as it was.
func TestBuildRefusesNonEmptyDir(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep")
	if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Build(context.Background(), Options{Dir: dir, Init: InitBusybox, Binary: "/bin/true"})
	if err == nil {
		s.Close()
		t.Fatalf("Build in a non-empty %s succeeded", dir)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("after the refused Build: %v", err)
	}
}
