package filecopy

// Root tier: loop images holding every kind of file a root has, copied
// to ext4, xfs and btrfs, compared attribute by attribute.

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// inMountNS runs the test again in a private mount namespace of its own
// (every thread of the copy must see the test's mounts); true in that
// run, false in the one that started it.
func inMountNS(t *testing.T) bool {
	testutil.RequireRoot(t)
	if os.Getenv("FILECOPY_IN_NS") == "1" {
		return true
	}
	testutil.RequireTool(t, "unshare")
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v")
	cmd.Env = append(os.Environ(), "FILECOPY_IN_NS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("%s", out)
	return false
}

// mkfs makes a filesystem of type typ on a loop image and mounts it.
func mkfs(t *testing.T, typ, dir string, size int64) string {
	testutil.RequireTool(t, "mkfs."+typ)
	img := testutil.Image(t, t.TempDir(), typ+".img", size)
	force := "-F"
	if typ != "ext4" {
		force = "-f"
	}
	testutil.Run(t, "mkfs."+typ, "-q", force, img)
	dev := testutil.Loop(t, img)
	must(t, os.MkdirAll(dir, 0o755))
	must(t, unix.Mount(dev, dir, typ, 0, ""))
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// acl is a POSIX ACL xattr: user::rw- user:1000:r-- group::r-- mask::r-- other::---.
func acl() []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][3]uint32{{1, 6, ^uint32(0)}, {2, 4, 1000}, {4, 4, ^uint32(0)}, {0x10, 4, ^uint32(0)}, {0x20, 0, ^uint32(0)}} {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return b
}

// populateRoot adds what only root can make: owners, set-id bits, device
// nodes, a socket, every xattr namespace, ACLs, the immutable and
// append-only flags, and a filesystem mounted inside.
func populateRoot(t *testing.T, src string) {
	populatePlain(t, src)
	write(t, src+"/usr/bin/ping", "ELF")
	must(t, os.Chown(src+"/usr/bin/ping", 0, 0))
	// security.capability v2: cap_net_raw permitted and effective.
	capv := []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	capv[0] = 1 // VFS_CAP_FLAGS_EFFECTIVE
	must(t, unix.Setxattr(src+"/usr/bin/ping", "security.capability", capv, 0))
	write(t, src+"/usr/bin/sudo", "ELF")
	must(t, os.Chown(src+"/usr/bin/sudo", 0, 50))
	must(t, unix.Chmod(src+"/usr/bin/sudo", 0o4755))
	write(t, src+"/home/u/file", "mine")
	must(t, os.Lchown(src+"/home/u/file", 1234, 5678))
	must(t, os.Lchown(src+"/home/u", 1234, 5678))
	must(t, os.Symlink("file", src+"/home/u/link"))
	must(t, os.Lchown(src+"/home/u/link", 1234, 5678))
	must(t, unix.Setxattr(src+"/home/u/file", "user.mime", []byte("text/plain"), 0))
	must(t, unix.Setxattr(src+"/home/u/file", "trusted.t", []byte{0, 1, 2}, 0))
	must(t, unix.Setxattr(src+"/home/u/file", "security.selinux", []byte("system_u:object_r:user_home_t:s0\x00"), 0))
	must(t, unix.Lsetxattr(src+"/home/u/link", "security.selinux", []byte("system_u:object_r:user_home_t:s0\x00"), 0))
	must(t, unix.Setxattr(src+"/home/u/file", "system.posix_acl_access", acl(), 0))
	must(t, unix.Setxattr(src+"/home/u", "system.posix_acl_default", acl(), 0))
	must(t, os.MkdirAll(src+"/dev", 0o755))
	must(t, unix.Mknod(src+"/dev/null", unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(src+"/dev/loop9", unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))))
	must(t, os.Link(src+"/dev/null", src+"/dev/null-link"))
	l, err := net.Listen("unix", src+"/dev/log")
	must(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	write(t, src+"/var/log/wtmp", "append")
	write(t, src+"/etc/locked", "immutable")
	write(t, src+"/etc/ro/inside", "in an immutable dir")
	// A hard link to an immutable file: link(2) refuses one made after.
	must(t, os.Link(src+"/etc/locked", src+"/etc/locked-too"))
	must(t, setFlags(src+"/var/log/wtmp", 0x20))
	must(t, setFlags(src+"/etc/locked", 0x10|0x40))
	must(t, setFlags(src+"/etc/ro", 0x10))
	// A filesystem mounted inside: only its mount point is copied.
	must(t, os.MkdirAll(src+"/proc", 0o555))
	must(t, unix.Mount("tmpfs", src+"/proc", "tmpfs", 0, ""))
	write(t, src+"/proc/not-copied", "x")
	ts := []unix.Timespec{{Sec: 1_400_000_000, Nsec: 1}, {Sec: 1_300_000_000, Nsec: 999999999}}
	for _, p := range []string{"/home/u/file", "/home/u/link", "/dev/null", "/dev/log", "/home/u", "/usr/bin", "/dev"} {
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, src+p, ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

func TestCopyEveryKind(t *testing.T) {
	if !inMountNS(t) {
		return
	}
	base := t.TempDir()
	src := mkfs(t, "ext4", base+"/src", 64<<20)
	populateRoot(t, src)
	for _, typ := range []string{"ext4", "xfs", "btrfs"} {
		t.Run(typ, func(t *testing.T) {
			dst := mkfs(t, typ, filepath.Join(base, typ), 320<<20)
			st, err := Copy(context.Background(), dst, src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %v", typ, st)
			must(t, unix.Syncfs(mustOpen(t, dst)))
			same(t, src, dst, Content|Atime)
			if _, err := os.Lstat(dst + "/proc/not-copied"); err == nil {
				t.Errorf("copied a file of the tmpfs mounted at /proc")
			}
			if _, err := os.Lstat(dst + "/proc"); err != nil {
				t.Errorf("the mount point /proc is missing: %v", err)
			}
			// A second run over it: a delta that finds nothing to do.
			st, err = Copy(context.Background(), dst, src, Options{Delta: true})
			if err != nil || st.Files+st.Removed != 0 {
				t.Errorf("delta over an equal copy: %v, %v", st, err)
			}
		})
	}
}

func mustOpen(t *testing.T, p string) int {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// A btrfs source with a subvolume below its root (not mounted: snapper's
// /.snapshots, docker's subvolumes): same mount, own st_dev and inode
// numbers that repeat the parent's. The subvolume's files are copied,
// and hard links pair by device and inode, not by inode number alone.
func TestCopyBtrfsSubvolume(t *testing.T) {
	if !inMountNS(t) {
		return
	}
	testutil.RequireTool(t, "btrfs")
	base := t.TempDir()
	src := mkfs(t, "btrfs", base+"/src", 320<<20)
	testutil.Run(t, "btrfs", "subvolume", "create", src+"/sub")
	write(t, src+"/a", "top")
	must(t, os.Link(src+"/a", src+"/a2"))
	write(t, src+"/sub/b", "in the subvolume")
	must(t, os.Link(src+"/sub/b", src+"/sub/b2"))
	var sa, sb unix.Stat_t
	must(t, unix.Stat(src+"/a", &sa))
	must(t, unix.Stat(src+"/sub/b", &sb))
	t.Logf("inode of /a %d (dev %d), of /sub/b %d (dev %d)", sa.Ino, sa.Dev, sb.Ino, sb.Dev)
	dst := mkfs(t, "ext4", base+"/dst", 64<<20)
	if _, err := Copy(context.Background(), dst, src, Options{}); err != nil {
		t.Fatal(err)
	}
	same(t, src, dst, Content)
	if b, err := os.ReadFile(dst + "/sub/b2"); err != nil || string(b) != "in the subvolume" {
		t.Errorf("/sub/b2 in the copy: %q, %v", b, err)
	}
}

// A hole after a long run of data stays a hole on xfs: written past
// the end, the data before it would make xfs preallocate over it.
func TestCopySparseToXFS(t *testing.T) {
	if !inMountNS(t) {
		return
	}
	base := t.TempDir()
	src := mkfs(t, "ext4", base+"/src", 64<<20)
	f, err := os.Create(src + "/big")
	must(t, err)
	data := make([]byte, 10<<20)
	for i := range data {
		data[i] = byte(i%251 + 1)
	}
	_, err = f.WriteAt(data, 0)
	must(t, err)
	_, err = f.WriteAt(data[:8<<20], 11<<20) // a 1 MiB hole at 10 MiB
	must(t, err)
	must(t, f.Close())
	dst := mkfs(t, "xfs", base+"/xfs", 320<<20)
	if _, err := Copy(context.Background(), dst, src, Options{}); err != nil {
		t.Fatal(err)
	}
	must(t, unix.Syncfs(mustOpen(t, dst)))
	same(t, src, dst, Content)
	var st unix.Stat_t
	must(t, unix.Stat(dst+"/big", &st))
	if got, want := st.Blocks*512, int64(18<<20); got > want {
		t.Errorf("the copy takes %d bytes, want at most the %d of data", got, want)
	}
}
