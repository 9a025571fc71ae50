// Package relabel is the tune2fs-relabel applet: it gives a filesystem a
// new label and UUID, so that after the swap the old root can never be
// taken for the new one (fstab's UUID=/LABEL=, the boot loader, blkid).
package relabel

import (
	"context"
	"crypto/rand"
	"fmt"
	"regexp"
	"strings"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/fstools"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "give a filesystem a new label and UUID (old root: oldroot)"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap tune2fs-relabel DEV [--label L] [--uuid random|UUID]

Gives the filesystem on the block device DEV a new label and UUID, so
that LABEL= and UUID= (fstab, the kernel command line, the boot loader)
find only the new root. Prints the old and the new label and UUID.

  --label L   the new label (default oldroot); at most 16 bytes on ext,
              12 on xfs, 255 on btrfs
  --uuid U    random (the default), keep (change the label only), or a
              UUID such as 0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b

  ext2/3/4  tune2fs -U U, then tune2fs -L L; may be mounted read-only,
            except that the UUID of an ext4 with metadata_csum (Debian's
            default) changes only unmounted, unless metadata_csum_seed is
            set: unmount it, or use --uuid keep
  xfs       xfs_admin -L L -U U; must be unmounted
  btrfs     btrfstune -f -U U, then btrfs filesystem label; must be
            unmounted (btrfstune rewrites every metadata block: slow on
            big filesystems)

A filesystem mounted read-write is refused; label and UUID are checked
before anything is changed.
`

// maxLabel is the label size each filesystem stores, in bytes.
var maxLabel = map[string]int{"ext2": 16, "ext3": 16, "ext4": 16, "xfs": 12, "btrfs": 255}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	flags := cli.FlagSet(env, "tune2fs-relabel")
	label := flags.String("label", "oldroot", "new label")
	uuid := flags.String("uuid", "random", "random or a UUID")
	operands, err := cli.Parse(flags, args)
	if err != nil {
		return err
	}
	if len(operands) != 1 {
		return cli.UsageError("one DEV expected, got %d operands", len(operands))
	}
	dev := operands[0]
	newUUID := strings.ToLower(*uuid)
	switch {
	case newUUID == "keep":
	case newUUID == "random":
		newUUID = randomUUID()
	case !uuidRE.MatchString(newUUID):
		return cli.UsageError("--uuid %q: not random, keep, or a UUID like 0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b", *uuid)
	case newUUID == "00000000-0000-0000-0000-000000000000":
		return cli.UsageError("--uuid: the nil UUID identifies nothing")
	}
	if *label == "" || strings.ContainsRune(*label, 0) {
		return cli.UsageError("--label must be non-empty text")
	}

	t, err := fstools.Inspect(env.SysRoot, env.ProcRoot, dev)
	if err != nil {
		return err
	}
	if err := fstools.Busy(env.SysRoot, env.ProcRoot, dev); err != nil {
		return err
	}
	fs := t.FS
	limit, ok := maxLabel[fs.Type]
	if !ok {
		return fmt.Errorf("%s: %s; tune2fs-relabel handles ext2/3/4, xfs and btrfs", dev, fs)
	}
	if len(*label) > limit {
		return cli.UsageError("--label %q is %d bytes; %s labels hold at most %d", *label, len(*label), fs.Type, limit)
	}
	if m, ok := t.MountedRW(); ok {
		return fmt.Errorf("%s is mounted read-write at %s; relabelling a live filesystem is refused (remount it read-only or unmount it)", dev, m.Point)
	}
	if len(t.Mounts) > 0 && !fs.IsExt() {
		return fmt.Errorf("%s is mounted at %s; %s can be relabelled only unmounted", dev, t.Where(), fs.Type)
	}
	if newUUID == "keep" {
		newUUID = fs.UUID
	}
	changeUUID := newUUID != fs.UUID
	if len(t.Mounts) > 0 && changeUUID && fs.Ext.UUIDChangeNeedsUnmount() {
		return fmt.Errorf("%s is mounted at %s; the UUID of an ext filesystem with metadata_csum and without metadata_csum_seed changes only unmounted (unmount it, or keep the UUID with --uuid keep)", dev, t.Where())
	}

	run := fstools.Runner{Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv, Echo: env.Stdout}
	tools := map[string][]string{"xfs": {"xfs_admin", "xfs_db"}, "btrfs": {"btrfstune", "btrfs"}}[fs.Type]
	if fs.IsExt() {
		tools = []string{"tune2fs"}
	}
	if err := run.Require(tools...); err != nil {
		return err
	}
	env.Printf("tune2fs-relabel: %s: %s\n", dev, fs)
	env.Printf("  old: label %q UUID %s\n", fs.Label, fs.UUID)
	env.Printf("  new: label %q UUID %s\n", *label, newUUID)

	switch {
	case fs.IsExt():
		// The UUID first, alone: tune2fs writes a label given with a UUID
		// it then refuses to change.
		if changeUUID {
			err = run.Tune2fs(ctx, dev, "", newUUID)
		}
		if err == nil {
			err = run.Tune2fs(ctx, dev, *label, "")
		}
	case fs.Type == "xfs":
		if !changeUUID {
			newUUID = ""
		}
		err = run.XfsAdmin(ctx, dev, *label, newUUID)
	case fs.Type == "btrfs":
		if changeUUID {
			err = run.Btrfstune(ctx, dev, newUUID)
		}
		if err == nil {
			err = run.BtrfsLabel(ctx, dev, *label)
		}
	}
	if err != nil {
		return err
	}
	after, err := fstools.DetectPath(dev)
	if err != nil {
		return err
	}
	if after.Label != *label || after.UUID != newUUID {
		// A mounted ext filesystem may not have written its superblock
		// back yet; say what the device shows rather than guess.
		env.Printf("tune2fs-relabel: the device now shows label %q UUID %s\n", after.Label, after.UUID)
		return nil
	}
	env.Printf("tune2fs-relabel: done: label %q UUID %s\n", after.Label, after.UUID)
	return nil
}

// randomUUID is a version 4 UUID.
func randomUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
