package finish

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/swap"
)

// A btrfs root on subvolume @ with /home on @home of the same
// filesystem, swapped onto the LVM volume: the copy got an fsid of its
// own. mountinfo shows anonymous devices (0:N) for both roots; the
// journal's old root too. Every fstab entry that named the old
// filesystem (/ and /home) must name the new one, the other lines stay.
func TestBtrfsSubvolumes(t *testing.T) {
	x := newFixture(t)
	x.writeProc(`22 29 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 29 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
29 1 0:44 /@ / rw,relatime shared:1 - btrfs /dev/mapper/sys-root rw,space_cache=v2,subvolid=256,subvol=/@
31 29 0:44 /@home /home rw,relatime shared:2 - btrfs /dev/mapper/sys-root rw,space_cache=v2,subvolid=257,subvol=/@home
40 29 8:1 / /boot rw,relatime shared:17 - ext2 /dev/sda1 rw
`)
	x.fs["/dev/mapper/sys-root"] = fstools.FS{Type: "btrfs", Label: "fedora", UUID: newUUID}
	x.fs["/dev/sda2"] = fstools.FS{Type: "btrfs", Label: "fedora", UUID: oldUUID}
	st := &swap.State{OldRoot: mountinfo.Mount{ID: 29, Parent: 1, Major: 0, Minor: 41, Root: "/@", Point: "/", FSType: "btrfs", Source: "/dev/sda2",
		SuperOptions: "rw,space_cache=v2,subvolid=256,subvol=/@"}}
	x.journal([]journal.Record{
		{Kind: journal.KindStart, PID: 4242, Data: map[string]string{"state": st.Marshal()}},
		{Kind: journal.KindDone, Result: string(journal.Succeeded)},
	})
	fstab := `UUID=` + oldUUID + ` /     btrfs subvol=@,compress=zstd:1 0 0
UUID=` + oldUUID + ` /home btrfs subvol=@home,compress=zstd:1 0 0
/dev/sda2 /srv btrfs subvol=@srv 0 0
UUID=7a1e0c55-3b9d-4f62-a8c1-5e2d9f4b7c30 /boot ext2 defaults 0 2
LABEL=fedora /snap btrfs subvol=@snap 0 0
`
	x.file("etc/fstab", fstab, 0o644)
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v\n%s", err, x.stderr.String())
	}
	got, _ := os.ReadFile(filepath.Join(x.root, "etc/fstab"))
	want := `UUID=` + newUUID + ` /     btrfs subvol=@,compress=zstd:1 0 0
UUID=` + newUUID + ` /home btrfs subvol=@home,compress=zstd:1 0 0
UUID=` + newUUID + ` /srv btrfs subvol=@srv 0 0
UUID=7a1e0c55-3b9d-4f62-a8c1-5e2d9f4b7c30 /boot ext2 defaults 0 2
LABEL=fedora /snap btrfs subvol=@snap 0 0
`
	if string(got) != want {
		t.Errorf("fstab:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range []string{
		"==> fstab: /home UUID=" + oldUUID + " -> UUID=" + newUUID + " (the root's own filesystem: the new root now)",
		"==> fstab: /srv /dev/sda2 -> UUID=" + newUUID,
		"finish: the old root is /dev/sda2: btrfs filesystem",
	} {
		if !strings.Contains(x.stdout.String(), line) {
			t.Errorf("output lacks %q:\n%s", line, x.stdout.String())
		}
	}
	if len(x.relabelled) != 1 || x.relabelled[0][0] != "/dev/sda2" {
		t.Errorf("relabelled %q, want the old root /dev/sda2", x.relabelled)
	}
}
