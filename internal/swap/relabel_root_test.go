package swap_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/sandbox"
)

// TestSwapRelabelsOldRoot: the block copy of the server's ext3 root
// carries its UUID and label; once run has released the old root, the
// old root carries the label oldroot and a new UUID (read on the loop
// device, natively and by blkid), so a reboot before finish could find
// only the new one. status ends with the next command, and finish, run
// twice in the server, finds the relabel done.
func TestSwapRelabelsOldRoot(t *testing.T) {
	s := start(t, sandbox.Options{})
	before, err := fstools.DetectPath(s.RootDev)
	if err != nil {
		t.Fatal(err)
	}
	out, code := s.sh(nil, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --no-lifeline --confirm-timeout 0 --release-wait 30s")
	if code != 0 || !strings.Contains(out, "next") || !strings.Contains(out, "rootswap finish") {
		t.Fatalf("run exited %d, or does not say what comes next:\n%s", code, out)
	}
	status, code := s.waitDone()
	if code != 0 || !strings.HasPrefix(status, "succeeded\n") || !strings.Contains(status, "\nnext: rootswap finish ") {
		t.Fatalf("status exited %d, or does not end with the next command:\n%s", code, status)
	}
	if !strings.Contains(status, "  relabel-old ") || strings.Contains(status, "FAILED") {
		t.Errorf("status:\n%s\nwant relabel-old done", status)
	}
	old, err := fstools.DetectPath(s.RootDev)
	if err != nil {
		t.Fatal(err)
	}
	copied, err := fstools.DetectPath(s.TargetDev)
	if err != nil {
		t.Fatal(err)
	}
	if old.Label != "oldroot" || old.UUID == "" || old.UUID == before.UUID || copied.UUID != before.UUID || copied.Label != before.Label {
		t.Errorf("old root %s, new root %s; want the old one labelled oldroot with a new UUID, the new one with %s", old, copied, before)
	}
	if b, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "LABEL", s.RootDev).Output(); strings.TrimSpace(string(b)) != "oldroot" {
		t.Errorf("blkid LABEL of %s = %q, want oldroot", s.RootDev, b)
	}
	out, code = s.sh(nil, "/usr/sbin/rootswap finish --dry-run")
	if want := "finish: a reboot now: fstab's / LABEL=" + before.Label + " finds only the new root\n"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("finish --dry-run exited %d, want %q:\n%s", code, want, out)
	}
	for i := 1; i <= 2; i++ {
		out, code = s.sh(nil, "/usr/sbin/rootswap finish")
		if code != 0 || !strings.Contains(out, "already relabelled by the swap's relabel-old step (label \"oldroot\", UUID "+old.UUID+"): left alone") {
			t.Errorf("finish #%d exited %d:\n%s", i, code, out)
		}
	}
	t.Logf("status:\n%s\nthe second finish:\n%s", status, out)
	if after, _ := fstools.DetectPath(s.RootDev); after != old {
		t.Errorf("finish changed the old root: %s, was %s", after, old)
	}
}
