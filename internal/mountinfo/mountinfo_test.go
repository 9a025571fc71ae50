package mountinfo

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func load(t *testing.T, name string) Table {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func TestParseLine(t *testing.T) {
	got, err := ParseLine(`41 29 7:0 /srv/img /mnt/my\040disk rw,relatime shared:18 master:3 - ext4 /dev/loop0 rw,errors=remount-ro`)
	if err != nil {
		t.Fatal(err)
	}
	want := Mount{ID: 41, Parent: 29, Major: 7, Minor: 0, Root: "/srv/img", Point: "/mnt/my disk",
		Options: "rw,relatime", Optional: []string{"shared:18", "master:3"}, FSType: "ext4",
		Source: "/dev/loop0", SuperOptions: "rw,errors=remount-ro"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseLine:\n got %#v\nwant %#v", got, want)
	}
	if got.PeerGroup() != 18 || got.Master() != 3 || !got.Shared() || got.ReadOnly() {
		t.Errorf("PeerGroup %d Master %d Shared %v ReadOnly %v", got.PeerGroup(), got.Master(), got.Shared(), got.ReadOnly())
	}
}

func TestParseFile(t *testing.T) {
	tab := load(t, "debian-systemd.mountinfo")
	if got, want := len(tab), 22; got != want {
		t.Fatalf("%d mounts, want %d", got, want)
	}
	// Order is the file's.
	if tab[0].Point != "/sys" || tab[5].Point != "/" {
		t.Errorf("order lost: %s, %s", tab[0].Point, tab[5].Point)
	}
	m, _ := tab.ByID(42)
	if got, want := m.Point, "/mnt/my disk/tab\there\\x"; got != want {
		t.Errorf("escaped point = %q, want %q", got, want)
	}
	if got, want := m.Source, "tmp fs"; got != want {
		t.Errorf("escaped source = %q, want %q", got, want)
	}
	if got, want := m.Optional, []string{"unbindable"}; !reflect.DeepEqual(got, want) {
		t.Errorf("optional = %q, want %q", got, want)
	}
	if m.Shared() {
		t.Error("unbindable mount reported shared")
	}
}

func TestParseErrors(t *testing.T) {
	for _, line := range []string{
		"",
		"1 2 3:4 / /",
		"1 2 3:4 / / rw shared:1 ext4 /dev/x rw", // no separator
		"x 2 3:4 / / rw - ext4 /dev/x rw",        // bad id
		"1 2 34 / / rw - ext4 /dev/x rw",         // bad dev
		"1 2 3:4 / / rw -",                       // nothing after separator
		"1 2 3:99999999999 / / rw - ext4 /dev/x rw", // minor overflows
	} {
		if _, err := ParseLine(line); err == nil {
			t.Errorf("ParseLine(%q): no error", line)
		}
	}
	_, err := Parse(strings.NewReader("29 1 8:2 / / rw - ext3 /dev/sda2 rw\nbroken\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Parse error = %v, want one naming line 2", err)
	}
}

func TestContaining(t *testing.T) {
	tab := load(t, "debian-systemd.mountinfo")
	for _, tc := range []struct{ path, want string }{
		{"/", "/dev/sda2"},
		{"/etc/fstab", "/dev/sda2"},
		{"/proc/sys/fs/binfmt_misc/status", "systemd-1"},
		{"/proc/1", "proc"},
		{"/dev/pts/0", "devpts"},
		{"/devices", "/dev/sda2"}, // not under /dev
		{"/boot/grub", "over"},    // stacked: the top mount wins
		{"/mnt/my disk/a", "/dev/loop0"},
		{"/run/user/0/x/../y", "tmpfs"}, // cleaned
	} {
		m, ok := tab.Containing(tc.path)
		if !ok || m.Source != tc.want {
			t.Errorf("Containing(%q) = %q %v, want %q", tc.path, m.Source, ok, tc.want)
		}
	}
	if _, ok := tab.Containing("relative"); ok {
		t.Error("Containing(relative) matched")
	}
}

func points(tab Table) []string {
	var out []string
	for _, m := range tab {
		out = append(out, m.Point)
	}
	return out
}

func TestBelow(t *testing.T) {
	tab := load(t, "gentoo-after-pivot.mountinfo")
	got := points(tab.Below("/mnt/oldroot"))
	want := []string{
		"/mnt/oldroot/proc", "/mnt/oldroot/proc/sys/fs/binfmt_misc",
		"/mnt/oldroot/dev", "/mnt/oldroot/dev/pts", "/mnt/oldroot/dev/shm",
		"/mnt/oldroot/sys", "/mnt/oldroot/lib64/rc/init.d",
		"/mnt/oldroot/var/distfiles", "/mnt/oldroot/var/db",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Below(/mnt/oldroot):\n got %q\nwant %q", got, want)
	}
	if got := tab.Below("/mnt/oldroot/var/db"); len(got) != 0 {
		t.Errorf("Below(leaf) = %q, want none", points(got))
	}
}

func TestBelowParentsFirstWhenFileOrderIsNot(t *testing.T) {
	// /run appears before / and /run/lock's parent after it: the walk must
	// still yield parents first.
	tab := load(t, "debian-systemd.mountinfo")
	got := tab.Below("/")
	seen := map[int]bool{}
	for _, m := range got {
		if _, inSet := find(got, m.Parent); inSet && !seen[m.Parent] {
			t.Errorf("%s listed before its parent %d", m.Point, m.Parent)
		}
		seen[m.ID] = true
	}
	if len(got) != len(tab)-1 {
		t.Errorf("Below(/) has %d mounts, want %d", len(got), len(tab)-1)
	}
}

func find(t Table, id int) (Mount, bool) { return t.ByID(id) }

func TestByDev(t *testing.T) {
	tab := load(t, "debian-systemd.mountinfo")
	m, _ := tab.ByID(29)
	if got := points(tab.ByDev(m.Dev())); !reflect.DeepEqual(got, []string{"/"}) {
		t.Errorf("ByDev(8:2) = %q", got)
	}
}

func TestReadSelf(t *testing.T) {
	tab, err := Read("/proc", "self")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tab.Containing("/"); !ok {
		t.Error("no mount holds / in /proc/self/mountinfo")
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"debian-systemd.mountinfo", "gentoo-after-pivot.mountinfo"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(`1 1 0:0 \ \0 \1234 - a b c`)
	f.Fuzz(func(t *testing.T, s string) {
		tab, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		below := tab.Below("/")
		if len(below) > len(tab) {
			t.Fatalf("Below returned %d of %d mounts", len(below), len(tab))
		}
		tab.Containing("/a/b")
	})
}
