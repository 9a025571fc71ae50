package swap

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/testutil"
)

// A command started again goes back into the cgroup v2 it was killed in
// (systemd's networking.service for ifupdown's dhclient), not into the
// engine's.
func TestRespawnIntoItsCgroup(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "sh")
	base := ""
	for _, d := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "cgroup.controllers")); err == nil {
				base = d
				break
			}
		}
	}
	if base == "" {
		t.Skip("no cgroup v2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified")
	}
	name := fmt.Sprintf("/rootswap-respawn-test-%d", os.Getpid())
	if err := os.Mkdir(base+name, 0o755); err != nil {
		t.Skipf("cannot make a cgroup: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	t.Cleanup(func() {
		for n := 0; n < 100 && os.Remove(base+name) != nil; n++ {
			time.Sleep(50 * time.Millisecond) // until the shell has exited
		}
	})
	rt := &Runtime{SysRoot: "/sys", ProcRoot: "/proc"}
	k := &Killed{Comm: "sh", Daemon: true, Cgroup: name,
		Argv:    []string{"sh", "-c", `grep '^0::' /proc/self/cgroup >"$OUT.tmp"; echo done >>"$OUT.tmp"; mv "$OUT.tmp" "$OUT"`},
		Environ: []string{"OUT=" + out, "PATH=/usr/bin:/bin"}}
	if err := respawn(rt, k); err != nil {
		t.Fatal(err)
	}
	got := waitOut(t, out)
	if want := "0::" + name + "\ndone\n"; got != want {
		t.Errorf("started in %q, want %q", strings.TrimSpace(got), want)
	}
}
