package procscan

import "path"

// BoundPath is where a unix socket that p holds is bound, as the scanner
// names paths. The kernel keeps the path as given to bind(2), relative to
// the binder's root (and cwd, when relative); the holder's stand for the
// binder's. ok is false for an unbound or abstract socket, and when p's
// root cannot be named from here: p sits in another mount namespace whose
// root is not the scanner's (a container's), or its root is unreadable.
// /proc/net/unix lists every socket of a network namespace, whatever root
// bound it, so a path in it alone says nothing of where the file is.
func (s *Snapshot) BoundPath(p *Process, u UnixSocket) (string, bool) {
	root := p.Root.Name
	if !u.Bound() || !path.IsAbs(root) {
		return "", false
	}
	if p.MountNS != "" && s.SelfMountNS != "" && p.MountNS != s.SelfMountNS {
		// Its root link names its root in its own namespace: it is ours
		// only when that namespace's / is the same directory of the same
		// filesystem (systemd's PrivateTmp= services), not a container's.
		if root != "/" || !s.sameRoot(p.MountNS) {
			return "", false
		}
	}
	if !path.IsAbs(u.Path) {
		if !path.IsAbs(p.Cwd.Name) {
			return "", false
		}
		return path.Join(p.Cwd.Name, u.Path), true
	}
	// In our namespace a chrooted process's root link is its root's path
	// as we see it.
	return path.Join(root, u.Path), true
}

// sameRoot reports whether mount namespace ns has the scanner's root
// directory as its /.
func (s *Snapshot) sameRoot(ns string) bool {
	theirs, ok1 := s.Mounts[ns].Containing("/")
	ours, ok2 := s.Self.Containing("/")
	return ok1 && ok2 && theirs.Dev() == ours.Dev() && theirs.Root == ours.Root
}
