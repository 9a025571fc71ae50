// Package run is the run applet.
package run

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "swap / onto DEV: copy, pivot, move mounts, restart, roll back on failure"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap run --to DEV [--backup FILE.zst] [--stop SVC]... [--keep SVC]... [--yes]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "run")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #4)")
}
