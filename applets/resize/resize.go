// Package resize is the resize applet: it grows (or, where the filesystem
// allows, shrinks) a filesystem to its device's size or to a given size
// with the filesystem's own tool.
package resize

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/fstools"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "grow or shrink a filesystem to the device size or SIZE"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap resize DEV [SIZE]

Resizes the filesystem on the block device DEV to fill the device, or to
SIZE. SIZE is read the way resize2fs reads it: a number of filesystem
blocks, or a number with a suffix s (512-byte sectors), K, M, G or T
(powers of 1024). A SIZE larger than the device is refused before
anything is done. What will be run is printed before it runs.

  ext2/3/4  resize2fs -p. Mounted: grows online, never shrinks.
            Unmounted: e2fsck -f -p first (resize2fs wants a freshly
            checked filesystem), then grow or shrink.
  xfs       xfs_growfs on the mount point; an unmounted xfs is mounted
            on a private temporary directory for it. xfs cannot shrink.
  btrfs     btrfs filesystem resize SIZE|max on the mount point, mounting
            privately when needed; grows and shrinks, to 256 MiB at least
            (the kernel's limit).

A filesystem mounted read-only is refused: online resizing writes.
Growing a mounted ext filesystem needs CAP_SYS_RESOURCE (containers
often drop it); without it the resize is refused before it starts.
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	flags := cli.FlagSet(env, "resize")
	operands, err := cli.Parse(flags, args)
	if err != nil {
		return err
	}
	if len(operands) < 1 || len(operands) > 2 {
		return cli.UsageError("DEV and an optional SIZE expected, got %d operands", len(operands))
	}
	dev := operands[0]
	t, err := fstools.Inspect(env.SysRoot, env.ProcRoot, dev)
	if err != nil {
		return err
	}
	if err := fstools.Busy(env.SysRoot, env.ProcRoot, dev); err != nil {
		return err
	}
	fs := t.FS
	if !fs.IsFilesystem() {
		return fmt.Errorf("%s: %s; resize handles ext2/3/4, xfs and btrfs", dev, fs)
	}
	if fs.Size <= 0 || fs.BlockSize <= 0 {
		return fmt.Errorf("%s: %s: the superblock gives no size; not resizing", dev, fs)
	}

	// The target size in bytes, a whole number of filesystem blocks.
	target := t.Dev.Size / int64(fs.BlockSize) * int64(fs.BlockSize)
	toDevice := true
	if len(operands) == 2 {
		n, err := ParseSize(operands[1], fs.BlockSize)
		if err != nil {
			return cli.UsageError("SIZE %q: %v", operands[1], err)
		}
		if n > t.Dev.Size {
			return fmt.Errorf("SIZE %s (%s) is larger than %s (%s) (nothing was changed)",
				operands[1], human(n), dev, human(t.Dev.Size))
		}
		target, toDevice = n/int64(fs.BlockSize)*int64(fs.BlockSize), n >= t.Dev.Size/int64(fs.BlockSize)*int64(fs.BlockSize)
	}
	shrink := target < fs.Size
	if target == fs.Size {
		env.Printf("resize: %s: %s\n", dev, fs)
		env.Printf("resize: already %s; nothing to do\n", human(fs.Size))
		return nil
	}
	run := fstools.Runner{Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv, Echo: env.Stdout}
	if err := refuse(env, run, t, target, shrink); err != nil {
		return fmt.Errorf("%w (nothing was changed)", err)
	}

	env.Printf("resize: %s: %s\n", dev, fs)
	if rw, ok := t.MountedRW(); ok {
		env.Printf("resize: mounted read-write at %s\n", rw.Point)
	}
	how := "to " + human(target)
	if toDevice {
		how += " (the size of the device)"
	}
	verb := "growing"
	if shrink {
		verb = "shrinking"
	}
	env.Printf("resize: %s from %s %s\n", verb, human(fs.Size), how)

	blocks := target / int64(fs.BlockSize)
	switch {
	case fs.IsExt():
		err = resizeExt(ctx, env, run, t, blocks, toDevice)
	case fs.Type == "xfs":
		if toDevice {
			blocks = 0 // xfs_growfs -d: the whole device
		}
		err = fstools.WithMount(t.Mounts, t.Dev.Dev(), dev, "xfs", func(dir string, temporary bool) error {
			sayMount(env, dir, temporary)
			return run.XfsGrowfs(ctx, dir, blocks)
		})
	case fs.Type == "btrfs":
		size := "max"
		if !toDevice {
			size = strconv.FormatInt(target, 10)
		}
		err = fstools.WithMount(t.Mounts, t.Dev.Dev(), dev, "btrfs", func(dir string, temporary bool) error {
			sayMount(env, dir, temporary)
			return run.BtrfsResize(ctx, dir, size)
		})
	}
	if err != nil {
		return err
	}
	if after, err := fstools.DetectPath(dev); err == nil && after.Size > 0 {
		env.Printf("resize: %s is now %s\n", dev, human(after.Size))
	}
	return nil
}

