// Package fsck is the fsck applet.
package fsck

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "check a filesystem with its own checker, exit bits explained"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap fsck DEV [-n|-p|-y]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "fsck")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #3)")
}
