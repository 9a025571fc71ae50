// Package finish is the finish applet.
package finish

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "after a confirmed swap: fstab, initramfs, bootloader, relabel old root"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap finish [--wipe-old] [--grub-install DISK] [--dry-run]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "finish")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #5)")
}
