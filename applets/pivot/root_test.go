package pivot

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/testutil"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// rootswapBin is $ROOTSWAP_BIN (make test sets it), else a static build
// made once, only when a test needs it, so the tier-1 tests of this
// package do not depend on the whole tree compiling.
func rootswapBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ROOTSWAP_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rootswap-pivot-test")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "rootswap")
		cmd := exec.Command("go", "build", "-o", builtBin, "github.com/rootswap/rootswap")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// The binary, as an admin runs it: a process chrooted into the "old
// root" (a tmpfs with proc and tmpfs submounts, the new root's tmpfs at
// /mnt/newroot) runs `rootswap pivot`, a second one `rootswap mount-move`
// (which finds proc below /mnt/oldroot), then the rollback the same way.
// The test thread, in its private namespace but outside the chroot,
// checks the mount table after each step.
func TestRootBinaryPivotMountMoveRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("root tier")
	}
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "chroot")
	bin := rootswapBin(t)
	self, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	testutil.InMountNS(t, func() {
		if err := scenario(t, root, self); err != nil {
			t.Error(err)
		}
	})
}

func scenario(t *testing.T, root string, self []byte) error {
	mount := func(src, dst, fstype string) error {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(src, dst, fstype, 0, ""); err != nil {
			return fmt.Errorf("mount %s on %s: %w", fstype, dst, err)
		}
		return nil
	}
	tree := func(dir, which string) error {
		for _, d := range []string{"bin", "etc", "proc", "dev", "run", "mnt/newroot"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "etc/which"), []byte(which), 0o644); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "bin/rootswap"), self, 0o755)
	}
	if err := mount("old", root, "tmpfs"); err != nil {
		return err
	}
	if err := tree(root, "old"); err != nil {
		return err
	}
	for _, m := range [][3]string{
		{"proc", root + "/proc", "proc"},
		{"devtmp", root + "/dev", "tmpfs"},
		{"shm", root + "/dev/shm", "tmpfs"},
		{"run", root + "/run", "tmpfs"},
		{"new", root + "/mnt/newroot", "tmpfs"},
	} {
		if err := mount(m[0], m[1], m[2]); err != nil {
			return err
		}
	}
	if err := tree(root+"/mnt/newroot", "new"); err != nil {
		return err
	}

	steps := []struct {
		args     []string
		wantOut  []string
		rootFrom string // source of the mount at root afterwards
		other    string // where the other root sits, relative to root
	}{
		{[]string{"pivot", "/mnt/newroot"}, []string{"making / propagation private", "next: rootswap mount-move /mnt/oldroot"}, "new", "/mnt/oldroot"},
		{[]string{"mount-move", "/mnt/oldroot"}, []string{"reading the mount table from /mnt/oldroot/proc", "moved /mnt/oldroot/dev -> /dev (tmpfs, with /dev/shm)", "moved /mnt/oldroot/run -> /run (tmpfs)"}, "new", "/mnt/oldroot"},
		{[]string{"pivot", "/mnt/oldroot", "/mnt/oldroot/mnt/newroot"}, []string{"next: rootswap mount-move /mnt/newroot"}, "old", "/mnt/newroot"},
		{[]string{"mount-move", "/mnt/newroot"}, []string{"moved /mnt/newroot/proc -> /proc (proc)"}, "old", "/mnt/newroot"},
	}
	for i, st := range steps {
		cmd := exec.Command("chroot", append([]string{root, "/bin/rootswap"}, st.args...)...)
		out, err := cmd.CombinedOutput()
		t.Logf("rootswap %s\n%s", strings.Join(st.args, " "), out)
		if err != nil {
			return fmt.Errorf("rootswap %s: %v\n%s", strings.Join(st.args, " "), err, out)
		}
		for _, w := range st.wantOut {
			if !strings.Contains(string(out), w) {
				return fmt.Errorf("rootswap %s said:\n%s\nwant a line with %q", strings.Join(st.args, " "), out, w)
			}
		}
		tab, err := mountinfo.Read("/proc", "thread-self")
		if err != nil {
			return err
		}
		var errs []error
		if m, _ := tab.Containing(root); m.Point != root || m.Source != st.rootFrom {
			errs = append(errs, fmt.Errorf("root is %v, want the %q tmpfs", m, st.rootFrom))
		}
		moved := i == 1 || i == 3
		for _, p := range []string{"/proc", "/dev", "/dev/shm", "/run"} {
			at := root + p
			if !moved {
				at = root + st.other + p
			}
			if m, _ := tab.Containing(at); m.Point != at {
				errs = append(errs, fmt.Errorf("no mount at %s (%v)", at, m))
			}
		}
		if moved {
			if below := tab.Below(root + st.other); len(below) != 0 {
				errs = append(errs, fmt.Errorf("left below %s: %v", st.other, below))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("after rootswap %s:\n%s\n%w", strings.Join(st.args, " "), out, err)
		}
	}
	return nil
}
