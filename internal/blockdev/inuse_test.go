package blockdev

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fixtureStack is the sysfs fixture with loop2 and loop3 both backed by
// /srv/a.img, inode 12 on sda2.
func fixtureStack(t *testing.T) *Stack {
	return &Stack{SysRoot: fixtureSys(t), LoopFile: func(name string) (uint64, uint64, bool) {
		if name == "loop2" || name == "loop3" {
			return unix.Mkdev(8, 2), 12, true
		}
		return 0, 0, false
	}}
}

func blk(maj, min uint32) Node { return Node{Block: true, Rdev: unix.Mkdev(maj, min)} }

// Loop devices are resolved to their backing files and files to the
// filesystems they are on, both ways.
func TestOverlapLoopsAndFiles(t *testing.T) {
	img := Node{Path: "/srv/a.img", Dev: unix.Mkdev(8, 2), Ino: 12}
	other := Node{Path: "/srv/c.img", Dev: unix.Mkdev(8, 2), Ino: 13}
	inImg := Node{Path: "/mnt/a/x", Dev: unix.Mkdev(7, 2), Ino: 5} // on the filesystem of loop2
	tests := []struct {
		a, b    Node
		want    bool
		wantWhy string
	}{
		{blk(7, 2), blk(8, 2), true, "loop2 is backed by /srv/a.img, /srv/a.img is on sda2"},
		{blk(8, 0), blk(7, 2), true, "loop2 is backed by /srv/a.img, /srv/a.img is on sda2, sda2 is a partition of sda"},
		{blk(7, 2), blk(8, 1), false, ""},
		{blk(7, 2), blk(7, 3), true, "loop2 is backed by /srv/a.img, loop3 is backed by /srv/a.img"},
		{blk(7, 2), blk(7, 0), false, ""},
		{img, blk(7, 3), true, "loop3 is backed by /srv/a.img"},
		{blk(7, 2), img, true, "loop2 is backed by /srv/a.img"},
		{other, blk(7, 2), false, ""},
		{other, blk(8, 2), true, "/srv/c.img is on sda2"},
		{other, img, false, ""},
		{img, img, true, "/srv/a.img and /srv/a.img are the same file"},
		{inImg, img, true, "/mnt/a/x is on loop2, loop2 is backed by /srv/a.img"},
		{inImg, other, false, ""},
		{blk(8, 0), img, true, "/srv/a.img is on sda2, sda2 is a partition of sda"},
		{blk(253, 0), img, false, ""}, // both on sda2, side by side
	}
	for _, tt := range tests {
		got, why := fixtureStack(t).Overlap(tt.a, tt.b)
		if got != tt.want || why != tt.wantWhy {
			t.Errorf("Overlap(%+v, %+v) = %v, %q; want %v, %q", tt.a, tt.b, got, why, tt.want, tt.wantWhy)
		}
	}
}

// fixtureUse builds /proc (swaps; the own mount table and another
// namespace's) and a root with /etc/fstab and udev links.
func fixtureUse(t *testing.T) *Stack {
	s := fixtureStack(t)
	s.ProcRoot, s.Root = t.TempDir(), t.TempDir()
	write := func(root, p, text string) {
		p = filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(root, p, target string) {
		p = filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	write(s.ProcRoot, "swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/loop3                              partition\t1020\t\t0\t\t-2\n")
	write(s.ProcRoot, "self/mountinfo", "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/sys-root rw\n"+
		"30 22 7:0 / /mnt/zero rw,relatime - ext4 /dev/loop0 rw\n")
	link(s.ProcRoot, "self/ns/mnt", "mnt:[4026531841]")
	write(s.ProcRoot, "100/task/100/mountinfo", "300 299 7:2 / /mnt/img rw,relatime - ext4 /dev/loop2 rw\n")
	write(s.ProcRoot, "100/task/100/comm", "sleep\n")
	link(s.ProcRoot, "100/task/100/ns/mnt", "mnt:[4026532201]")
	write(s.ProcRoot, "101/task/101/mountinfo", "22 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/sys-root rw\n")
	link(s.ProcRoot, "101/task/101/ns/mnt", "mnt:[4026531841]") // the caller's: not read again
	write(s.Root, "etc/fstab", "# <fs> <dir>\n/dev/mapper/sys-root / ext4 defaults 0 1\nUUID=b007 /boot ext4 defaults,noauto 0 2\n")
	write(s.Root, "dev/sda1", "")
	link(s.Root, "dev/disk/by-uuid/b007", "../../sda1")
	return s
}

// Every way a device can be in use is found on the device, on what is
// stored on it, and through a file's loop devices, in every namespace.
func TestInUse(t *testing.T) {
	img := Node{Path: "/srv/a.img", Dev: unix.Mkdev(8, 2), Ino: 12}
	tests := []struct {
		name string
		n    Node
		self bool
		want []string
	}{
		{"mounted in another namespace", blk(7, 2), true, []string{
			"/dev/loop2 is mounted at /mnt/img (in the mount namespace of pid 100, sleep)",
			"/dev/loop3 is an active swap area", // on the same file
		}},
		{"a file's loop devices", img, false, []string{
			"/dev/loop2 is mounted at /mnt/img (in the mount namespace of pid 100, sleep)",
			"/dev/loop3 is an active swap area",
		}},
		{"swap on a loop on the same file", blk(7, 3), true, []string{
			"/dev/loop2 is mounted at /mnt/img (in the mount namespace of pid 100, sleep)",
			"/dev/loop3 is an active swap area",
		}},
		{"an LVM physical volume", blk(8, 2), true, []string{
			"/dev/sda2 is a physical volume of an active LVM volume group (sys-root is on it)",
			"/dev/dm-0 is mounted at /",
		}},
		{"the disk of an md member", blk(8, 16), true, []string{
			"/dev/sdb1 is a member of the active md array md0",
			"/dev/md0 is held by dm-1 data",
		}},
		{"/boot in fstab", blk(8, 0), true, []string{
			"/dev/sda2 is a physical volume of an active LVM volume group (sys-root is on it)",
			"/dev/dm-0 is mounted at /",
			"/dev/sda1 holds /boot (/etc/fstab: UUID=b007)",
		}},
		{"own mount counted", blk(7, 0), true, []string{"/dev/loop0 is mounted at /mnt/zero"}},
		{"own mount left out", blk(7, 0), false, nil},
		{"free", blk(7, 1), true, nil},
	}
	for _, tt := range tests {
		got, err := fixtureUse(t).InUse(tt.n, tt.self)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s: InUse(%+v, %v) =\n%s\nwant\n%s", tt.name, tt.n, tt.self, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}
