// Package fsck is the fsck applet: it runs the distribution's checker for
// whatever filesystem is on a device and explains the exit status.
package fsck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/fstools"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "check a filesystem with its own checker, exit bits explained"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap fsck DEV [-n|-p|-y]

Runs the checker of the filesystem found on DEV (a block device or an
image file), its progress passed through, then says what its exit status
means. The exit status is the checker's.

  -n   check only, change nothing (the default)
  -p   fix what is safe to fix without asking (xfs, btrfs: check only)
  -y   fix everything the checker can

  ext2/3/4  e2fsck -f -C0 -n|-p|-y
  xfs       xfs_repair -n; with -y xfs_repair -e (repairs)
  btrfs     btrfs check --readonly; with -y btrfs check --repair, which
            the btrfs developers advise against: back up first

A filesystem mounted read-write is only checked with -n.
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "fsck")
	readOnly := fs.Bool("n", false, "check only")
	preen := fs.Bool("p", false, "fix what is safe")
	yes := fs.Bool("y", false, "fix everything")
	operands, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(operands) != 1 {
		return cli.UsageError("one DEV expected, got %d operands", len(operands))
	}
	mode := fstools.ReadOnly
	switch {
	case countTrue(*readOnly, *preen, *yes) > 1:
		return cli.UsageError("-n, -p and -y exclude each other")
	case *preen:
		mode = fstools.Preen
	case *yes:
		mode = fstools.Repair
	}
	dev := operands[0]

	detected, err := fstools.DetectPath(dev)
	if err != nil {
		return err
	}
	if !detected.IsFilesystem() {
		return fmt.Errorf("%s: %s; fsck handles ext2/3/4, xfs and btrfs", dev, detected)
	}
	if mode != fstools.ReadOnly {
		if err := fstools.Busy(env.SysRoot, env.ProcRoot, dev); err != nil {
			return err
		}
		if err := refuseMountedRW(env, dev); err != nil {
			return err
		}
	}
	argv, err := fstools.CheckArgs(detected.Type, dev, mode)
	if err != nil {
		return err
	}
	run := fstools.Runner{Stdout: env.Stdout, Stderr: env.Stderr, Getenv: env.Getenv}
	if err := run.Require(argv[0]); err != nil {
		return err
	}
	env.Printf("fsck: %s: %s\n", dev, detected)
	if detected.Type == "btrfs" && mode == fstools.Repair {
		env.Errorf("fsck: WARNING: btrfs check --repair can make a damaged btrfs worse; the btrfs developers advise it only as a last resort, after a backup (Ctrl-C within its 10-second countdown stops it)\n")
	}
	if mode == fstools.Preen && detected.Type != "ext2" && detected.Type != "ext3" && detected.Type != "ext4" {
		env.Printf("fsck: %s has no preen mode; checking read-only\n", detected.Type)
	}
	env.Printf("fsck: running %s\n", strings.Join(argv, " "))
	err = run.Check(ctx, detected.Type, dev, mode)
	var te *fstools.ToolError
	switch {
	case err == nil:
		env.Printf("fsck: %s exit status 0: no errors\n", argv[0])
		return nil
	case errors.As(err, &te):
		env.Printf("fsck: %s exit status %d: %s\n", argv[0], te.Code, te.Meaning)
		if te.Code < 0 {
			return cli.ExitCode(8)
		}
		return cli.ExitCode(te.Code)
	}
	return err
}

// refuseMountedRW stops a repair of a filesystem mounted read-write,
// which the kernel would keep changing under the checker. Image files
// are not looked up (a loop device over one is its own device).
func refuseMountedRW(env *cli.Env, dev string) error {
	if fi, err := os.Stat(dev); err != nil || fi.Mode().IsRegular() {
		return err
	}
	t, err := fstools.Inspect(env.SysRoot, env.ProcRoot, dev)
	if err != nil {
		return err
	}
	if m, ok := t.MountedRW(); ok {
		return fmt.Errorf("%s is mounted read-write at %s; repairing it now would corrupt it (unmount it, or check with -n)", dev, m.Point)
	}
	return nil
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
