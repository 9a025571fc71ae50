package mountops

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

func TestRootBinds(t *testing.T) {
	tab := readTable(t, "binds-host.mountinfo")
	root, _ := tab.Containing("/")
	got := RootBinds(tab, root)
	want := []Bind{
		{Point: "/data/shared", Source: "/opt/shared", Options: "rw,nosuid,nodev,relatime", Propagation: "shared", PeerOfRoot: true},
		{Point: "/srv/rootbind", Source: "/", Options: "ro,relatime", Propagation: "private"},
		{Point: "/var/spool/postfix/etc/resolv.conf", Source: "/etc/resolv.conf", Options: "rw,relatime", Propagation: "slave"},
		{Point: "/mnt/gone", Source: "/home/gone//deleted", Options: "rw,relatime", Propagation: "unbindable"},
		{Point: "/mnt/shared-own", Source: "/srv/x", Options: "rw,noexec,relatime", Propagation: "slave,shared"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RootBinds:\n got %+v\nwant %+v", got, want)
	}
}

// A root on a btrfs subvolume: binds are named inside it, and another
// subvolume of the same device is not a bind of the root.
func TestRootBindsSubvolume(t *testing.T) {
	tab := mustParse(t, `29 1 0:30 /@ / rw,relatime shared:1 - btrfs /dev/sda2 rw,subvol=/@
30 29 0:30 /@home /home rw,relatime shared:2 - btrfs /dev/sda2 rw,subvol=/@home
31 29 0:30 /@/opt/x /data/x rw,relatime shared:1 - btrfs /dev/sda2 rw,subvol=/@
32 29 0:30 /@ /mnt/root rw,relatime shared:1 - btrfs /dev/sda2 rw,subvol=/@
`)
	root, _ := tab.Containing("/")
	var got []string
	for _, b := range RootBinds(tab, root) {
		got = append(got, b.Source+" on "+b.Point)
	}
	want := []string{"/opt/x on /data/x", "/ on /mnt/root"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RootBinds = %q, want %q", got, want)
	}
}

// After move-mounts: the old binds sit at their points; each is moved
// aside, re-made from the new root with its options, the mount that sat
// on it is moved onto the new one, and the old ones go, children first.
func TestRemakeCalls(t *testing.T) {
	tab := readTable(t, "binds-after-move.mountinfo")
	binds := []Bind{
		{Point: "/data/shared", Source: "/opt/shared", Options: "rw,nosuid,nodev,relatime", Propagation: "shared", PeerOfRoot: true},
		{Point: "/srv/rootbind", Source: "/", Options: "ro,relatime", Propagation: "private"},
		{Point: "/mnt/gone", Source: "/x", Options: "rw", Propagation: "private"},
	}
	f := &Fake{Fail: func(c Call) error {
		if c.Op == "umount2" && c.Target == "/run/rootswap/binds/0" && c.Flags == 0 {
			return unix.EBUSY // a process works in it
		}
		return nil
	}}
	var notes []string
	got, err := Remake(f, tab, binds, RemakeOptions{SourceRoot: "/", Leaving: unix.Mkdev(8, 2), Staging: "/run/rootswap/binds", Logf: collect(&notes)})
	if err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, []string{
		`mkdir("/run/rootswap/binds", 0700)`,
		`mount("rootswap-binds", "/run/rootswap/binds", "tmpfs", MS_NOSUID|MS_NODEV, "mode=700")`,
		`mount("", "/run/rootswap/binds", "", MS_PRIVATE, "")`,
		`mkdir("/run/rootswap/binds/0", 0700)`,
		`mount("", "/", "", MS_PRIVATE, "")`,
		`mount("/data/shared", "/run/rootswap/binds/0", "", MS_MOVE, "")`,
		`mount("", "/", "", MS_SHARED, "")`,
		`mkdir("/run/rootswap/binds/1", 0700)`,
		`mount("", "/srv", "", MS_PRIVATE, "")`,
		`mount("/srv/rootbind", "/run/rootswap/binds/1", "", MS_MOVE, "")`,
		`mount("", "/srv", "", MS_SHARED, "")`,
		`mount("", "/run/rootswap/binds/0", "", MS_PRIVATE, "")`,
		`mount("/opt/shared", "/data/shared", "", MS_BIND, "")`,
		`mount("", "/data/shared", "", MS_NOSUID|MS_NODEV|MS_REMOUNT|MS_BIND|MS_RELATIME, "")`,
		`mount("/run/rootswap/binds/0/tmp", "/data/shared/tmp", "", MS_MOVE, "")`,
		`mount("", "/run/rootswap/binds/1", "", MS_PRIVATE, "")`,
		`mount("/", "/srv/rootbind", "", MS_BIND, "")`,
		`mount("", "/srv/rootbind", "", MS_RDONLY|MS_REMOUNT|MS_BIND|MS_RELATIME, "")`,
		`mount("", "/srv/rootbind", "", MS_PRIVATE, "")`,
		`umount2("/run/rootswap/binds/1", 0)`,
		`umount2("/run/rootswap/binds/0", 0)`,
		`umount2("/run/rootswap/binds/0", MNT_DETACH)`,
		`umount2("/run/rootswap/binds", 0)`,
	})
	if !got[0].Made || !got[0].Lazy || !reflect.DeepEqual(got[0].Moved, []string{"/data/shared/tmp"}) || got[0].Old.ID != 41 {
		t.Errorf("/data/shared: %+v", got[0])
	}
	if !got[1].Made || got[1].Lazy {
		t.Errorf("/srv/rootbind: %+v", got[1])
	}
	if got[2].Made || got[2].Skipped == "" {
		t.Errorf("/mnt/gone (not mounted): %+v, want skipped", got[2])
	}
	if len(notes) == 0 {
		t.Error("nothing logged")
	}
}

