package swap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// --backup is refused in plan wherever the engine could not write it
// once / is read-only: each case names the path and the reason.
func TestBackupCheck(t *testing.T) {
	dir := t.TempDir()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "old.zst"), nil, 0o600)
	here := mountinfo.Mount{ID: 40, Parent: 1, Major: unix.Major(st.Dev), Minor: unix.Minor(st.Dev), Point: dir, Options: "rw", FSType: "ext4", SuperOptions: "rw"}
	root := mountinfo.Mount{ID: 1, Major: 8, Minor: 99, Point: "/", Options: "rw"}
	base := func() backupCheck {
		return backupCheck{path: filepath.Join(dir, "root.zst"), mounts: mountinfo.Table{root, here}, root: root,
			engineDir: "/run/rootswap", stack: &blockdev.Stack{SysRoot: "/sys"}, target: blockdev.Node{Block: true, Rdev: unix.Mkdev(8, 98)}, need: 1 << 20}
	}
	tests := []struct {
		name string
		edit func(c *backupCheck)
		want string
	}{
		{"fine", func(c *backupCheck) {}, ""},
		{"relative", func(c *backupCheck) { c.path = "root.zst" }, "--backup root.zst is not an absolute path: it would land in the engine's tmpfs (/run/rootswap)"},
		{"engine tmpfs", func(c *backupCheck) { c.path = "/run/rootswap/root.zst" }, "is in the engine's tmpfs"},
		{"exists", func(c *backupCheck) { c.path = filepath.Join(dir, "old.zst") }, "old.zst already exists"},
		{"no directory", func(c *backupCheck) { c.path = filepath.Join(dir, "nope", "root.zst") }, "its directory: "},
		{"on /", func(c *backupCheck) { c.root = here }, "is on / itself, which is read-only during the copy"},
		{"unmounted first", func(c *backupCheck) { c.mounts[1].FSType = "nfs4"; c.unmount = mountinfo.Table{c.mounts[1]} }, "(nfs4), which run unmounts before the copy"},
		{"read-only", func(c *backupCheck) { c.mounts[1].Options = "ro" }, ", mounted read-only"},
		{"no room", func(c *backupCheck) { c.need = 1 << 60 }, "free, the image needs about 1.0 EiB"},
	}
	if _, err := os.Stat(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))); err == nil {
		tests = append(tests, struct {
			name string
			edit func(c *backupCheck)
			want string
		}{"on the target", func(c *backupCheck) { c.target = blockdev.Node{Path: "/dev/tgt", Block: true, Rdev: st.Dev} }, "is on the target /dev/tgt: "})
	}
	for _, tt := range tests {
		c := base()
		tt.edit(&c)
		got, fix := c.problem()
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: problem() = %q, want %q", tt.name, got, tt.want)
		}
		if got != "" && fix == "" {
			t.Errorf("%s: no fix given", tt.name)
		}
	}
}
