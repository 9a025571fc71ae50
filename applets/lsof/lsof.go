// Package lsof is the lsof applet.
package lsof

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "list open files, like lsof, safe on dead NFS"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap lsof [-p PID] [--deleted] [--writable] [--json] [PATH...]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "lsof")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #2)")
}
