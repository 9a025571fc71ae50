package procscan

import (
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// BoundPath names a socket's file from the holder's root: ours as is, a
// chroot's below it, a container's (another namespace, another /) not at
// all, a PrivateTmp= service's (another namespace, our /) as ours.
func TestBoundPath(t *testing.T) {
	root := mountinfo.Mount{ID: 21, Parent: 1, Major: 8, Minor: 2, Root: "/", Point: "/", FSType: "ext4"}
	overlay := mountinfo.Mount{ID: 900, Parent: 1, Major: 0, Minor: 77, Root: "/", Point: "/", FSType: "overlay"}
	snap := &Snapshot{
		Self: mountinfo.Table{root}, SelfMountNS: "mnt:[1]",
		Mounts: map[string]mountinfo.Table{
			"mnt:[1]": {root},
			"mnt:[2]": {overlay},
			"mnt:[3]": {root},
		},
	}
	proc := func(ns, root, cwd string) *Process {
		return &Process{MountNS: ns, Root: Link{Name: root}, Cwd: Link{Name: cwd}}
	}
	sock := func(p string) UnixSocket { return UnixSocket{Path: p} }
	for _, c := range []struct {
		what string
		p    *Process
		u    UnixSocket
		want string
		ok   bool
	}{
		{"ours", proc("mnt:[1]", "/", "/"), sock("/run/a.sock"), "/run/a.sock", true},
		{"relative, from the cwd", proc("mnt:[1]", "/", "/var/lib/x"), sock("s.sock"), "/var/lib/x/s.sock", true},
		{"a chroot", proc("mnt:[1]", "/srv/jail", "/srv/jail"), sock("/run/j.sock"), "/srv/jail/run/j.sock", true},
		{"a container", proc("mnt:[2]", "/", "/"), sock("/run/app.sock"), "", false},
		{"a chroot in another namespace", proc("mnt:[3]", "/srv/jail", "/"), sock("/run/j.sock"), "", false},
		{"a PrivateTmp= service", proc("mnt:[3]", "/", "/"), sock("/run/svc.sock"), "/run/svc.sock", true},
		{"a namespace not read", proc("mnt:[4]", "/", "/"), sock("/run/x.sock"), "", false},
		{"abstract", proc("mnt:[1]", "/", "/"), sock("@/org/x"), "", false},
		{"unbound", proc("mnt:[1]", "/", "/"), sock(""), "", false},
		{"root unreadable", proc("mnt:[1]", "", ""), sock("/run/a.sock"), "", false},
	} {
		got, ok := snap.BoundPath(c.p, c.u)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: BoundPath = %q, %v; want %q, %v", c.what, got, ok, c.want, c.ok)
		}
	}
}
