package swap_test

// Root tier: the swap on the sandbox's variants, each a shape of real
// server that once kept the old root busy or failed the swap.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/sandbox"
	"github.com/rootswap/rootswap/internal/swap"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// swapVariant plans (which must pass and name want), runs the swap and
// checks the server ends on the target with every service, the old root
// released. It returns the state after.
func swapVariant(t *testing.T, s server, want ...string) sandbox.State {
	t.Helper()
	return swapVariantWith(t, s, false, want...)
}

// swapVariantWith is swapVariant; with busyboxInit, PID 1 is busybox
// init, which cannot re-execute itself without killing every process:
// it keeps the old root's busybox mapped, so the old root is detached
// lazily (read-only, alive until the reboot), and status says so.
func swapVariantWith(t *testing.T, s server, busyboxInit bool, want ...string) sandbox.State {
	t.Helper()
	s.checkOn(s.snapshot(), s.RootDev)
	// plan with run's flags: it is run's contract.
	const flags = " --no-lifeline --confirm-timeout 0 --release-timeout 30"
	plan, code := s.sh(nil, "/usr/sbin/rootswap plan --to "+s.TargetDev+flags)
	if code != 0 {
		t.Fatalf("plan exited %d:\n%s", code, plan)
	}
	for _, w := range want {
		if !strings.Contains(plan, w) {
			t.Errorf("plan lacks %q:\n%s", w, plan)
		}
	}
	out, code := s.sh(nil, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes"+flags)
	if code != 0 {
		t.Fatalf("run exited %d:\n%s", code, out)
	}
	status, code := s.waitDone()
	if code != 0 || !strings.HasPrefix(status, "succeeded\n") {
		t.Fatalf("status exited %d:\n%s\nrun:\n%s", code, status, out)
	}
	after := s.snapshot()
	if busyboxInit {
		if after.Init.OnServerRoot {
			t.Errorf("busybox init runs from %s: it cannot re-execute, so it should still map the old root", after.Init.RunsFrom)
		}
		after.Init.Err, after.Init.OnServerRoot = "", true // checked above
		if !strings.Contains(status, "detached it lazily") {
			t.Errorf("status does not say the old root was detached lazily:\n%s", status)
		}
	} else if _, err := os.Stat("/sys/fs/ext4/" + filepath.Base(s.RootDev)); err == nil {
		t.Errorf("/sys/fs/ext4/%s still exists: the old root was not released\nstatus:\n%s", filepath.Base(s.RootDev), status)
	}
	s.checkOn(after, s.TargetDev)
	for _, m := range after.Mounts {
		if m.Dev() == rdev(t, s.RootDev) {
			t.Errorf("a mount of the old root is left: %s", m)
		}
	}
	return after
}

func rdev(t *testing.T, node string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil {
		t.Fatal(err)
	}
	return st.Rdev
}

// devOf is the st_dev of a path inside the server (seen through its root).
func (s server) devOf(p string) uint64 {
	s.t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(s.HostPath(p), &st); err != nil {
		s.t.Fatal(err)
	}
	return st.Dev
}

func (s server) cwdDev(service string) uint64 {
	s.t.Helper()
	pid, err := s.ServicePID(service)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.devOf(fmt.Sprintf("/proc/%d/cwd", pid))
}

func mountAt(t *testing.T, st sandbox.State, point string) mountinfo.Mount {
	t.Helper()
	m, ok := st.Mounts.Containing(point)
	if !ok || m.Point != point {
		t.Fatalf("nothing mounted at %s after the swap", point)
	}
	return m
}

// /srv/data of / bound on /mnt/data, a service working in it: the bind
// is re-made from the new root, not moved, and the old root is released.
func TestSwapBindMountFromRoot(t *testing.T) {
	s := start(t, sandbox.Options{Variants: sandbox.Variants{BindMount: true}})
	after := swapVariant(t, s, sandbox.BindSource+" on "+sandbox.BindPoint, "remake-binds")
	m := mountAt(t, after, sandbox.BindPoint)
	if m.Dev() != rdev(t, s.TargetDev) || m.Root != sandbox.BindSource {
		t.Errorf("%s after the swap: %s (root %s, %d:%d), want %s of %s", sandbox.BindPoint, m, m.Root, m.Major, m.Minor, sandbox.BindSource, s.TargetDev)
	}
	if got := s.cwdDev("datauser"); got != rdev(t, s.TargetDev) {
		t.Errorf("datauser works on %d:%d, want the new root", unix.Major(got), unix.Minor(got))
	}
	// Written through the bind, read from the new root's own directory.
	s.sh(nil, "echo through-the-bind > "+sandbox.BindPoint+"/new")
	if got, _ := s.sh(nil, "cat "+sandbox.BindSource+"/new"); got != "through-the-bind\n" {
		t.Errorf("%s/new = %q, want the line written through %s", sandbox.BindSource, got, sandbox.BindPoint)
	}
}

// An active swap file on /: off for the copy, on again from the new root
// with its priority.
func TestSwapSwapFileOnRoot(t *testing.T) {
	s := start(t, sandbox.Options{Variants: sandbox.Variants{SwapFile: true}})
	before, ok := s.swapArea()
	if !ok {
		t.Fatalf("%s is not active before the swap", sandbox.SwapFile)
	}
	swapVariant(t, s, "swapoff "+sandbox.SwapFile, "swapon "+sandbox.SwapFile)
	after, ok := s.swapArea()
	if !ok {
		t.Fatalf("%s is not active after the swap", sandbox.SwapFile)
	}
	// The kernel numbers areas with no priority of their own (negative)
	// as they come: only the kind of priority carries over.
	if after.Type != "file" || (after.Priority < 0) != (before.Priority < 0) || (before.Priority >= 0 && after.Priority != before.Priority) {
		t.Errorf("after the swap: %+v, want a file with the priority of %+v", after, before)
	}
	if got := s.devOf(sandbox.SwapFile); got != rdev(t, s.TargetDev) {
		t.Errorf("%s is on %d:%d, want the new root", sandbox.SwapFile, unix.Major(got), unix.Minor(got))
	}
}

// A service working inside an overlay whose layers are on /: stopped
// before the overlay is unmounted, the overlay mounted again from the
// new root's layers, the service started again inside it.
func TestSwapOverlayService(t *testing.T) {
	s := start(t, sandbox.Options{Variants: sandbox.Variants{Overlay: true}})
	after := swapVariant(t, s, "(container)", "overlay "+sandbox.OverlayPoint)
	m := mountAt(t, after, sandbox.OverlayPoint)
	if m.FSType != "overlay" {
		t.Fatalf("%s is %s, want the overlay", sandbox.OverlayPoint, m)
	}
	if got := s.devOf(sandbox.OverlayLayers + "/upper"); got != rdev(t, s.TargetDev) {
		t.Errorf("the upper layer is on %d:%d, want the new root", unix.Major(got), unix.Minor(got))
	}
	if got := s.cwdDev("container"); got != m.Dev() {
		t.Errorf("container works on %d:%d, want the overlay %d:%d", unix.Major(got), unix.Minor(got), m.Major, m.Minor)
	}
	if got, _ := s.sh(nil, "cat "+sandbox.OverlayPoint+"/image"); !strings.Contains(got, "lower layer") {
		t.Errorf("%s/image = %q, want the lower layer's file", sandbox.OverlayPoint, got)
	}
}

// Buildroot: busybox init, rcS running S??name scripts whose pidfiles
// are named by the daemon: plan finds each daemon's script by the
// pidfile or program its text names (no --kill), every daemon ends on
// the new root, and PID 1 alone keeps the old root (detached lazily).
func TestSwapBuildroot(t *testing.T) {
	s := start(t, sandbox.Options{Variants: sandbox.Variants{Buildroot: true}})
	ls, _ := s.sh(nil, "ls /etc/init.d")
	for _, w := range []string{"S01logging", "S50webserver", "rcS", "rcK"} {
		if !strings.Contains(ls, w) {
			t.Errorf("/etc/init.d lacks %s:\n%s", w, ls)
		}
	}
	swapVariantWith(t, s, true)
}

// swapArea is the server's swap file as /proc/swaps shows it inside.
func (s server) swapArea() (swap.SwapArea, bool) {
	s.t.Helper()
	text, _ := s.sh(nil, "cat /proc/swaps")
	areas, err := swap.ParseSwaps(strings.NewReader(text))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, a := range areas {
		if a.Path == sandbox.SwapFile {
			return a, true
		}
	}
	return swap.SwapArea{}, false
}

// Rollback after the new root was fully set up walks every variant back:
// the bind re-made from the old root, the swap file on from it, the
// overlay and its service back on the old layers.
func TestVariantsRollBack(t *testing.T) {
	for _, step := range []string{"remake-binds", "wait-confirm"} {
		t.Run(step, func(t *testing.T) {
			s := start(t, sandbox.Options{Variants: sandbox.Variants{BindMount: true, SwapFile: true, Overlay: true}})
			s.sh([]string{"ROOTSWAP_TEST_FAULT=" + step}, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --no-lifeline --confirm-timeout 0")
			status, code := s.waitDone()
			if code != 1 || !strings.HasPrefix(status, "rolled-back\n") {
				t.Fatalf("status exited %d, want 1 and rolled-back:\n%s", code, status)
			}
			after := s.snapshot()
			s.checkOn(after, s.RootDev)
			old := rdev(t, s.RootDev)
			if m := mountAt(t, after, sandbox.BindPoint); m.Dev() != old || m.Root != sandbox.BindSource {
				t.Errorf("%s after rollback: %s (root %s), want %s of the old root", sandbox.BindPoint, m, m.Root, sandbox.BindSource)
			}
			if _, ok := s.swapArea(); !ok || s.devOf(sandbox.SwapFile) != old {
				t.Errorf("%s is not active from the old root after rollback", sandbox.SwapFile)
			}
			m := mountAt(t, after, sandbox.OverlayPoint)
			if got := s.cwdDev("container"); m.FSType != "overlay" || got != m.Dev() {
				t.Errorf("after rollback %s is %s and container works on %d:%d", sandbox.OverlayPoint, m, unix.Major(got), unix.Minor(got))
			}
			for _, mt := range after.Mounts {
				if strings.HasPrefix(mt.Point, "/mnt/oldroot") || strings.HasPrefix(mt.Point, "/mnt/newroot") || mt.Dev() == rdev(t, s.TargetDev) {
					t.Errorf("left mounted after rollback: %s", mt)
				}
			}
		})
	}
}

// A squashfs image of / mounted read-only through a loop device, a
// service working in it (a snap): it stays mounted, its loop device is
// moved onto the new root's copy of the image, and the old root is
// released.
func TestSwapSquashfsImage(t *testing.T) {
	testutil.RequireTool(t, "mksquashfs")
	s := start(t, sandbox.Options{Variants: sandbox.Variants{Squashfs: true}})
	after := swapVariant(t, s, "reback-loops", "squashfs images of / (not unmounted)", sandbox.SquashfsPoint+" on /dev/loop")
	m := mountAt(t, after, sandbox.SquashfsPoint)
	if m.FSType != "squashfs" {
		t.Fatalf("%s after the swap: %s, want the squashfs image", sandbox.SquashfsPoint, m)
	}
	li, err := blockdev.Loop("/sys", m.Source)
	if err != nil {
		t.Fatal(err)
	}
	if li.File != sandbox.SquashfsImage || li.FileDev != rdev(t, s.TargetDev) {
		t.Errorf("%s is backed by %s on %d:%d, want %s on the new root %s", m.Source, li.File,
			unix.Major(li.FileDev), unix.Minor(li.FileDev), sandbox.SquashfsImage, s.TargetDev)
	}
	if got, _ := s.sh(nil, "cat "+sandbox.SquashfsFile); !strings.HasPrefix(got, "app 1.0") {
		t.Errorf("%s after the swap: %q", sandbox.SquashfsFile, got)
	}
	if pid, err := s.ServicePID("appuser"); err != nil || pid == 0 {
		t.Errorf("appuser is not running after the swap: %v", err)
	}
}
