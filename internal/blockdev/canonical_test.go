package blockdev

import (
	"os"
	"path/filepath"
	"testing"
)

// A udev-made /dev and its /sys: dm-0 is LVM's sys/root, dm-1 a mapping
// whose /dev/mapper link is missing, sda2 a partition.
func canonicalTree(t *testing.T) (sys, root string) {
	t.Helper()
	d := t.TempDir()
	sys, root = filepath.Join(d, "sys"), filepath.Join(d, "root")
	files := map[string]string{
		"root/dev/dm-0":                  "",
		"root/dev/dm-1":                  "",
		"root/dev/sda2":                  "",
		"sys/class/block/dm-0/dm/name":   "sys-root\n",
		"sys/class/block/dm-1/dm/name":   "crypt\n",
		"sys/class/block/sda2/partition": "2\n",
	}
	for name, text := range files {
		p := filepath.Join(d, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"root/dev/mapper/sys-root":    "../dm-0",
		"root/dev/sys/root":           "../dm-0",
		"root/dev/disk/by-uuid/1111":  "../../dm-0",
		"root/dev/disk/by-uuid/2222":  "../../sda2",
		"root/dev/disk/by-id/dm-name": "../../mapper/sys-root",
	} {
		p := filepath.Join(d, link)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return sys, root
}

func TestCanonical(t *testing.T) {
	sys, root := canonicalTree(t)
	for _, c := range []struct{ in, want string }{
		{"/dev/sys/root", "/dev/mapper/sys-root"},
		{"/dev/mapper/sys-root", "/dev/mapper/sys-root"},
		{"/dev/dm-0", "/dev/mapper/sys-root"},
		{"/dev/disk/by-uuid/1111", "/dev/mapper/sys-root"},
		{"/dev/disk/by-id/dm-name", "/dev/mapper/sys-root"},
		{"/dev/disk/by-uuid/2222", "/dev/sda2"},
		{"/dev/sda2", "/dev/sda2"},
		{"/dev/../dev/sda2", "/dev/sda2"},
		{"/dev/dm-1", "/dev/dm-1"}, // no /dev/mapper/crypt to name it by
	} {
		got, err := canonicalIn(sys, root, c.in)
		if err != nil || got != c.want {
			t.Errorf("Canonical(%s) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"/dev/missing", "dev/sda2"} {
		if got, err := canonicalIn(sys, root, in); err == nil {
			t.Errorf("Canonical(%s) = %q, want an error", in, got)
		}
	}
}

// On the live system a real device node resolves the same way.
func TestCanonicalLive(t *testing.T) {
	got, err := Canonical("/sys", "/dev/null")
	if err != nil || got != "/dev/null" {
		t.Errorf("Canonical(/dev/null) = %q, %v", got, err)
	}
}
