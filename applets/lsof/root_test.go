package lsof

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// holderScript keeps a read-write mapping of a file, one of a deleted
// file, and a bound, listening unix socket, all on the mount (its cwd).
const holderScript = `
import mmap, os, socket, sys, time
def mapped(name):
    f = open(name, "r+b")
    m = mmap.mmap(f.fileno(), 4096)
    f.close()
    return m
keep = mapped("keep")
gone = mapped("gone")
os.unlink("gone")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("s.sock")
s.listen()
print("ready", flush=True)
time.sleep(3600)
`

// inLoopExt4 runs fn in a private mount namespace with a fresh 64 MiB
// ext4 loop image mounted at mnt: the filesystem both lsof comparisons
// hold files on.
func inLoopExt4(t *testing.T, fn func(mnt string)) {
	t.Helper()
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
		fn(mnt)
	})
}

// TestAgainstLsof compares `rootswap lsof MOUNT` with real `lsof MOUNT`
// on an ext4 filesystem that processes hold in every way lsof reports:
// cwd, txt of a deleted binary, read, write, read-write and deleted
// descriptors, a mapping (mem) and a deleted mapping (DEL). The sets of
// (PID, FD, NAME) must be equal; rootswap adds the bound unix socket,
// marked.
func TestAgainstLsof(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "lsof", "mkfs.ext4", "python3", "mount", "sh")
	inLoopExt4(t, func(mnt string) {
		for _, name := range []string{"r", "w", "del", "keep", "gone"} {
			if err := os.WriteFile(filepath.Join(mnt, name), bytes.Repeat([]byte("x"), 4096), 0o644); err != nil {
				t.Error(err)
				return
			}
		}
		sleepBin, err := exec.LookPath("sleep")
		if err != nil {
			t.Error(err)
			return
		}
		testutil.Run(t, "cp", sleepBin, filepath.Join(mnt, "sl"))

		var procs []*exec.Cmd
		defer func() {
			for _, c := range procs {
				c.Process.Kill()
				c.Wait()
			}
		}()
		fds := exec.Command("sh", "-c", "exec 3<r 4>>w 5<del 6<>w; exec ./sl 3600")
		fds.Dir = mnt
		if err := fds.Start(); err != nil {
			t.Error(err)
			return
		}
		procs = append(procs, fds)
		holder := exec.Command("python3", "-c", holderScript)
		holder.Dir = mnt
		holder.Stderr = os.Stderr
		out, _ := holder.StdoutPipe()
		if err := holder.Start(); err != nil {
			t.Error(err)
			return
		}
		procs = append(procs, holder)
		if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
			t.Errorf("holder did not start: %q", line)
			return
		}
		// Wait for sh to have exec'd the copy, then delete it and del.
		sl := filepath.Join(mnt, "sl")
		if !testutil.WaitExec(t, fds.Process.Pid, sl, func(l string) bool { return l == sl }) {
			return
		}
		for _, name := range []string{"sl", "del"} {
			if err := os.Remove(filepath.Join(mnt, name)); err != nil {
				t.Error(err)
				return
			}
		}

		lsofCmd := exec.Command("lsof", "-n", "-P", "-w", "-F", "pfan", mnt)
		lsofCmd.Dir = "/"
		raw, err := lsofCmd.Output()
		if err != nil {
			t.Errorf("lsof %s: %v", mnt, err)
			return
		}
		want := parseLsofF(string(raw))

		// Both ways of reading: the BPF iterators (as root, the default)
		// and /proc alone.
		for _, mode := range [][]string{nil, {"--no-bpf"}} {
			compareWithLsof(t, mode, mnt, want, fds.Process.Pid, holder.Process.Pid)
		}
	})
}

func compareWithLsof(t *testing.T, mode []string, mnt string, want []string, fdsPID, holderPID int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := cli.OSEnv()
	env.Stdout, env.Stderr = &stdout, &stderr
	if err := Main(context.Background(), env, append(mode, mnt)); err != nil {
		t.Errorf("rootswap lsof %v %s: %v\n%s", mode, mnt, err, stderr.String())
		return
	}
	var got, marked []string
	for _, tr := range triples(t, stdout.String()) {
		if strings.HasSuffix(tr, "("+boundNote+")") {
			marked = append(marked, tr)
		} else {
			got = append(got, tr)
		}
	}
	same(t, fmt.Sprintf("rootswap lsof %v vs lsof", mode), got, want)
	sockRow := strconv.Itoa(holderPID) + " 3u " + filepath.Join(mnt, "s.sock") + " type=STREAM (LISTEN) (" + boundNote + ")"
	if len(marked) != 1 || marked[0] != sockRow {
		t.Errorf("%v: marked unix socket rows = %q, want [%q]", mode, marked, sockRow)
	}
	// What the test set up is all there, so that equality above
	// means something.
	fdsP, holderP := strconv.Itoa(fdsPID), strconv.Itoa(holderPID)
	for _, w := range []string{
		fdsP + " txt " + mnt + "/sl (deleted)",
		fdsP + " 5r " + mnt + "/del (deleted)",
		fdsP + " 4w " + mnt + "/w",
		fdsP + " 6u " + mnt + "/w",
		holderP + " mem " + mnt + "/keep",
		holderP + " DEL " + mnt + "/gone",
		holderP + " cwd " + mnt,
	} {
		if !contains(got, w) {
			t.Errorf("rootswap lsof %v lacks %q; got:\n%s", mode, w, stdout.String())
		}
	}
}

// parseLsofF turns `lsof -F pfan` output into sorted "PID FD NAME".
func parseLsofF(s string) []string {
	var out []string
	var pid, fd, mode string
	for _, l := range strings.Split(s, "\n") {
		if l == "" {
			continue
		}
		switch l[0] {
		case 'p':
			pid = l[1:]
		case 'f':
			fd, mode = l[1:], ""
		case 'a':
			mode = strings.TrimSpace(l[1:])
		case 'n':
			out = append(out, pid+" "+fd+mode+" "+l[1:])
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
