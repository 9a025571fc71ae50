package swap

import (
	"slices"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// A Fedora-like btrfs root: / on @, /home on @home, /var/lib/x bound
// from a directory of @ (a bind mount, not a subvolume), /srv a
// directory of @home bound (not a subvolume's root either), /boot ext4.
const fedoraMounts = `29 1 0:41 /@ / rw,relatime shared:1 - btrfs /dev/vda3 rw,compress=zstd:1,ssd,space_cache=v2,subvolid=256,subvol=/@
30 29 0:41 /@home /home rw,relatime shared:2 - btrfs /dev/vda3 rw,compress=zstd:1,ssd,space_cache=v2,subvolid=257,subvol=/@home
31 29 0:41 /@/opt/x /var/lib/x rw,relatime shared:1 - btrfs /dev/vda3 rw,compress=zstd:1,ssd,space_cache=v2,subvolid=256,subvol=/@
32 29 0:41 /@home/www /srv rw,relatime shared:2 - btrfs /dev/vda3 rw,compress=zstd:1,ssd,space_cache=v2,subvolid=257,subvol=/@home
33 30 0:41 /@home/user/@cache /home/user/.cache rw,relatime shared:3 - btrfs /dev/vda3 rw,ssd,space_cache=v2,subvolid=300,subvol=/@home/user/@cache
34 29 252:1 / /boot rw,relatime shared:4 - ext4 /dev/vda2 rw
`

func TestRootSubvolumes(t *testing.T) {
	tab, err := mountinfo.Parse(strings.NewReader(fedoraMounts))
	if err != nil {
		t.Fatal(err)
	}
	root := tab[0]
	if got, want := newRootData(root), "compress=zstd:1,ssd,space_cache=v2,subvolid=256"; got != want {
		t.Errorf("newRootData = %q, want %q", got, want)
	}
	if got, want := describeSubvol(root), " (subvolume /@, id 256)"; got != want {
		t.Errorf("describeSubvol = %q, want %q", got, want)
	}
	var got []string
	for _, m := range sameFSSubmounts(tab, root) {
		got = append(got, m.Point+m.Subvol)
	}
	want := []string{"/home (subvolume /@home, id 257)", "/home/user/.cache (subvolume /@home/user/@cache, id 300)"}
	if !slices.Equal(got, want) {
		t.Errorf("sameFSSubmounts = %q, want %q", got, want)
	}
	if d := subvolData(tab[1]); d != "subvolid=257" {
		t.Errorf("subvolData(/home) = %q", d)
	}
	// The top level and other filesystems need no subvolume option.
	for _, line := range []string{
		"29 1 0:41 / / rw - btrfs /dev/vda3 rw,subvolid=5,subvol=/",
		"29 1 252:3 / / rw - xfs /dev/vda3 rw,attr2,inode64",
		"29 1 0:41 /@ / rw - btrfs /dev/vda3 rw", // a kernel that shows no subvol options
	} {
		m, _ := mountinfo.ParseLine(line)
		want := ""
		if strings.Contains(line, "/@ ") {
			want = "subvol=/@"
		}
		if got := subvolData(m); got != want {
			t.Errorf("subvolData(%s) = %q, want %q", line, got, want)
		}
	}
	if got := newRootData(tab[5]); got != "" {
		t.Errorf("newRootData(ext4) = %q, want none", got)
	}
}