// A bind nested in another is carried aside with it, and re-made on the
// new parent bind.
func TestRemakeNested(t *testing.T) {
	tab := mustParse(t, `29 1 8:17 / / rw,relatime - ext4 /dev/sdb1 rw
40 29 8:2 / /mnt/oldroot ro,relatime - ext4 /dev/sda2 ro
41 29 8:2 /opt/a /a rw,relatime - ext4 /dev/sda2 rw
42 41 8:2 /opt/b /a/b rw,relatime - ext4 /dev/sda2 rw
43 42 0:50 / /a/b/t rw,relatime - tmpfs tmpfs rw
`)
	binds := []Bind{
		{Point: "/a", Source: "/opt/a", Options: "rw,relatime", Propagation: "private"},
		{Point: "/a/b", Source: "/opt/b", Options: "rw,relatime", Propagation: "private"},
	}
	f := &Fake{}
	if _, err := Remake(f, tab, binds, RemakeOptions{SourceRoot: "/", Leaving: unix.Mkdev(8, 2), Staging: "/st"}); err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, []string{
		`mkdir("/st", 0700)`,
		`mount("rootswap-binds", "/st", "tmpfs", MS_NOSUID|MS_NODEV, "mode=700")`,
		`mount("", "/st", "", MS_PRIVATE, "")`,
		`mkdir("/st/0", 0700)`,
		`mount("/a", "/st/0", "", MS_MOVE, "")`,
		`mount("", "/st/0", "", MS_PRIVATE, "")`,
		`mount("/opt/a", "/a", "", MS_BIND, "")`,
		`mount("", "/a", "", MS_REMOUNT|MS_BIND|MS_RELATIME, "")`,
		`mount("", "/a", "", MS_PRIVATE, "")`,
		`mount("", "/st/0/b", "", MS_PRIVATE, "")`,
		`mount("/opt/b", "/a/b", "", MS_BIND, "")`,
		`mount("", "/a/b", "", MS_REMOUNT|MS_BIND|MS_RELATIME, "")`,
		`mount("/st/0/b/t", "/a/b/t", "", MS_MOVE, "")`,
		`mount("", "/a/b", "", MS_PRIVATE, "")`,
		`umount2("/st/0/b", 0)`,
		`umount2("/st/0", 0)`,
		`umount2("/st", 0)`,
	})
}

// Rolling back: the new root's binds are replaced by binds from the old
// root at its place.
func TestRemakeBack(t *testing.T) {
	tab := mustParse(t, `29 1 8:17 / / rw,relatime - ext4 /dev/sdb1 rw
40 29 8:2 / /mnt/oldroot ro,relatime - ext4 /dev/sda2 ro
41 29 8:17 /opt/a /a rw,relatime - ext4 /dev/sdb1 rw
`)
	f := &Fake{}
	got, err := Remake(f, tab, []Bind{{Point: "/a", Source: "/opt/a", Options: "rw,relatime", Propagation: "unbindable"}},
		RemakeOptions{SourceRoot: "/mnt/oldroot", Leaving: unix.Mkdev(8, 17), Staging: "/st"})
	if err != nil || !got[0].Made {
		t.Fatalf("Remake back: %+v, %v", got, err)
	}
	want := `mount("/mnt/oldroot/opt/a", "/a", "", MS_BIND, "")`
	if c := f.Strings(); c[6] != want || c[8] != `mount("", "/a", "", MS_UNBINDABLE, "")` {
		t.Errorf("calls:\n%q\nwant the bind from the old root and MS_UNBINDABLE", c)
	}
}

func TestOptionFlags(t *testing.T) {
	if got, want := FlagNames(OptionFlags("ro,nosuid,nodev,noexec,noatime,nodiratime,sync,dirsync,lazytime,nosymfollow")),
		"MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_SYNCHRONOUS|MS_DIRSYNC|MS_NOSYMFOLLOW|MS_NOATIME|MS_NODIRATIME|MS_LAZYTIME"; got != want {
		t.Errorf("OptionFlags = %s, want %s", got, want)
	}
	if got := OptionFlags("rw"); got != 0 {
		t.Errorf("OptionFlags(rw) = %#x, want 0", got)
	}
}

func mustParse(t *testing.T, text string) mountinfo.Table {
	t.Helper()
	tab, err := mountinfo.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}
