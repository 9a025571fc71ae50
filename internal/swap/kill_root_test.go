package swap_test

// Root tier: SIGKILLs of the engine inside a step, where only the
// write-ahead intent records tell rollback what was already changed.

import (
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/sandbox"
)

// sharedPoints are the mount points with shared propagation.
func sharedPoints(st sandbox.State) map[string]bool {
	out := map[string]bool{}
	for _, m := range st.Mounts {
		if m.Shared() {
			out[m.Point] = true
		}
	}
	return out
}

// On a shared / (systemd's), the pivot makes / private first; the engine
// killed after that and before pivot_root leaves it private, and rollback
// must make shared again every mount that was.
func TestKillBetweenMakePrivateAndPivot(t *testing.T) {
	s := start(t, sandbox.Options{Shared: true})
	shared := sharedPoints(s.snapshot())
	if !shared["/"] {
		t.Fatalf("/ is not shared in a Shared sandbox: %v", shared)
	}
	s.runAndKill("pivot/private#1")
	if sharedPoints(s.snapshot())["/"] {
		t.Fatal("/ is still shared at the kill: the fault point is not after the make-private")
	}
	out, code := s.sh(nil, "/usr/sbin/rootswap rollback")
	after := sharedPoints(s.rolledBack(out, code))
	for p := range shared {
		if !after[p] {
			t.Errorf("%s was shared before the swap, not after rollback (shared now: %v)", p, after)
		}
	}
}

// Three mounts for unmount-extra (the overlay variant and two more with
// options of their own); the engine is killed right after the second
// unmount, before its outcome is journaled. rollback from a new session
// mounts both again, exactly as they were, and leaves the third alone.
func TestKillInUnmountExtra(t *testing.T) {
	s := start(t, sandbox.Options{Variants: sandbox.Variants{Overlay: true}})
	points := []string{sandbox.OverlayPoint, "/srv/extra1", "/srv/extra2"}
	if out, code := s.sh(nil, `set -e; for n in 1 2; do d=/var/lib/extra$n; mkdir -p $d/l $d/u $d/w /srv/extra$n; echo $n >$d/l/f
mount -t overlay -o nodev,noatime,lowerdir=$d/l,upperdir=$d/u,workdir=$d/w extra$n /srv/extra$n; done`); code != 0 {
		t.Fatalf("mounting the extra overlays exited %d:\n%s", code, out)
	}
	before := s.snapshot()
	s.runAndKill("unmount-extra/unmount#2")
	mid := s.snapshot()
	gone := 0
	for _, p := range points {
		if m, ok := mid.Mounts.Containing(p); !ok || m.Point != p {
			gone++
		}
	}
	if gone != 2 {
		t.Fatalf("%d of %d extra mounts unmounted at the kill, want 2", gone, len(points))
	}
	out, code := s.sh(nil, "/usr/sbin/rootswap rollback")
	after := s.rolledBack(out, code)
	for _, p := range points {
		b, a := mountAt(t, before, p), mountAt(t, after, p)
		if a.FSType != b.FSType || a.Source != b.Source || a.Options != b.Options || a.SuperOptions != b.SuperOptions {
			t.Errorf("%s after rollback: %s %s %s %s, want %s %s %s %s", p, a.Source, a.FSType, a.Options, a.SuperOptions,
				b.Source, b.FSType, b.Options, b.SuperOptions)
		}
		n := 0
		for _, m := range after.Mounts {
			if m.Point == p {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s is mounted %d times after rollback", p, n)
		}
	}
	if got, _ := s.sh(nil, "cat /srv/extra2/f"); strings.TrimSpace(got) != "2" {
		t.Errorf("/srv/extra2/f after rollback: %q", got)
	}
	if m := mountAt(t, after, sandbox.OverlayPoint); s.cwdDev("container") != m.Dev() {
		t.Errorf("container does not work in %s after rollback", sandbox.OverlayPoint)
	}
}
