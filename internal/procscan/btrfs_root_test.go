package procscan

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestBtrfsSubvolumeStats holds two files with the same inode number,
// one in a btrfs filesystem's top level and one in a subvolume, reached
// through one mount: each descriptor must carry its own file's stat (the
// subvolumes have st_devs of their own), on the BPF path and on /proc.
func TestBtrfsSubvolumeStats(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.btrfs", "btrfs", "sh", "sleep")
	dir := t.TempDir()
	img := testutil.Image(t, dir, "fs.img", 256<<20)
	testutil.Run(t, "mkfs.btrfs", "-q", "-f", img)
	dev := testutil.Loop(t, img)
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.InMountNS(t, func() {
		if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
			t.Errorf("mount %s: %v", dev, err)
			return
		}
		testutil.Run(t, "btrfs", "-q", "subvolume", "create", filepath.Join(mnt, "sub"))
		top, sub := filepath.Join(mnt, "f"), filepath.Join(mnt, "sub", "g")
		for _, p := range []string{top, sub} {
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Error(err)
				return
			}
		}
		var st1, st2 unix.Stat_t
		unix.Stat(top, &st1)
		unix.Stat(sub, &st2)
		if st1.Ino != st2.Ino || st1.Dev == st2.Dev {
			t.Skipf("inodes %d and %d, devices %d and %d: no shared inode number to test", st1.Ino, st2.Ino, st1.Dev, st2.Dev)
		}
		cmd := exec.Command("sh", "-c", "exec 3<"+top+" 4<"+sub+" sleep 3600")
		if err := cmd.Start(); err != nil {
			t.Error(err)
			return
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		if !testutil.WaitExec(t, cmd.Process.Pid, "sleep", func(l string) bool { return filepath.Base(l) == "sleep" }) {
			return
		}
		for _, noBPF := range []bool{false, true} {
			snap, err := Scan("/proc", Options{NoBPF: noBPF})
			if err != nil {
				t.Error(err)
				return
			}
			p := find(snap, cmd.Process.Pid)
			if p == nil {
				t.Errorf("%s scan: no process %d", snap.Source, cmd.Process.Pid)
				continue
			}
			want := map[string]uint64{top: st1.Dev, sub: st2.Dev}
			for _, f := range p.FDs {
				if w, ok := want[f.Name]; ok {
					if f.Stat == nil || f.Stat.Dev != w {
						t.Errorf("%s scan: %s stat %+v, want st_dev %d", snap.Source, f.Name, f.Stat, w)
					}
					delete(want, f.Name)
				}
			}
			if len(want) > 0 {
				t.Errorf("%s scan: descriptors of %v missing", snap.Source, want)
			}
		}
	})
}
