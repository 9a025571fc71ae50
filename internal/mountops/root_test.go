package mountops

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/testutil"
)

// The root tier simulates a server inside a private mount namespace: the
// test thread (InMountNS unshares CLONE_FS too) chroots into an "old
// root" ext4 mount with proc/tmpfs submounts and the new root's ext4
// mounted at /mnt/newroot, then pivots, moves the submounts, and rolls
// all of it back. pivot_root only changes the root of tasks whose root
// is the old root mount of this namespace, so only this thread (and what
// it starts) moves.

// threadTable reads the calling thread's mount table: /proc/self would
// be the thread group leader's, which lives in another namespace.
// Between a pivot and the move, proc is still below the other root.
func threadTable(procRoot string) (mountinfo.Table, error) {
	return mountinfo.Read(procRoot, "thread-self")
}

func rdev(t *testing.T, dev string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	return st.Rdev
}

// rootImages makes the two loop-backed ext4 roots: a tiny busybox tree,
// and its copy that differs in /etc/which and lacks /srv/data.
func rootImages(t *testing.T, dir string) (oldDev, newDev string) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.ext4", "losetup", "busybox")
	tree := filepath.Join(dir, "tree")
	for _, d := range []string{"bin", "etc", "proc", "dev", "run", "var/log", "mnt/newroot", "srv/data", "tmp"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, _ := exec.LookPath("busybox")
	testutil.Run(t, "cp", bb, filepath.Join(tree, "bin/busybox"))
	for _, which := range []string{"old", "new"} {
		if err := os.WriteFile(filepath.Join(tree, "etc/which"), []byte(which+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if which == "new" {
			os.Remove(filepath.Join(tree, "srv/data"))
		}
		img := testutil.Image(t, dir, which+".img", 32<<20)
		testutil.Run(t, "mkfs.ext4", "-q", "-F", "-d", tree, img)
		dev := testutil.Loop(t, img)
		if which == "old" {
			oldDev = dev
		} else {
			newDev = dev
		}
	}
	return oldDev, newDev
}

type mnt struct{ source, target, fstype string }

func mountAll(ms []mnt) error {
	for _, m := range ms {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			return err
		}
		if err := (System{}).Mount(m.source, m.target, m.fstype, 0, ""); err != nil {
			return err
		}
	}
	return nil
}

// expectLayout checks, from the thread's mount table, that / and root2
// are the filesystems wanted, that nothing is left below root2 and that
// every submount is back at its path.
func expectLayout(tab mountinfo.Table, rootDev uint64, other string, otherDev uint64, submounts map[string]string) error {
	var errs []error
	if m, _ := tab.Containing("/"); m.Point != "/" || m.Dev() != rootDev {
		errs = append(errs, fmt.Errorf("/ is %v (dev %d:%d), want dev %d:%d", m, m.Major, m.Minor, unix.Major(rootDev), unix.Minor(rootDev)))
	}
	if m, _ := tab.Containing(other); m.Point != other || m.Dev() != otherDev {
		errs = append(errs, fmt.Errorf("%s is %v, want dev %d:%d", other, m, unix.Major(otherDev), unix.Minor(otherDev)))
	}
	if below := tab.Below(other); len(below) != 0 {
		errs = append(errs, fmt.Errorf("left below %s: %v", other, below))
	}
	for p, fstype := range submounts {
		if m, _ := tab.Containing(p); m.Point != p || m.FSType != fstype {
			errs = append(errs, fmt.Errorf("%s: %v, want a %s mount", p, m, fstype))
		}
	}
	return errors.Join(errs...)
}

func readWhich() string {
	b, _ := os.ReadFile("/etc/which")
	return strings.TrimSpace(string(b))
}

func TestRootPivotMoveAndBack(t *testing.T) {
	if testing.Short() {
		t.Skip("root tier")
	}
	dir := t.TempDir()
	oldDev, newDev := rootImages(t, dir)
	oldRdev, newRdev := rdev(t, oldDev), rdev(t, newDev)
	root := filepath.Join(dir, "root")
	submounts := map[string]string{
		"/proc": "proc", "/dev": "tmpfs", "/dev/shm": "tmpfs", "/run": "tmpfs",
		"/run/user/0": "tmpfs", "/var/log": "tmpfs", "/srv/data": "tmpfs",
	}
	var notes []string
	testutil.InMountNS(t, func() {
		err := func() error {
			err := mountAll([]mnt{
				{oldDev, root, "ext4"},
				{"proc", root + "/proc", "proc"},
				{"tmpfs", root + "/dev", "tmpfs"},
				{"tmpfs", root + "/dev/shm", "tmpfs"},
				{"tmpfs", root + "/run", "tmpfs"},
				{"tmpfs", root + "/run/user/0", "tmpfs"},
				{"tmpfs", root + "/var/log", "tmpfs"},  // on the old root's /var: top-level
				{"tmpfs", root + "/srv/data", "tmpfs"}, // missing in the new root
				{newDev, root + "/mnt/newroot", "ext4"},
			})
			if err != nil {
				return err
			}
			if err := unix.Chroot(root); err != nil {
				return fmt.Errorf("chroot %s: %w", root, err)
			}
			if err := unix.Chdir("/"); err != nil {
				return err
			}
			tab, err := threadTable("/proc")
			if err != nil {
				return err
			}

			if err := Pivot(System{}, tab, "/mnt/newroot", "/mnt/newroot/mnt/oldroot", collect(&notes)); err != nil {
				return fmt.Errorf("pivot: %w", err)
			}
			if got := readWhich(); got != "new" {
				return fmt.Errorf("after pivot /etc/which = %q, want new", got)
			}
			// A child started now runs in the new root.
			cmd := exec.Command("/bin/busybox", "cat", "/etc/which")
			cmd.Stdin, cmd.Stderr = strings.NewReader(""), new(strings.Builder) // no /dev/null on the new root's empty /dev yet
			out, err := cmd.Output()
			if err != nil || strings.TrimSpace(string(out)) != "new" {
				return fmt.Errorf("busybox cat /etc/which in the new root: %q, %v", out, err)
			}
			if tab, err = threadTable("/mnt/oldroot/proc"); err != nil {
				return err
			}
			moves, err := MoveSubmounts(System{}, tab, "/mnt/oldroot", MoveOptions{})
			if err != nil {
				return fmt.Errorf("mount-move: %w", err)
			}
			var got []string
			for _, m := range moves {
				got = append(got, fmt.Sprintf("%s->%s created=%v done=%v [%s]", m.From, m.To, m.Created, m.Done, strings.Join(m.Children, " ")))
			}
			want := []string{
				"/mnt/oldroot/proc->/proc created=false done=true []",
				"/mnt/oldroot/dev->/dev created=false done=true [/dev/shm]",
				"/mnt/oldroot/run->/run created=false done=true [/run/user/0]",
				"/mnt/oldroot/var/log->/var/log created=false done=true []",
				"/mnt/oldroot/srv/data->/srv/data created=true done=true []",
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("moves:\n got %q\nwant %q", got, want)
			}
			if tab, err = threadTable("/proc"); err != nil {
				return err
			}
			if err := expectLayout(tab, newRdev, "/mnt/oldroot", oldRdev, submounts); err != nil {
				return fmt.Errorf("after pivot and mount-move: %w", err)
			}

			// Rollback: pivot back, then the same move with roles swapped.
			if err := PivotBack(System{}, tab, "/mnt/oldroot", "/mnt/newroot", nil); err != nil {
				return fmt.Errorf("pivot back: %w", err)
			}
			if got := readWhich(); got != "old" {
				return fmt.Errorf("after pivot back /etc/which = %q, want old", got)
			}
			if tab, err = threadTable("/mnt/newroot/proc"); err != nil {
				return err
			}
			if moves, err = MoveSubmounts(System{}, tab, "/mnt/newroot", MoveOptions{}); err != nil {
				return fmt.Errorf("mount-move back: %w", err)
			}
			if len(moves) != 5 {
				return fmt.Errorf("moved back %d mounts, want 5: %+v", len(moves), moves)
			}
			if tab, err = threadTable("/proc"); err != nil {
				return err
			}
			if err := expectLayout(tab, oldRdev, "/mnt/newroot", newRdev, submounts); err != nil {
				return fmt.Errorf("after rollback: %w", err)
			}
			return nil
		}()
		if err != nil {
			t.Error(err)
		}
	})
	if len(notes) != 3 || !strings.HasPrefix(notes[0], "making / propagation private") || notes[1] != "creating /mnt/newroot/mnt/oldroot (PUTOLD did not exist)" {
		t.Errorf("notes = %q", notes)
	}
}

// pivot_root under a shared / fails with EINVAL, explained; Pivot,
// which makes / private first, succeeds on the same layout.
func TestRootPivotSharedEINVAL(t *testing.T) {
	if testing.Short() {
		t.Skip("root tier")
	}
	testutil.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	testutil.InMountNS(t, func() {
		err := func() error {
			err := mountAll([]mnt{
				{"tmpfs", root, "tmpfs"},
				{"proc", root + "/proc", "proc"},
				{"tmpfs", root + "/new", "tmpfs"},
			})
			if err != nil {
				return err
			}
			if err := os.MkdirAll(root+"/new/old", 0o755); err != nil {
				return err
			}
			if err := unix.Chroot(root); err != nil {
				return err
			}
			if err := unix.Chdir("/"); err != nil {
				return err
			}
			if err := MakeShared(System{}, "/", false); err != nil {
				return err
			}
			tab, err := threadTable("/proc")
			if err != nil {
				return err
			}
			if m, _ := tab.Containing("/"); !m.Shared() {
				return fmt.Errorf("/ is %v %v after MS_SHARED", m, m.Optional)
			}
			err = pivotRoot(System{}, tab, "/new", "/new/old")
			if !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("raw pivot_root under a shared /: %v, want EINVAL", err)
			}
			want := `pivot_root(".", "old") in /new: invalid argument: ` + WhyShared
			if err.Error() != want {
				return fmt.Errorf("error:\n got %s\nwant %s", err, want)
			}
			if err := Pivot(System{}, tab, "/new", "/new/old", nil); err != nil {
				return fmt.Errorf("Pivot after making private: %w", err)
			}
			// proc stayed with the old root.
			if tab, err = mountinfo.Read("/old/proc", "thread-self"); err != nil {
				return err
			}
			if m, _ := tab.Containing("/old"); m.Point != "/old" || m.FSType != "tmpfs" {
				return fmt.Errorf("after Pivot /old is %v, want the old tmpfs root", m)
			}
			return nil
		}()
		if err != nil {
			t.Error(err)
		}
	})
}
