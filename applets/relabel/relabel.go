// Package relabel is the tune2fs-relabel applet: it gives a filesystem a
// new label and UUID, so that after the swap the old root can never be
// taken for the new one (fstab's UUID=/LABEL=, the boot loader, blkid).
package relabel

import (
	"context"
	"errors"
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
            set: unmount it, or use --uuid keep. Unmounted, tune2fs then
            rewrites every checksum and wants a freshly checked
            filesystem: e2fsck -f -p runs first
  xfs       xfs_admin -L L -U U; must be unmounted
  btrfs     btrfstune -f -U U, then btrfs filesystem label; must be
            unmounted (btrfstune rewrites every metadata block: slow on
            big filesystems)

A filesystem mounted read-write is refused; label and UUID are checked
before anything is changed.
`

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
	case newUUID == "keep", newUUID == "random":
	case !uuidRE.MatchString(newUUID):
		return cli.UsageError("--uuid %q: not random, keep, or a UUID like 0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b", *uuid)
	case newUUID == "00000000-0000-0000-0000-000000000000":
		return cli.UsageError("--uuid: the nil UUID identifies nothing")
	}
	if *label == "" || strings.ContainsRune(*label, 0) {
		return cli.UsageError("--label must be non-empty text")
	}

	run := fstools.Runner{Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv, Echo: env.Stdout}
	_, err = run.Relabel(ctx, env.SysRoot, env.ProcRoot, dev, *label, newUUID)
	if errors.Is(err, fstools.ErrLabel) {
		return cli.UsageError("--%v", err)
	}
	if err != nil {
		return err
	}
	// What the device shows (a mounted ext filesystem may not have
	// written its superblock back yet).
	after, err := fstools.DetectPath(dev)
	if err == nil {
		env.Printf("tune2fs-relabel: the device now shows label %q UUID %s\n", after.Label, after.UUID)
	}
	return err
}
