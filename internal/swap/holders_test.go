package swap

import (
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// A file of a btrfs subvolume stats with the subvolume's anonymous
// device; the mount it was opened through shows the superblock's. The
// holder is found by the mount.
func TestHoldersOfMatchesFDsByMount(t *testing.T) {
	root := mountinfo.Mount{ID: 77, Major: 0, Minor: 41, Point: "/", FSType: "btrfs", Root: "/@"}
	other := mountinfo.Mount{ID: 90, Major: 8, Minor: 1, Point: "/boot", FSType: "ext4", Root: "/"}
	fd := func(num int, name string, flags uint32, m mountinfo.Mount, statDev uint64) procscan.FD {
		return procscan.FD{Num: num, Name: name, Kind: procscan.KindFile, HasInfo: true,
			Info:  procscan.FDInfo{Flags: flags, MntID: m.ID, HasFlags: true, HasMntID: true},
			Mount: m, HasMount: true, Stat: &procscan.Stat{Dev: statDev}}
	}
	snap := &procscan.Snapshot{Procs: []*procscan.Process{
		{PID: 10, Comm: "writer", FDs: []procscan.FD{fd(3, "/var/log/x", unix.O_WRONLY, root, unix.Mkdev(0, 43))}},
		{PID: 11, Comm: "boot", FDs: []procscan.FD{fd(3, "/boot/y", unix.O_WRONLY, other, unix.Mkdev(0, 41))}},
		// No namespace lists its mount any more: the stat decides.
		{PID: 12, Comm: "lost", FDs: []procscan.FD{{Num: 4, Name: "/z", Kind: procscan.KindFile, Stat: &procscan.Stat{Dev: unix.Mkdev(0, 41)}}}},
	}}
	var got []string
	for _, h := range HoldersOf(snap, root.Dev()) {
		got = append(got, h.Comm+" "+h.What())
	}
	want := []string{"writer writes 3w /var/log/x", "lost uses 4r /z"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("HoldersOf = %q, want %q", got, want)
	}
}
