package swap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/journal"
)

// ---- relabel-old ----------------------------------------------------------

// StepRelabelOld takes the old root's identity away once it is released.
const StepRelabelOld = "relabel-old"

// relabelOld closes the window in which two filesystems carry one
// identity. A block copy of an ext root keeps its UUID and label (ext
// mounts the duplicate), so between run and finish UUID= and LABEL=
// (fstab, the kernel's root=, GRUB's search) may find either root on a
// reboot. Once the old root is released, it gets the label oldroot and a
// new UUID (fstools' Runner.Relabel, as finish and tune2fs-relabel):
// those names then find only the new root, and the journal says so, so
// that finish leaves it alone. xfs and btrfs copies and file-mode copies
// got a UUID of their own before the pivot: UUID= already finds only the
// old root, the way back as / was frozen, and the old root keeps it
// until finish (LABEL= finds either until then).
type relabelOld struct{ rt *Runtime }

func (*relabelOld) Name() string { return StepRelabelOld }

// Not fatal: the swap is done and the old root released, so there is
// nothing to roll back to; a failure leaves the identities as they were
// before this step, which finish (run whenever the swap succeeded) takes
// away. Failing the swap here would make finish refuse it.
func (*relabelOld) Fatal() bool { return false }

// grubSkip is why relabel-old leaves an old root GRUB boots from.
const grubSkip = "/boot is on the old root and the new root on LVM/md, which GRUB's core.img may not read: without the old root's UUID GRUB could boot nothing; rootswap finish " + grubFlag + " (the disk the machine boots from) reinstalls GRUB, then relabels it"

// grubFlag is the flag finish then needs; status names it in the next
// command.
const grubFlag = "--grub-install DISK"

func (st *relabelOld) Describe(*State) string {
	r := st.rt.Report
	dev := r.Root.Device
	// Only an ext block copy carries the old root's UUID.
	if r.Mkfs != "" || needsNewUUID(r.Root.FSType) {
		return "nothing: the copy has a UUID of its own, so UUID= finds only the old root " + dev + " until finish (a reboot before it boots the old root as / was frozen)"
	}
	if grubReadsOld(st.rt) {
		return "nothing: " + grubSkip
	}
	return "once " + dev + " is released, label it oldroot with a new UUID (tune2fs; e2fsck -f -p first for metadata_csum), so that its UUID and label find only the new root, on a reboot before finish too (with the copied initramfs and GRUB configuration); skipped while it is still mounted"
}

func (st *relabelOld) Do(ctx context.Context, s *State) error {
	rt := st.rt
	dev := rt.Report.Root.Device
	if rt.Report.Mkfs != "" || needsNewUUID(rt.Report.Root.FSType) {
		return nil
	}
	relabel := rt.Relabel
	if relabel == nil {
		relabel = fstools.RelabelOldRoot
	}
	var uuid string
	var err error
	switch {
	case !s.PastNoReturn:
		err = errors.New("skipped: still mounted at " + oldRootPath(s) + ": finish the release by hand first (rootswap status)")
	case grubReadsOld(rt):
		// /boot is on the old root and the copy on LVM/md/crypt: GRUB's
		// core.img finds /boot/grub by the old root's UUID and reads only
		// what it was installed for (no lvm or mdraid module for a plain
		// partition). Without that UUID it would find nothing to boot,
		// where now it boots a root (either) until grub-install.
		return errors.New(dev + ": skipped: " + grubSkip)
	case exists(filepath.Join(rt.SysRoot, "fs/ext4", filepath.Base(dev))):
		// Lazily detached (a PID 1 that cannot re-execute), or held by
		// a mount namespace release could not free: alive in the
		// kernel, so no tool may write it.
		err = errors.New("skipped: unmounted but still alive in the kernel (lazily detached, or held by another mount namespace)")
	default:
		uuid, err = relabel(ctx, rt.Out, nil, rt.SysRoot, rt.ProcRoot, dev)
	}
	if err != nil {
		return fmt.Errorf("%s: %w; then rootswap finish relabels it (or rootswap tune2fs-relabel %s)", dev, err, dev)
	}
	s.OldRelabelled = uuid
	msg := fmt.Sprintf("the old root %s is now LABEL=oldroot UUID=%s: the UUID and label it shared with %s find only the new root", dev, uuid, s.Opts.Target)
	if rt.Journal != nil {
		rt.Journal.Add(journal.Record{Kind: journal.KindNote, Describe: msg})
	}
	return nil
}

func (*relabelOld) Undo(context.Context, *State) error { return nil }

// grubReadsOld: /boot has no mount of its own (it is the old root's) and
// the target is built on other devices (LVM, md, crypt).
func grubReadsOld(rt *Runtime) bool {
	d, err := blockdev.Stat(rt.SysRoot, rt.Report.Target.Path)
	return err == nil && len(d.Slaves) > 0 && !slices.Contains(rt.Report.Submounts, "/boot")
}
