package lsof

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
)

// copyTree copies a fixture tree, symlinks as symlinks.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, dst)
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A unix socket's path is relative to the root of whoever bound it. In
// one network namespace /proc/net/unix lists a container's sockets and a
// chroot's with ours: a container's /run/app.sock is not on our /run,
// and a chroot's /run/jail.sock is /srv/jail/run/jail.sock here.
func TestUnixSocketsOfOtherRoots(t *testing.T) {
	proc := filepath.Join(t.TempDir(), "proc")
	copyTree(t, fixture, proc)
	w := func(rel, text string) {
		p := filepath.Join(proc, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := func(rel, target string) {
		p := filepath.Join(proc, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	// Every net/unix of the shared network namespace gains the two
	// sockets, whichever the scan reads.
	lines := "0000000000000000: 00000002 00000000 00010000 0001 01 6006 /run/app.sock\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 7007 /run/jail.sock\n"
	matches, _ := filepath.Glob(filepath.Join(proc, "*", "net", "unix"))
	for _, m := range matches {
		b, _ := os.ReadFile(m)
		w(strings.TrimPrefix(m, proc+"/"), string(b)+lines)
	}
	for pid, p := range map[string]struct{ comm, ns, root, sock, mountinfo string }{
		// A container: its own mount namespace, an overlay as its /.
		"600": {"app", "mnt:[4026532600]", "/", "6006",
			"900 800 0:77 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/c/l,upperdir=/var/lib/c/u,workdir=/var/lib/c/w\n" +
				"901 900 0:78 / /run rw - tmpfs tmpfs rw\n"},
		// A chroot in our namespace.
		"700": {"jaild", "mnt:[4026531841]", "/srv/jail", "7007", ""},
	} {
		w(pid+"/status", "Name:\t"+p.comm+"\nUid:\t0\t0\t0\t0\n")
		w(pid+"/cgroup", "0::/system.slice/"+p.comm+".service\n")
		w(pid+"/maps", "")
		w(pid+"/fdinfo/3", "pos:\t0\nflags:\t02000002\nmnt_id:\t8\n")
		l(pid+"/fd/3", "socket:["+p.sock+"]")
		l(pid+"/ns/mnt", p.ns)
		l(pid+"/ns/net", "net:[4026531840]")
		l(pid+"/root", p.root)
		l(pid+"/cwd", p.root)
		l(pid+"/exe", "/usr/bin/"+p.comm)
		mi := p.mountinfo
		if mi == "" {
			b, _ := os.ReadFile(filepath.Join(proc, "1", "mountinfo"))
			mi = string(b)
		}
		w(pid+"/mountinfo", mi)
		b, _ := os.ReadFile(filepath.Join(proc, "1", "net", "unix"))
		w(pid+"/net/unix", string(b))
	}
	lsof := func(args ...string) string {
		var out, errb bytes.Buffer
		env := &cli.Env{Stdout: &out, Stderr: &errb, ProcRoot: proc}
		if err := Main(context.Background(), env, args); err != nil {
			t.Fatalf("lsof %q: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	out := lsof("/run")
	same(t, "lsof /run", triples(t, out), []string{"1 3u /run/systemd/notify type=STREAM (LISTEN) (bound here; lsof omits)"})
	out = lsof("/")
	var marked []string
	for _, tr := range triples(t, out) {
		if strings.HasSuffix(tr, "(bound here; lsof omits)") {
			marked = append(marked, tr)
		}
	}
	same(t, "bound sockets in lsof /", marked, []string{
		"300 4u /sock with space.sock type=STREAM (LISTEN) (bound here; lsof omits)",
		"700 3u /srv/jail/run/jail.sock type=STREAM (LISTEN) (bound here; lsof omits)",
	})
	// Without a selection both still show, by the path the kernel keeps.
	out = lsof("-p", "600,700", "-a", "-d", "3")
	for _, want := range []string{"/run/app.sock type=STREAM (LISTEN)\n", "/run/jail.sock type=STREAM (LISTEN)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("lsof -p 600,700 lacks %q:\n%s", want, out)
		}
	}
}
