package swap

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// rootsChild: set in the child process the root test starts; names the
// fstype, the work directory and the two loop devices.
const rootsChild = "ROOTSWAP_TEST_ROOTS_CHILD"

// TestSwapStepsOnXFSAndBtrfsRoots runs new-uuid, mount-new, pivot and
// move-mounts for real on a loop-device root: xfs, and btrfs on
// subvolume @ with /home on @home of the same filesystem. The steps run
// in a child process of its own mount namespace, whose / is the loop
// root (pivoted into; the host's root stays below it, and the tools run
// chrooted there). After move-mounts / must be the copy (with its own
// UUID, btrfs on @), /home the copy's @home, the old root below
// /mnt/oldroot; release's unmount of the old root must then succeed.
func TestSwapStepsOnXFSAndBtrfsRoots(t *testing.T) {
	if os.Getenv(rootsChild) != "" {
		rootsChildMain(t)
		return
	}
	for _, fstype := range []string{"xfs", "btrfs"} {
		t.Run(fstype, func(t *testing.T) {
			testutil.RequireRoot(t)
			testutil.RequireTool(t, "mkfs."+fstype)
			dir := t.TempDir()
			size := int64(320 << 20)
			a := testutil.Loop(t, testutil.Image(t, dir, "old.img", size))
			b := testutil.Loop(t, testutil.Image(t, dir, "new.img", size+64<<20))
			testutil.Run(t, "mkfs."+fstype, "-q", a)
			if fstype == "btrfs" {
				top := filepath.Join(dir, "top")
				os.Mkdir(top, 0o755)
				testutil.InMountNS(t, func() {
					testutil.Run(t, "mount", a, top)
					defer unix.Unmount(top, 0)
					testutil.Run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(top, "@"))
					testutil.Run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(top, "@home"))
					os.WriteFile(filepath.Join(top, "@home", "kept"), []byte("home"), 0o644)
				})
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestSwapStepsOnXFSAndBtrfsRoots$", "-test.v")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%s,%s", rootsChild, fstype, dir, a, b))
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: unix.CLONE_NEWNS}
			out, err := cmd.CombinedOutput()
			t.Logf("child:\n%s", out)
			if err != nil || !bytes.Contains(out, []byte("--- PASS")) {
				t.Errorf("child: %v\n%s", err, out)
			}
		})
	}
}

