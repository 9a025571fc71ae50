package swap

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/ext"
	"github.com/rootswap/rootswap/internal/fstools"
)

// The read-only window holds only what the copy needs to be trusted.
// Growing happens online once the services are back (resize2fs,
// xfs_growfs and btrfs all grow a mounted filesystem), and the forced
// check of the copy runs inside the window only where it is needed: the
// copy is read back and proven equal to / as the kernel left it clean at
// remount-ro, so the same read-only check of the old root, once it is
// released, proves the copy consistent without stopping anything.

// growPlan is how the copy reaches its device's size; plan and run
// decide it the same way.
type growPlan struct {
	need    bool   // the target is larger than /
	offline string // why resize2fs grows it unmounted, in the window ("" online)
}

// capSysResource is CAP_SYS_RESOURCE's bit: ext4's online resize ioctl
// wants it (containers often drop it).
const capSysResource = 24

func planGrow(rt *Runtime) growPlan {
	r := rt.Report
	g := growPlan{need: r.Target.Size > r.Root.Size}
	if !g.need || !fstools.IsExt(r.Root.FSType) {
		return g
	}
	switch {
	case r.Root.FSType == "ext2":
		g.offline = "ext2 has no journal to grow it safely mounted"
	case !hasCap(rt.ProcRoot, capSysResource):
		g.offline = "this engine lacks CAP_SYS_RESOURCE, which ext4's online resize needs"
	default:
		if why := onlineResizable(r.Root.Device); why != "" {
			g.offline = why
		}
	}
	return g
}

// onlineResizable says why the ext filesystem on dev cannot grow mounted
// ("" when it can): the kernel adds group descriptors online only into
// reserved GDT blocks (resize_inode) or as meta_bg groups.
func onlineResizable(dev string) string {
	f, err := os.Open(dev)
	if err != nil {
		return "its superblock is unreadable: " + err.Error()
	}
	defer f.Close()
	sb, err := ext.ReadSuperblock(f)
	if err != nil {
		return err.Error()
	}
	if sb.FeatureCompat&ext.CompatResizeInode == 0 && sb.FeatureIncompat&ext.IncompatMetaBG == 0 {
		return "it has neither resize_inode nor meta_bg, so the kernel cannot add group descriptors to it mounted"
	}
	return ""
}

// hasCap reports whether this process's effective set holds capability
// bit c (/proc/self/status CapEff).
func hasCap(procRoot string, c uint) bool {
	b, err := os.ReadFile(procRoot + "/self/status")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<c) != 0
		}
	}
	return false
}

// growOnlineArgv is the command that grows the mounted root (device dev
// of type fstype, mounted at mountpoint) to its whole device.
func growOnlineArgv(fstype, dev, mountpoint string) []string {
	switch fstype {
	case "xfs":
		return []string{"xfs_growfs", "-d", mountpoint}
	case "btrfs":
		return []string{"btrfs", "filesystem", "resize", "max", mountpoint}
	case "ext3", "ext4":
		return []string{"resize2fs", dev}
	}
	return nil
}

// checkInWindow says whether the forced check of the copy runs inside
// the read-only window, and why.
func checkInWindow(rt *Runtime, s *State) (bool, string) {
	if s.Opts.Check == CheckAlways {
		return true, "--fsck always"
	}
	if g := planGrow(rt); g.need && g.offline != "" {
		return true, "resize2fs grows the copy unmounted (" + g.offline + "), which wants a freshly checked filesystem"
	}
	if why := frozenUnclean(rt); why != "" {
		return true, why
	}
	return false, ""
}

