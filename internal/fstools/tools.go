package fstools

import (
	"context"
	"fmt"
	"strconv"
)

// CheckMode is how far a checker may go.
type CheckMode int

const (
	// ReadOnly reports problems and changes nothing (e2fsck -n,
	// xfs_repair -n, btrfs check --readonly).
	ReadOnly CheckMode = iota
	// Preen fixes what is safe to fix without a human (e2fsck -p); xfs
	// and btrfs have no such mode and check read-only.
	Preen
	// Repair fixes everything it can (e2fsck -y, xfs_repair, btrfs check
	// --repair, which btrfs itself warns against).
	Repair
)

func (m CheckMode) String() string {
	return [...]string{"read-only", "preen", "repair"}[m]
}

// CheckTool names the tool that checks a filesystem type.
func CheckTool(fstype string) (string, error) {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return "e2fsck", nil
	case "xfs":
		return "xfs_repair", nil
	case "btrfs":
		return "btrfs", nil
	}
	return "", fmt.Errorf("no checker for %s", describeType(fstype))
}

func describeType(fstype string) string {
	if fstype == "" {
		return "an unrecognised device (no filesystem signature found)"
	}
	return FS{Type: fstype}.String()
}

// CheckArgs is the command line Check runs for fstype on dev.
func CheckArgs(fstype, dev string, mode CheckMode) ([]string, error) {
	tool, err := CheckTool(fstype)
	if err != nil {
		return nil, err
	}
	switch tool {
	case "e2fsck":
		flag := map[CheckMode]string{ReadOnly: "-n", Preen: "-p", Repair: "-y"}[mode]
		return []string{"e2fsck", "-f", "-C0", flag, dev}, nil
	case "xfs_repair":
		if mode == Repair {
			return []string{"xfs_repair", "-e", dev}, nil
		}
		return []string{"xfs_repair", "-n", dev}, nil
	default:
		if mode == Repair {
			return []string{"btrfs", "check", "--repair", dev}, nil
		}
		return []string{"btrfs", "check", "--readonly", dev}, nil
	}
}

// Check runs the checker of fstype on dev. A non-zero exit is a
// *ToolError with the status explained.
func (r Runner) Check(ctx context.Context, fstype, dev string, mode CheckMode) error {
	argv, err := CheckArgs(fstype, dev, mode)
	if err != nil {
		return err
	}
	explain := meaningFunc(E2fsckMeaning)
	switch argv[0] {
	case "xfs_repair":
		explain = XfsRepairMeaning(mode != Repair)
	case "btrfs":
		explain = btrfsCheckMeaning
	}
	return r.run(ctx, explain, argv[0], argv[1:]...)
}

// Resize2fs grows or shrinks an ext filesystem to size (resize2fs units:
// a number with K, M, G, T or s suffix; "" means the device size),
// printing progress (-p).
func (r Runner) Resize2fs(ctx context.Context, dev, size string) error {
	args := []string{"-p", dev}
	if size != "" {
		args = append(args, size)
	}
	return r.run(ctx, failed, "resize2fs", args...)
}

// XfsGrowfs grows the xfs filesystem mounted at mountpoint to blocks
// filesystem blocks, or to the device size when blocks is 0.
func (r Runner) XfsGrowfs(ctx context.Context, mountpoint string, blocks int64) error {
	args := []string{"-d"}
	if blocks > 0 {
		args = []string{"-D", strconv.FormatInt(blocks, 10)}
	}
	return r.run(ctx, failed, "xfs_growfs", append(args, mountpoint)...)
}

// BtrfsResize resizes the btrfs filesystem mounted at mountpoint to size
// ("max" or a byte count).
func (r Runner) BtrfsResize(ctx context.Context, mountpoint, size string) error {
	return r.run(ctx, failed, "btrfs", "filesystem", "resize", size, mountpoint)
}

// NewUUIDArgs is the command line that gives the unmounted filesystem
// of type fstype on dev a new random UUID without touching its data:
//   - xfs: xfs_admin -U generate. On a v5 (crc) filesystem only the
//     superblocks change (the metadata keep the old UUID as meta_uuid,
//     Linux 4.3 and later). xfs_db refuses a dirty log rather than lose
//     it; a filesystem remounted read-only or unmounted has a clean one.
//     It then still exits 0 (xfsprogs 6.1): read the UUID back.
//   - btrfs: btrfstune -m, the fsid changed in the superblocks only (the
//     metadata_uuid feature, Linux 5.0 and later); -u would rewrite every
//     metadata block.
//   - ext2/3/4: tune2fs -U random.
func NewUUIDArgs(fstype, dev string) ([]string, error) {
	switch fstype {
	case "xfs":
		return []string{"xfs_admin", "-U", "generate", dev}, nil
	case "btrfs":
		return []string{"btrfstune", "-m", dev}, nil
	case "ext2", "ext3", "ext4":
		return []string{"tune2fs", "-U", "random", dev}, nil
	}
	return nil, fmt.Errorf("no tool gives %s a new UUID", describeType(fstype))
}

// MkfsArgs is the command that makes a new filesystem of type fstype on
// dev, labelled label (none when empty or longer than the type stores),
// overwriting what is there: the file-mode swap's target.
func MkfsArgs(fstype, dev, label string) ([]string, error) {
	force, max := "-f", 12
	switch fstype {
	case "ext2", "ext3", "ext4":
		force, max = "-F", 16
	case "btrfs":
		max = 255
	case "xfs":
	default:
		return nil, fmt.Errorf("rootswap makes ext2/3/4, xfs and btrfs, not %s", describeType(fstype))
	}
	argv := []string{"mkfs." + fstype, "-q", force}
	if label != "" && len(label) <= max {
		argv = append(argv, "-L", label)
	}
	return append(argv, dev), nil
}