func rootsChildMain(t *testing.T) {
	f := strings.Split(os.Getenv(rootsChild), ",")
	fstype, dir, a, b := f[0], f[1], f[2], f[3]
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("make / private", unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""))
	// The tools run chrooted into the host's root, found there now.
	tools := map[string]string{}
	for _, n := range []string{"xfs_admin", "btrfstune", "xfs_db", "xfs_growfs", "btrfs"} {
		if p, err := exec.LookPath(n); err == nil {
			tools[n] = p
		}
	}
	old := filepath.Join(dir, "old")
	os.Mkdir(old, 0o755)
	data := ""
	if fstype == "btrfs" {
		data = "subvol=@"
	}
	must("mount old root", unix.Mount(a, old, fstype, 0, data))
	for _, d := range []string{"proc", "sys", "dev", "home", "mnt/host", "mnt/newroot", "sbin"} {
		must("mkdir", os.MkdirAll(filepath.Join(old, d), 0o755))
	}
	must("init", os.WriteFile(filepath.Join(old, "sbin/init"), []byte("#!/bin/sh\n"), 0o755))
	if fstype == "btrfs" {
		must("mount /home", unix.Mount(a, filepath.Join(old, "home"), fstype, 0, "subvol=@home"))
	}
	must("proc", unix.Mount("proc", filepath.Join(old, "proc"), "proc", 0, ""))
	must("sys", unix.Mount("/sys", filepath.Join(old, "sys"), "", unix.MS_BIND|unix.MS_REC, ""))
	must("dev", unix.Mount("/dev", filepath.Join(old, "dev"), "", unix.MS_BIND|unix.MS_REC, ""))
	must("chdir", unix.Chdir(old))
	must("pivot into the loop root", unix.PivotRoot(".", "mnt/host"))
	must("chdir /", unix.Chdir("/"))

	tab, err := mountinfo.Read("/proc", "self")
	must("mountinfo", err)
	root, _ := tab.Containing("/")
	var log bytes.Buffer
	rt := &Runtime{ProcRoot: "/proc", SysRoot: "/sys", Out: &log, Mounter: mountops.System{}, Session: map[int]bool{},
		Command: func(ctx context.Context, name string, args ...string) ([]byte, error) {
			// The chrooted tools see the host's root: the copy mounted
			// at /mnt/newroot is shown to them bound inside dir.
			for i, a := range args {
				if a == "/mnt/newroot" || a == "/" {
					seen := filepath.Join(dir, "newroot")
					os.Mkdir(filepath.Join("/mnt/host", seen), 0o755)
					if err := unix.Mount(a, filepath.Join("/mnt/host", seen), "", unix.MS_BIND, ""); err != nil {
						return nil, err
					}
					defer unix.Unmount(filepath.Join("/mnt/host", seen), unix.MNT_DETACH)
					args[i] = seen
				}
			}
			c := exec.CommandContext(ctx, tools[name], args...)
			c.Args[0] = name
			c.SysProcAttr = &syscall.SysProcAttr{Chroot: "/mnt/host"}
			return c.CombinedOutput()
		}}
	r := &Report{}
	r.Root.Mount, r.Root.FSType, r.Root.Device = root, fstype, a
	r.Root.Size, r.Target.Size = devSize(t, a), devSize(t, b)
	r.checkRootFS(rt.SysRoot, tab, root)
	if len(r.Blockers) > 0 {
		t.Fatalf("blockers: %+v", r.Blockers)
	}
	if fstype == "btrfs" && (len(r.SameFS) != 1 || r.SameFS[0].Point != "/home" || !strings.Contains(r.SameFS[0].Subvol, "/@home")) {
		t.Errorf("SameFS = %+v, want /home on /@home", r.SameFS)
	}
	rt.Report = r
	s := &State{Opts: Options{Target: b, NewRoot: "/mnt/newroot", PutOld: "mnt/oldroot"}, OldRoot: root}

	// remount-ro and the copy, as the steps before do.
	must("remount ro", unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, ""))
	must("copy", copyDevice(a, b))
	before, _ := fstools.DetectPath(b)
	ctx := context.Background()
	for _, st := range []Step{&newUUID{rt}, &mountNew{rt}, &pivot{rt}, &moveMounts{rt}, &growRoot{rt}} {
		t.Logf("%s: %s", st.Name(), st.Describe(s))
		if err := st.Do(ctx, s); err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", st.Name(), err, log.String())
		}
	}
	t.Logf("log:\n%s", log.String())
	after, _ := fstools.DetectPath(b)
	if after.UUID == before.UUID || s.NewUUID != after.UUID {
		t.Errorf("UUID of the copy %s before, %s after; state says %s", before.UUID, after.UUID, s.NewUUID)
	}
	tab, err = mountinfo.Read("/proc", "self")
	must("mountinfo after", err)
	want := map[string]string{"/": b + " /", "/mnt/oldroot": a + " /"}
	if fstype == "btrfs" {
		want = map[string]string{"/": b + " /@", "/home": b + " /@home", "/mnt/oldroot": a + " /@", "/mnt/oldroot/home": a + " /@home"}
	}
	for p, w := range want {
		m, ok := tab.Containing(p)
		if got := m.Source + " " + m.Root; !ok || m.Point != p || got != w {
			t.Errorf("%s: %s, want source and root %s", p, m, w)
		}
	}
	// grow: the copy, on a larger device, is larger than the old
	// root (statfs counts neither's log, so the two compare).
	var fs, ofs unix.Statfs_t
	must("statfs /", unix.Statfs("/", &fs))
	must("statfs /mnt/oldroot", unix.Statfs("/mnt/oldroot", &ofs))
	if got, old := int64(fs.Blocks)*fs.Bsize, int64(ofs.Blocks)*ofs.Bsize; got <= old {
		t.Errorf("the copy is %d bytes after grow, the old root %d: not grown onto its %d-byte device", got, old, r.Target.Size)
	}
	if got, err := os.ReadFile("/home/kept"); fstype == "btrfs" && string(got) != "home" {
		t.Errorf("/home/kept = %q, %v: the copy's @home is not on /home", got, err)
	}
	if len(s.Remounted) != len(want)/2-1 {
		t.Errorf("Remounted = %q", s.Remounted)
	}
	// What release does: the old subvolumes go with the old root.
	unmountBelow(rt, "/mnt/oldroot", root.Dev())
	if err := unix.Unmount("/mnt/oldroot", 0); err != nil {
		t.Errorf("umount /mnt/oldroot after unmountBelow: %v (mounts: %v)", err, tab.Below("/mnt/oldroot"))
	}
}

// devSize is the size of the block device at path.
func devSize(t *testing.T, path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func copyDevice(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
