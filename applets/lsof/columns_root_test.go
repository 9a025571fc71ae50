package lsof

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// socketHolder, named holderName, holds from its cwd on the mount a
// mapping, a pipe, unix sockets (bound and listening, connected to it
// and accepted, abstract, an unnamed pair), TCP listening on 127.0.0.1
// and ::1 and a connection of two, UDP on 127.0.0.1 (connected) and ::1,
// an unidentified socket (TCP, never bound), a bound netlink socket, and
// the anonymous inodes eventfd, eventpoll (watching two of them),
// signalfd, timerfd, inotify and pidfd.
const socketHolder = `
import ctypes, mmap, os, select, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, b"` + holderName + `", 0, 0, 0)
f = open("mm", "r+b")
m = mmap.mmap(f.fileno(), 4096)
f.close()
r, w = os.pipe()
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind("s.sock")
u.listen()
uc = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
uc.connect("s.sock")
ua, _ = u.accept()
ab = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
ab.bind(b"\0rootswap-columns-%d" % os.getpid())
p1, p2 = socket.socketpair()
i = socket.socket()
i.bind(("127.0.0.1", 0))
i.listen()
i6 = socket.socket(socket.AF_INET6)
i6.bind(("::1", 0))
i6.listen()
ic = socket.create_connection(i.getsockname())
ia, _ = i.accept()
d4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d4.bind(("127.0.0.1", 0))
d4.connect(d4.getsockname())
d6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
d6.bind(("::1", 0))
unbound = socket.socket()
nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
nl.bind((0, 0))
ev = os.eventfd(0)
ep = select.epoll()
ep.register(ev, select.EPOLLIN)
ep.register(p1, select.EPOLLIN)
mask = (ctypes.c_ulong * 16)()
fds = [libc.signalfd(-1, ctypes.byref(mask), 0), libc.timerfd_create(1, 0), libc.inotify_init1(0)]
if min(fds) < 0 or libc.inotify_add_watch(fds[2], b"/", 0x100) < 0:
    sys.exit("anonymous inodes: errno %d" % ctypes.get_errno())
pidfd = os.pidfd_open(os.getpid())
print("ready", flush=True)
time.sleep(3600)
`

// holderName is socketHolder's command (prctl): unlike "python3", no
// other process on the host has it.
const holderName = "sockhold"

// jailName is the chroot'd process's command: longer than lsof's nine
// characters, for +c.
const jailName = "longjailname12"

// TestColumnsAgainstLsof compares rootswap lsof with lsof 4.95 line by
// line, every column, for lsof's own option sets, on an ext4 that
// processes hold in every way: regular files read, written, both, a
// deleted one, a directory as cwd, a chroot (rtd), /dev/null, a FIFO, a
// pipe, a mapping, names with a newline and an ESC; and every kind of
// socket and anonymous inode (see socketHolder); by the BPF iterators
// and by /proc.
func TestColumnsAgainstLsof(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "lsof", "mkfs.ext4", "python3", "ldd")
	inLoopExt4(t, func(mnt string) {
		procs, ok := startHolders(t, mnt)
		defer func() {
			for _, c := range procs {
				c.Process.Kill()
				c.Wait()
			}
		}()
		if !ok {
			return
		}
		for _, opts := range [][]string{
			{"-n", "-P", mnt},
			{"-nP", "+D", mnt},
			{"+d", mnt},
			{"+d", mnt + "/sub"},
			{"-a", "-c", "rshold", mnt},
			{"-a", "-c", "rshold", "-nPw"}, // the whole process: /dev/null, pipes, libraries
			{"-a", "-c", "/^long/", "-c", holderName, "-c", "rshold", "-nP"}, // rootswap never looks addresses up
			{"-a", "-c", holderName, "-nP"},                                  // sockets, anonymous inodes, libraries
			{"-a", "-c", holderName, "-d", "^txt,^mem", "-n", "-P"},
			{"-u", "root", "-a", mnt},
			{"-l", "-a", "-u", "0", mnt},
			{"+c", "0", mnt},
			{"-a", "-c", "long", "+c0"},
			{"-t", mnt},
			{"-ta", "-c", holderName, mnt},
		} {
			compareColumns(t, opts, nil)
			compareColumns(t, opts, []string{"--no-bpf"})
		}
	})
}

