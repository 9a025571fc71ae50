package swap_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/sandbox"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// File mode: the sandbox server's ext3 root moves onto a new xfs and a
// new btrfs filesystem, file by file, every daemon with it; the files
// are the same after the swap, and plan shows mkfs and no block steps.
func TestSwapFilesToNewType(t *testing.T) {
	for _, typ := range []string{"xfs", "btrfs"} {
		t.Run(typ, func(t *testing.T) {
			testutil.RequireTool(t, "mkfs."+typ)
			tools := append(sandbox.DefaultHostTools(), "mkfs."+typ)
			// / shared, as systemd makes it: the view of / must not propagate.
			s := start(t, sandbox.Options{NewRootSize: 320 << 20, HostTools: tools, Shared: true})
			// A hard link, a fifo and a device node made on the live root.
			s.sh(nil, "/bin/busybox ln /etc/inittab /etc/inittab.link; /bin/busybox mkfifo /var/fifo; /bin/busybox mknod /var/null c 1 3")
			sums, _ := s.sh(nil, fileSums)
			args := " --to " + s.TargetDev + " --copy files --mkfs " + typ + " --no-lifeline --confirm-timeout 0 --release-wait 30s"
			plan, code := s.sh(nil, "/usr/sbin/rootswap plan"+args)
			if code != 0 || !strings.Contains(plan, "mkfs."+typ) || strings.Contains(plan, ". resize ") || strings.Contains(plan, ". fsck ") || strings.Contains(plan, ". new-uuid ") {
				t.Fatalf("plan exited %d, want 0 with mkfs.%s and no fsck or resize step:\n%s", code, typ, plan)
			}
			out, code := s.sh(nil, "/usr/sbin/rootswap run --yes"+args)
			if code != 0 {
				t.Fatalf("run exited %d:\n%s", code, out)
			}
			status, code := s.waitDone()
			if code != 0 || !strings.HasPrefix(status, "succeeded\n") {
				t.Fatalf("status exited %d:\n%s\nrun:\n%s", code, status, out)
			}
			after := s.snapshot()
			if typ == "btrfs" {
				// btrfs gives / an anonymous st_dev, not its device's: the
				// processes must run from the filesystem mounted at /.
				out, _ := s.sh(nil, "/bin/busybox stat -c %d /")
				n, _ := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
				dev := fmt.Sprintf("%d:%d", unix.Major(n), unix.Minor(n))
				for _, p := range append([]sandbox.Process{after.Init}, after.Daemons...) {
					if p.Err != "" || p.RunsFrom != dev {
						t.Errorf("%s: runs from %s (err %q), want %s, the new root", p.Name, p.RunsFrom, p.Err, dev)
					}
				}
			} else {
				s.checkOn(after, s.TargetDev)
			}
			if got, _ := s.sh(nil, "/bin/busybox grep ' / ' /proc/mounts"); !strings.Contains(got, " "+typ+" ") {
				t.Errorf("/ is not %s: %s", typ, got)
			}
			if got, _ := s.sh(nil, fileSums); got != sums {
				t.Errorf("files differ after the swap:\nbefore:\n%s\nafter:\n%s", sums, got)
			}
			got, _ := s.sh(nil, "/bin/busybox stat -c '%h %F %t:%T' /etc/inittab.link /var/fifo /var/null")
			if want := "2 regular file 0:0\n1 fifo 0:0\n1 character special file 1:3\n"; got != want {
				t.Errorf("the link, fifo and device node after the swap:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// A file-mode swap that fails in its frozen copy rolls back: / is the
// old root, read-write, every daemon on it, nothing left mounted at
// /mnt/newroot or the view of / in the engine's tmpfs.
func TestSwapFilesFaultRollsBack(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4")
	s := start(t, sandbox.Options{NewRootSize: 128 << 20, HostTools: append(sandbox.DefaultHostTools(), "mkfs.ext4")})
	out, code := s.sh([]string{"ROOTSWAP_TEST_FAULT=copy"}, "/usr/sbin/rootswap run --yes --to "+s.TargetDev+" --copy files --mkfs ext4 --no-lifeline --confirm-timeout 0")
	if code != 1 || !strings.Contains(out, "rolled back") {
		t.Errorf("run exited %d, want 1 with 'rolled back':\n%s", code, out)
	}
	if status, code := s.waitDone(); code != 1 || !strings.HasPrefix(status, "rolled-back\n") {
		t.Errorf("status exited %d, want 1 and rolled-back:\n%s", code, status)
	}
	after := s.snapshot()
	s.checkOn(after, s.RootDev)
	for _, m := range after.Mounts {
		if strings.HasPrefix(m.Point, "/mnt/") || strings.Contains(m.Point, "oldroot-view") {
			t.Errorf("left mounted after rollback: %s", m)
		}
	}
}

// plan refuses file mode onto a target too small for the used data plus
// the margin (xfs: 300 MiB at least), or without its mkfs; and --mkfs
// without --copy files is a usage error.
func TestSwapFilesRefusals(t *testing.T) {
	s := start(t, sandbox.Options{NewRootSize: 64 << 20}) // no mkfs.xfs in the server
	out, code := s.sh(nil, "/usr/sbin/rootswap plan --no-lifeline --to "+s.TargetDev+" --copy files --mkfs xfs")
	for _, want := range []string{"the copy needs at least 300 MiB", "mkfs.xfs not found"} {
		if code != 3 || !strings.Contains(out, want) {
			t.Errorf("plan exited %d, want 3 and %q:\n%s", code, want, out)
		}
	}
	if out, code := s.sh(nil, "/usr/sbin/rootswap plan --no-lifeline --to "+s.TargetDev+" --mkfs xfs"); code != 2 {
		t.Errorf("plan --mkfs without --copy files exited %d, want 2:\n%s", code, out)
	}
}
