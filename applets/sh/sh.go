// Package sh is the sh applet.
package sh

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "rescue shell: applets and basic commands in-process"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap sh [-c CMD] [SCRIPT]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "sh")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #6)")
}