// btrfsMinSize is the smallest size the kernel resizes a btrfs device to
// (btrfs_ioctl_resize answers EINVAL below it).
const btrfsMinSize = 256 << 20

// refuse says why the resize cannot be done, before anything is done.
func refuse(env *cli.Env, run fstools.Runner, t *fstools.Target, target int64, shrink bool) error {
	dev, fs := t.Dev.Path, t.FS
	if len(t.Mounts) > 0 {
		if _, rw := t.MountedRW(); !rw {
			return fmt.Errorf("%s is mounted read-only at %s; resizing a mounted filesystem needs it read-write (or unmount it)", dev, t.Mounts[0].Point)
		}
	}
	switch {
	case fs.IsExt():
		if len(t.Mounts) > 0 && shrink {
			return fmt.Errorf("%s is mounted at %s; ext filesystems shrink only unmounted", dev, t.Mounts[0].Point)
		}
		if len(t.Mounts) > 0 && !hasCapSysResource(env) {
			// The kernel answers EXT4_IOC_RESIZE_FS with EPERM without it;
			// resize2fs would only say "Permission denied".
			return fmt.Errorf("%s is mounted at %s and growing it online needs CAP_SYS_RESOURCE, which this process lacks (a container?); unmount it and resize again", dev, t.Mounts[0].Point)
		}
		return run.Require("e2fsck", "resize2fs")
	case fs.Type == "xfs":
		if shrink {
			return fmt.Errorf("%s: xfs cannot shrink (xfs_growfs only grows); make a smaller filesystem and copy the files instead", dev)
		}
		return run.Require("xfs_growfs")
	default:
		if target < btrfsMinSize {
			return fmt.Errorf("%s: the kernel resizes btrfs only to %s or more, not to %s", dev, human(btrfsMinSize), human(target))
		}
		return run.Require("btrfs")
	}
}

func resizeExt(ctx context.Context, env *cli.Env, run fstools.Runner, t *fstools.Target, blocks int64, toDevice bool) error {
	dev := t.Dev.Path
	size := ""
	if !toDevice {
		size = strconv.FormatInt(blocks, 10) // in filesystem blocks: resize2fs's unit without a suffix
	}
	if len(t.Mounts) == 0 {
		err := run.Check(ctx, t.FS.Type, dev, fstools.Preen)
		var te *fstools.ToolError
		if errors.As(err, &te) && te.Fixed {
			env.Printf("resize: e2fsck: %s; going on\n", te.Meaning)
		} else if err != nil {
			return fmt.Errorf("checking before resizing, nothing resized: %w", err)
		}
	}
	return run.Resize2fs(ctx, dev, size)
}

// hasCapSysResource reads the effective capabilities of this thread; an
// unreadable status file counts as having it (the tool will tell).
func hasCapSysResource(env *cli.Env) bool {
	const capSysResource = 24
	b, err := os.ReadFile(env.Proc("thread-self", "status"))
	if err != nil {
		if b, err = os.ReadFile(env.Proc("self", "status")); err != nil {
			return true
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err != nil || caps&(1<<capSysResource) != 0
		}
	}
	return true
}

func sayMount(env *cli.Env, dir string, temporary bool) {
	if temporary {
		env.Printf("resize: mounted on %s for the resize (unmounted again after)\n", dir)
	}
}

// ParseSize reads SIZE the way resize2fs does: a plain number counts
// filesystem blocks of blockSize bytes, a suffix s counts 512-byte
// sectors, and K, M, G, T are powers of 1024 bytes (either case).
func ParseSize(s string, blockSize int) (int64, error) {
	if s == "" {
		return 0, errors.New("empty")
	}
	unit := int64(blockSize)
	num := s
	switch last := s[len(s)-1]; last {
	case 's':
		unit, num = 512, s[:len(s)-1]
	case 'k', 'K', 'm', 'M', 'g', 'G', 't', 'T':
		unit = 1 << (10 * (1 + strings.IndexByte("kmgt", last|0x20)))
		num = s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("not a positive number with an optional s, K, M, G or T suffix")
	}
	if n > (1<<62)/unit {
		return 0, errors.New("too large")
	}
	return n * unit, nil
}

func human(n int64) string { return humanize.IBytes(uint64(n)) }