// frozenUnclean says why / as frozen cannot vouch for its copy: errors
// recorded in an ext superblock, or a journal left to replay. Other
// types are quiesced by the remount (xfs writes its log clean).
func frozenUnclean(rt *Runtime) string {
	r := rt.Report
	if !fstools.IsExt(r.Root.FSType) {
		return ""
	}
	f, err := os.Open(r.Root.Device)
	if err != nil {
		return "the superblock of / is unreadable: " + err.Error()
	}
	defer f.Close()
	sb, err := ext.ReadSuperblock(f)
	switch {
	case err != nil:
		return err.Error()
	case sb.State&2 != 0: // EXT2_ERROR_FS
		return "the superblock of / records errors"
	}
	return ""
}

// ---- grow -----------------------------------------------------------------

// growRoot grows the new root, mounted at /, once the services are back.
type growRoot struct{ rt *Runtime }

func (*growRoot) Name() string { return "grow" }

// A failed grow leaves a valid filesystem of the old size: reported.
func (*growRoot) Fatal() bool { return false }
func (st *growRoot) Describe(s *State) string {
	r := st.rt.Report
	g := planGrow(st.rt)
	argv := growOnlineArgv(r.Root.FSType, s.Opts.Target, "/")
	switch {
	case !g.need:
		return "the target is the size of /: nothing to grow"
	case g.offline != "" || argv == nil:
		return "nothing: resize grew the copy unmounted"
	}
	return fmt.Sprintf("grow the new root online, mounted at / with the services running, from %s to the device's %s (%s)", human(r.Root.Size), human(r.Target.Size), strings.Join(argv, " "))
}
func (st *growRoot) Do(ctx context.Context, s *State) error {
	r := st.rt.Report
	g := planGrow(st.rt)
	argv := growOnlineArgv(r.Root.FSType, s.Opts.Target, "/")
	if !g.need || g.offline != "" || argv == nil {
		return nil
	}
	out, err := st.rt.Command(ctx, argv[0], argv[1:]...)
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	if last := lastLine(out); last != "" {
		st.rt.logf("    %s: %s", argv[0], last)
	}
	return nil
}
func (*growRoot) Undo(context.Context, *State) error { return nil }

// ---- fsck-old -------------------------------------------------------------

// checkOld checks the released old root read-only when the copy was not
// checked in the window: the two were equal, block for block, when / was
// frozen, so a clean old root proves a consistent copy.
type checkOld struct{ rt *Runtime }

func (*checkOld) Name() string { return "fsck-old" }

// The swap is done by now: a finding is reported with what to do.
func (*checkOld) Fatal() bool { return false }
func (st *checkOld) Describe(s *State) string {
	if in, _ := checkInWindow(st.rt, s); in {
		return "nothing: the copy was checked before the pivot"
	}
	args, err := fstools.CheckArgs(st.rt.Report.Root.FSType, st.rt.Report.Root.Device, fstools.ReadOnly)
	if err != nil {
		return "check the old root: " + err.Error()
	}
	return fmt.Sprintf("%s, once released (read-only: it equals the copy as / was frozen, so this proves the copy consistent without a forced check in the read-only window)", strings.Join(args, " "))
}
func (st *checkOld) Do(ctx context.Context, s *State) error {
	if in, _ := checkInWindow(st.rt, s); in {
		return nil
	}
	if !s.PastNoReturn {
		return fmt.Errorf("the old root is still mounted: not checked; check the new root at its next boot (fsck -f)")
	}
	r := st.rt.Report
	args, err := fstools.CheckArgs(r.Root.FSType, r.Root.Device, fstools.ReadOnly)
	if err != nil {
		return err
	}
	if args[0] == "e2fsck" {
		args = []string{"e2fsck", "-f", "-n", r.Root.Device} // no -C0 bar in a log file
	}
	out, err := st.rt.Command(ctx, args[0], args[1:]...)
	if err != nil {
		return fmt.Errorf("%s: %w: the new root began as a copy of it, so it likely has the same faults: check it at its next boot (touch /forcefsck, or fsck -f from a rescue system)\n%s", strings.Join(args, " "), err, out)
	}
	st.rt.logf("    %s: clean", strings.Join(args, " "))
	return nil
}
func (*checkOld) Undo(context.Context, *State) error { return nil }
