package swap

import (
	"sort"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
)

// socketsBoundOn lists the unix sockets bound on mount m (the root),
// each named from the root of the process that holds it: /proc/net/unix
// lists every socket of the network namespace, a container's and a
// chroot's too, by the path as their binder gave it.
func socketsBoundOn(snap *procscan.Snapshot, m mountinfo.Mount) []string {
	seen := map[uint64]bool{}
	var out []string
	for _, p := range snap.Procs {
		for i := range p.FDs {
			f := &p.FDs[i]
			if f.Kind != procscan.KindSocket || seen[f.Inode] {
				continue
			}
			u, ok := snap.Unix[f.Inode]
			if !ok {
				continue
			}
			sp, ok := snap.BoundPath(p, u)
			if !ok {
				continue
			}
			seen[f.Inode] = true
			if c, ok := snap.Self.Containing(sp); ok && c.ID == m.ID {
				out = append(out, sp)
			}
		}
	}
	sort.Strings(out)
	return out
}
