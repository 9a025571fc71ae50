package lsof

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// socketHolder holds, from its cwd on the mount, a mapping, a pipe, a
// bound and listening unix socket and a listening inet socket.
const socketHolder = `
import mmap, os, socket, time
f = open("mm", "r+b")
m = mmap.mmap(f.fileno(), 4096)
f.close()
r, w = os.pipe()
u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
u.bind("s.sock")
u.listen()
i = socket.socket()
i.bind(("127.0.0.1", 0))
i.listen()
print("ready", flush=True)
time.sleep(3600)
`

// jailName is the chroot'd process's command: longer than lsof's nine
// characters, for +c.
const jailName = "longjailname12"

// TestColumnsAgainstLsof compares rootswap lsof with lsof 4.95 line by
// line, every column, for lsof's own option sets, on an ext4 that
// processes hold in every way: regular files read, written, both, a
// deleted one, a directory as cwd, a chroot (rtd), /dev/null, a FIFO, a
// pipe, a unix and an inet socket, a mapping, names with a newline and
// an ESC; by the BPF iterators and by /proc.
func TestColumnsAgainstLsof(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "lsof", "mkfs.ext4", "python3", "ldd")
	dir := t.TempDir()
	img := testutil.Image(t, dir, "fs.img", 64<<20)
	testutil.Run(t, "mkfs.ext4", "-q", "-F", img)
	dev := testutil.Loop(t, img)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.InMountNS(t, func() {
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Errorf("mount %s on %s: %v", dev, mnt, err)
			return
		}
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
			{"-a", "-c", "sl", mnt},
			{"-a", "-c", "sl", "-nPw"}, // the whole process: /dev/null, pipes, libraries
			{"-a", "-c", "/^long/", "-c", "python", "-c", "sl"},
			{"-u", "root", "-a", mnt},
			{"-l", "-a", "-u", "0", mnt},
			{"+c", "0", mnt},
			{"-a", "-c", "long", "+c0"},
			{"-t", mnt},
			{"-ta", "-c", "python", mnt},
		} {
			compareColumns(t, opts, nil)
			compareColumns(t, opts, []string{"--no-bpf"})
		}
	})
}

// startHolders starts the processes that hold the fixture's files: sl
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
	testutil.Run(t, "cp", sleepBin, filepath.Join(mnt, "sl"))
	if !jail(t, mnt, sleepBin) {
		return procs, false
	}

	// sl's descriptors, opened here and closed again once it runs: the
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
	sl := exec.Command(filepath.Join(mnt, "sl"), "3600")
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

	slPath := filepath.Join(mnt, "sl")
	jailPath := filepath.Join(mnt, "jail/bin", jailName)
	if !testutil.WaitExec(t, sl.Process.Pid, slPath, func(l string) bool { return l == slPath }) ||
		!testutil.WaitExec(t, j.Process.Pid, jailPath, func(l string) bool { return l == jailPath }) {
		return procs, false
	}
	for _, name := range []string{"sl", "del"} {
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
// compares their lines. Where rootswap prints no extra row (the bound
// unix socket lsof omits) and no row of a kind it does not yet spell as
// lsof (see gapTypes), the outputs must be equal byte for byte; else
// line by line, column by column, after dropping those rows.
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
	wantLines, wantGaps := columnLines(string(want))
	gotLines, gotGaps := columnLines(string(got))
	if len(wantGaps)+len(gotGaps) == 0 {
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from lsof:\ngot:\n%s\nwant:\n%s", what, got, want)
		}
		return
	}
	if strings.Join(gotLines, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("%s differs from lsof:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(gotLines, "\n  "), strings.Join(wantLines, "\n  "))
	}
	// The rows left out are the same descriptors.
	gotGaps = slices.DeleteFunc(gotGaps, func(s string) bool { return s == "extra" })
	if g, w := strings.Join(gotGaps, " "), strings.Join(wantGaps, " "); g != w {
		t.Errorf("%s: rows left out of the comparison: got %s, want %s", what, g, w)
	}
}

// gapType is whether lsof's TYPE is one rootswap does not print in full
// yet: a unix socket's kernel address (DEVICE) and inet sockets'
// addresses need tables procscan does not read; anonymous inodes' names
// need fdinfo details.
func gapType(typ string) bool {
	switch typ {
	case "unix", "IPv4", "IPv6", "sock", "a_inode":
		return true
	}
	return false
}

// columnLines splits table output into lines of single-space separated
// columns, NAME kept whole; rows of gapTypes and rootswap's own bound
// socket rows are returned apart as "PID/FD". -t output is returned
// as it is.
func columnLines(out string) (lines, gaps []string) {
	all := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(all) == 0 || !strings.HasPrefix(all[0], "COMMAND") {
		return all, nil
	}
	nameAt := strings.Index(all[0], "NAME")
	lines = append(lines, strings.Join(strings.Fields(all[0]), " "))
	for _, l := range all[1:] {
		if len(l) < nameAt {
			lines = append(lines, l) // a forged line: kept to differ
			continue
		}
		f := strings.Fields(l[:nameAt])
		name := l[nameAt:]
		if len(f) < 5 {
			lines = append(lines, l)
			continue
		}
		typ := f[4]
		if strings.HasSuffix(name, "("+boundNote+")") {
			gaps = append(gaps, "extra") // rootswap's own row: no byte comparison
			continue
		}
		if gapType(typ) {
			gaps = append(gaps, f[1]+"/"+f[3])
			continue
		}
		lines = append(lines, strings.Join(f, " ")+" "+name)
	}
	return lines, gaps
}
