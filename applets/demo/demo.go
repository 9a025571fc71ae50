// Package demo is the demo applet.
package demo

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "a live swap inside a throwaway busybox server (needs root, loop devices)"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap demo [--keep]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "demo")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #4)")
}
