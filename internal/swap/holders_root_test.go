package swap

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestHoldersOfBtrfsSubvolume: a writer on a btrfs filesystem mounted
// from subvolume @ (Fedora's, openSUSE's root) is found by the device
// mountinfo shows for the mount, on the BPF path and on /proc, although
// its file stats with the subvolume's own anonymous device.
func TestHoldersOfBtrfsSubvolume(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.btrfs", "btrfs", "sh", "sleep")
	dir := t.TempDir()
	img := testutil.Image(t, dir, "fs.img", 256<<20)
	testutil.Run(t, "mkfs.btrfs", "-q", "-f", img)
	dev := testutil.Loop(t, img)
	top, mnt := filepath.Join(dir, "top"), filepath.Join(dir, "root")
	os.Mkdir(top, 0o755)
	os.Mkdir(mnt, 0o755)
	testutil.InMountNS(t, func() {
		if err := unix.Mount(dev, top, "btrfs", 0, ""); err != nil {
			t.Errorf("mount %s: %v", dev, err)
			return
		}
		testutil.Run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(top, "@"))
		unix.Unmount(top, 0)
		if err := unix.Mount(dev, mnt, "btrfs", 0, "subvol=@"); err != nil {
			t.Errorf("mount %s subvol=@: %v", dev, err)
			return
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		tab, err := mountinfo.Read("/proc", "thread-self")
		if err != nil {
			t.Error(err)
			return
		}
		m, ok := tab.Containing(mnt)
		if !ok || m.Point != mnt {
			t.Errorf("no mount at %s: %v", mnt, m)
			return
		}
		log := filepath.Join(mnt, "log")
		var st unix.Stat_t
		os.WriteFile(log, nil, 0o644)
		unix.Stat(log, &st)
		if st.Dev == m.Dev() {
			t.Skipf("the subvolume's files stat with the mount's device %d:%d: nothing to tell apart", m.Major, m.Minor)
		}
		cmd := exec.Command("sh", "-c", "exec 3>>"+log+"; exec sleep 3600")
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		if !testutil.WaitExec(t, cmd.Process.Pid, "sleep", func(l string) bool { return filepath.Base(l) == "sleep" }) {
			return
		}
		for _, noBPF := range []bool{false, true} {
			snap, err := procscan.Scan("/proc", procscan.Options{Devs: []uint64{m.Dev()}, NoBPF: noBPF})
			if err != nil {
				t.Error(err)
				return
			}
			var got []string
			for _, h := range HoldersOf(snap, m.Dev()) {
				if h.PID == cmd.Process.Pid {
					got = h.Writes
				}
			}
			if want := "3w " + log; len(got) != 1 || got[0] != want {
				t.Errorf("%s scan: pid %d writes %q, want [%s] (mount %d:%d, file st_dev %d:%d)", snap.Source, cmd.Process.Pid, got, want,
					m.Major, m.Minor, unix.Major(st.Dev), unix.Minor(st.Dev))
			}
		}
	})
}