// startHolders starts the processes that hold the fixture's files: rshold
// (a deleted copy of sleep, cwd sub, every file kind on descriptors
// 3-11), python3 (sockets, a pipe, a mapping) and the chroot'd jail.
func startHolders(t *testing.T, mnt string) ([]*exec.Cmd, bool) {
	t.Helper()
	var procs []*exec.Cmd
	write := func(name string) bool {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mnt, name)), 0o755); err != nil {
			t.Error(err)
			return false
		}
		if err := os.WriteFile(filepath.Join(mnt, name), bytes.Repeat([]byte("x"), 4096), 0o644); err != nil {
			t.Error(err)
			return false
		}
		return true
	}
	for _, name := range []string{"r", "w", "rw", "del", "mm", "nl\nname", "esc\x1bname", "sub/deep/x"} {
		if !write(name) {
			return procs, false
		}
	}
	if err := unix.Mkfifo(filepath.Join(mnt, "fifo"), 0o644); err != nil {
		t.Error(err)
		return procs, false
	}
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Error(err)
		return procs, false
	}
	testutil.Run(t, "cp", sleepBin, filepath.Join(mnt, "rshold"))
	if !jail(t, mnt, sleepBin) {
		return procs, false
	}

	// rshold's descriptors, opened here and closed again once it runs: the
	// test process must hold nothing on the mount.
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, o := range []struct {
		name string
		flag int
	}{
		{"r", os.O_RDONLY}, {"w", os.O_WRONLY | os.O_APPEND}, {"rw", os.O_RDWR}, {"del", os.O_RDONLY},
		{"/dev/null", os.O_RDONLY}, {"fifo", os.O_RDWR}, {"nl\nname", os.O_RDONLY}, {"esc\x1bname", os.O_RDONLY},
		{"sub/deep/x", os.O_RDONLY},
	} {
		p := o.name
		if !filepath.IsAbs(p) {
			p = filepath.Join(mnt, p)
		}
		f, err := os.OpenFile(p, o.flag, 0)
		if err != nil {
			t.Error(err)
			return procs, false
		}
		files = append(files, f)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Error(err)
		return procs, false
	}
	files = append(files, pr, pw)
	sl := exec.Command(filepath.Join(mnt, "rshold"), "3600")
	sl.Dir = filepath.Join(mnt, "sub")
	sl.ExtraFiles = files
	if err := sl.Start(); err != nil {
		t.Error(err)
		return procs, false
	}
	procs = append(procs, sl)

	holder := exec.Command("python3", "-c", socketHolder)
	holder.Dir = mnt
	holder.Stderr = os.Stderr
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Error(err)
		return procs, false
	}
	procs = append(procs, holder)
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Errorf("holder did not start: %q", line)
		return procs, false
	}

	j := exec.Command("/bin/"+jailName, "3600")
	j.SysProcAttr = &unix.SysProcAttr{Chroot: filepath.Join(mnt, "jail")}
	j.Dir = "/"
	if err := j.Start(); err != nil {
		t.Error(err)
		return procs, false
	}
	procs = append(procs, j)

	slPath := filepath.Join(mnt, "rshold")
	jailPath := filepath.Join(mnt, "jail/bin", jailName)
	if !testutil.WaitExec(t, sl.Process.Pid, slPath, func(l string) bool { return l == slPath }) ||
		!testutil.WaitExec(t, j.Process.Pid, jailPath, func(l string) bool { return l == jailPath }) {
		return procs, false
	}
	for _, name := range []string{"rshold", "del"} {
		if err := os.Remove(filepath.Join(mnt, name)); err != nil {
			t.Error(err)
			return procs, false
		}
	}
	return procs, true
}

// jail makes mnt/jail a root that runs a copy of sleep: the binary and
// the libraries ldd names.
func jail(t *testing.T, mnt, sleepBin string) bool {
	t.Helper()
	root := filepath.Join(mnt, "jail")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Error(err)
		return false
	}
	testutil.Run(t, "cp", sleepBin, filepath.Join(root, "bin", jailName))
	for _, f := range strings.Fields(testutil.Run(t, "ldd", sleepBin)) {
		if !strings.HasPrefix(f, "/") {
			continue
		}
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
			t.Error(err)
			return false
		}
		testutil.Run(t, "cp", "-L", f, filepath.Join(root, f))
	}
	return true
}

// compareColumns runs lsof and rootswap lsof with the same options and
// compares their output byte for byte. Where rootswap prints its own rows
// (unix sockets bound on a selected filesystem, which lsof omits), those
// widen its columns: then every other line must equal lsof's column by
// column, and the extra rows must be the bound sockets alone.
func compareColumns(t *testing.T, opts, mode []string) {
	t.Helper()
	cmd := exec.Command("lsof", opts...)
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	want, err := cmd.Output()
	// lsof +d and +D exit 1 when a file of the tree is not open (each
	// is a search item); rootswap exits 1 only when nothing was found.
	if err != nil && len(want) == 0 {
		t.Errorf("lsof %q: %v", opts, err)
		return
	}
	var stdout, stderr bytes.Buffer
	env := cli.OSEnv()
	env.Stdout, env.Stderr = &stdout, &stderr
	env.Getenv = func(k string) string {
		if k == "LC_ALL" {
			return "C.UTF-8"
		}
		return os.Getenv(k)
	}
	what := fmt.Sprintf("rootswap lsof %q %q", mode, opts)
	if err := Main(context.Background(), env, append(append([]string{}, mode...), opts...)); err != nil {
		t.Errorf("%s: %v\n%s", what, err, stderr.String())
		return
	}
	got := stdout.Bytes()
	wantLines, wantExtra := columnLines(string(want))
	gotLines, gotExtra := columnLines(string(got))
	if wantExtra != 0 {
		t.Errorf("lsof %q printed %d rows marked %q", opts, wantExtra, boundNote)
	}
	if gotExtra == 0 {
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from lsof:\ngot:\n%s\nwant:\n%s", what, got, want)
		}
		return
	}
	if strings.Join(gotLines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("%s differs from lsof:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(gotLines, "\n  "), strings.Join(wantLines, "\n  "))
	}
}

// columnLines splits table output into lines of single-space separated
// columns, NAME kept whole, leaving out and counting rootswap's own bound
// socket rows. -t output is returned as it is.
func columnLines(out string) (lines []string, extra int) {
	all := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(all) == 0 || !strings.HasPrefix(all[0], "COMMAND") {
		return all, 0
	}
	nameAt := strings.Index(all[0], "NAME")
	lines = append(lines, strings.Join(strings.Fields(all[0]), " "))
	for _, l := range all[1:] {
		if len(l) < nameAt {
			lines = append(lines, l) // a forged line: kept to differ
			continue
		}
		if strings.HasSuffix(l, "("+boundNote+")") {
			extra++
			continue
		}
		lines = append(lines, strings.Join(strings.Fields(l[:nameAt]), " ")+" "+l[nameAt:])
	}
	return lines, extra
}
