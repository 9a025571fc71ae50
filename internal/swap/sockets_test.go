package swap

import (
	"reflect"
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
)

// plan's "unix sockets bound on /" names each socket from its holder's
// root: a container's socket in the same network namespace is not on
// our /, a chroot's is, below the chroot.
func TestSocketsBoundOnRoot(t *testing.T) {
	root := mountinfo.Mount{ID: 21, Parent: 1, Major: 8, Minor: 2, Root: "/", Point: "/", FSType: "ext4"}
	run := mountinfo.Mount{ID: 23, Parent: 21, Major: 0, Minor: 25, Root: "/", Point: "/run", FSType: "tmpfs"}
	overlay := mountinfo.Mount{ID: 900, Parent: 1, Major: 0, Minor: 77, Root: "/", Point: "/", FSType: "overlay"}
	sockFD := func(ino uint64) []procscan.FD { return []procscan.FD{{Num: 3, Kind: procscan.KindSocket, Inode: ino}} }
	snap := &procscan.Snapshot{
		Self: mountinfo.Table{root, run}, SelfMountNS: "mnt:[1]",
		Mounts: map[string]mountinfo.Table{"mnt:[1]": {root, run}, "mnt:[2]": {overlay}},
		Unix: map[uint64]procscan.UnixSocket{
			1: {Inode: 1, Path: "/var/lib/app/app.sock"},
			2: {Inode: 2, Path: "/var/lib/app/app.sock"},
			3: {Inode: 3, Path: "/dev/log"},
			4: {Inode: 4, Path: "/run/systemd/notify"},
			5: {Inode: 5, Path: "@abstract"},
		},
		Procs: []*procscan.Process{
			{PID: 10, MountNS: "mnt:[1]", Root: procscan.Link{Name: "/"}, FDs: sockFD(1)},
			{PID: 20, MountNS: "mnt:[2]", Root: procscan.Link{Name: "/"}, FDs: sockFD(2)}, // a container
			{PID: 30, MountNS: "mnt:[1]", Root: procscan.Link{Name: "/srv/jail"}, FDs: sockFD(3)},
			{PID: 1, MountNS: "mnt:[1]", Root: procscan.Link{Name: "/"}, FDs: append(sockFD(4), procscan.FD{Num: 4, Kind: procscan.KindSocket, Inode: 5})},
		},
	}
	got := socketsBoundOn(snap, root)
	if want := []string{"/srv/jail/dev/log", "/var/lib/app/app.sock"}; !reflect.DeepEqual(got, want) {
		t.Errorf("bound on / = %q, want %q", got, want)
	}
}
