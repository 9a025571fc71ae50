package swap

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// relabelFixture: the old root /dev/sda2 of type fstype, copied block by
// block (mkfs "") or file by file, onto /dev/sys/root; the fake relabel
// records the devices it was asked to relabel.
func relabelFixture(t *testing.T, fstype, mkfs string) (*relabelOld, *State, *[]string) {
	t.Helper()
	rt := &Runtime{SysRoot: t.TempDir(), Report: &Report{Mkfs: mkfs}, Out: io.Discard}
	rt.Report.Root.Device, rt.Report.Root.FSType = "/dev/sda2", fstype
	var calls []string
	rt.Relabel = func(ctx context.Context, out io.Writer, getenv func(string) string, sysRoot, procRoot, dev string) (string, error) {
		calls = append(calls, dev)
		if dev == "/dev/broken" {
			return "", errors.New("tune2fs: exit status 1")
		}
		return "6a0e7d4b-93c1-4f8e-b2a5-0c9d8e7f6a51", nil
	}
	s := &State{Opts: DefaultOptions("/dev/sys/root"), PastNoReturn: true}
	return &relabelOld{rt}, s, &calls
}

// An ext block copy shares the old root's UUID and label: once released,
// the old root is relabelled at once and the journal's state says so.
func TestRelabelOldExt(t *testing.T) {
	st, s, calls := relabelFixture(t, "ext4", "")
	if d := st.Describe(s); !strings.Contains(d, "once /dev/sda2 is released, label it oldroot with a new UUID") {
		t.Errorf("plan says %q", d)
	}
	if err := st.Do(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/dev/sda2"}; !reflect.DeepEqual(*calls, want) {
		t.Errorf("relabelled %q, want %q", *calls, want)
	}
	back, err := Unmarshal(s.Marshal())
	if err != nil || back.OldRelabelled != "6a0e7d4b-93c1-4f8e-b2a5-0c9d8e7f6a51" {
		t.Errorf("journaled state: old_relabelled %q (%v), want the new UUID", back.OldRelabelled, err)
	}
}

// xfs, btrfs and file-mode copies have a UUID of their own: nothing to do.
func TestRelabelOldOwnUUID(t *testing.T) {
	for _, tc := range []struct{ fstype, mkfs string }{{"xfs", ""}, {"btrfs", ""}, {"ext4", "ext4"}, {"ext4", "xfs"}} {
		st, s, calls := relabelFixture(t, tc.fstype, tc.mkfs)
		if d := st.Describe(s); !strings.HasPrefix(d, "nothing: the copy has a UUID of its own, so UUID= finds only the old root /dev/sda2") {
			t.Errorf("%s (--mkfs %q): plan says %q", tc.fstype, tc.mkfs, d)
		}
		if err := st.Do(context.Background(), s); err != nil || len(*calls) > 0 || s.OldRelabelled != "" {
			t.Errorf("%s (--mkfs %q): %v, relabelled %q", tc.fstype, tc.mkfs, err, *calls)
		}
	}
}

// Still mounted (the release ran out of time), alive in the kernel (a
// lazy detach) or a failed relabel: skipped with the commands to run by
// hand, and not fatal.
func TestRelabelOldSkipped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(st *relabelOld, s *State)
		want  string
		tried bool
	}{
		{"still mounted", func(st *relabelOld, s *State) { s.PastNoReturn = false }, "skipped: still mounted at /mnt/oldroot", false},
		{"lazily detached", func(st *relabelOld, s *State) {
			os.MkdirAll(filepath.Join(st.rt.SysRoot, "fs/ext4/sda2"), 0o755)
		}, "skipped: unmounted but still alive in the kernel", false},
		{"tool fails", func(st *relabelOld, s *State) { st.rt.Report.Root.Device = "/dev/broken" }, "tune2fs: exit status 1", true},
	} {
		st, s, calls := relabelFixture(t, "ext3", "")
		tc.setup(st, s)
		err := st.Do(context.Background(), s)
		dev := st.rt.Report.Root.Device
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "then rootswap finish relabels it (or rootswap tune2fs-relabel "+dev+")") {
			t.Errorf("%s: %v, want %q and the commands by hand", tc.name, err, tc.want)
		}
		if (len(*calls) > 0) != tc.tried || s.OldRelabelled != "" {
			t.Errorf("%s: relabelled %q, state %q", tc.name, *calls, s.OldRelabelled)
		}
	}
	if (&relabelOld{}).Fatal() {
		t.Errorf("relabel-old is fatal: a failure would fail a swap that is done, and finish would refuse it")
	}
}

// plan prints it, after the release and fsck-old.
func TestRelabelOldInPlan(t *testing.T) {
	var names []string
	for _, st := range Steps(&Runtime{}) {
		names = append(names, st.Name())
	}
	if n := len(names); n < 3 || !reflect.DeepEqual(names[n-3:], []string{StepRelease, "fsck-old", StepRelabelOld}) {
		t.Errorf("steps end %q, want release-oldroot, fsck-old, relabel-old", names)
	}
}

// /boot on the old root and the copy on LVM: GRUB's core.img finds
// /boot/grub by the old root's UUID and may not read LVM, so the old root
// keeps it until finish --grub-install; with /boot on its own mount the
// old root is relabelled.
func TestRelabelOldBootOnOldRoot(t *testing.T) {
	testutil.RequireRoot(t) // a block device node for the target
	for _, bootMounted := range []bool{false, true} {
		st, s, calls := relabelFixture(t, "ext4", "")
		sys := st.rt.SysRoot
		dm := filepath.Join(sys, "devices/virtual/block/dm-0")
		os.MkdirAll(filepath.Join(dm, "slaves/sdb1"), 0o755)
		os.WriteFile(filepath.Join(dm, "size"), []byte("6291456\n"), 0o644)
		os.MkdirAll(filepath.Join(sys, "dev/block"), 0o755)
		os.Symlink(dm, filepath.Join(sys, "dev/block/253:0"))
		node := filepath.Join(t.TempDir(), "root")
		if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(253, 0))); err != nil {
			t.Fatal(err)
		}
		st.rt.Report.Target.Path = node
		if bootMounted {
			st.rt.Report.Submounts = []string{"/boot", "/run"}
		}
		d, err := st.Describe(s), st.Do(context.Background(), s)
		if bootMounted {
			if err != nil || len(*calls) != 1 || strings.HasPrefix(d, "nothing") {
				t.Errorf("/boot mounted: %v, relabelled %q; plan says %q", err, *calls, d)
			}
			continue
		}
		want := "skipped: /boot is on the old root and the new root on LVM/md, which GRUB's core.img may not read"
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "rootswap finish --grub-install DISK") || len(*calls) > 0 {
			t.Errorf("/boot on the old root: %v, relabelled %q; want it left, naming finish --grub-install", err, *calls)
		}
		if !strings.HasPrefix(d, "nothing: /boot is on the old root") {
			t.Errorf("plan says %q", d)
		}
	}
}
