// Package rollback is the rollback applet.
package rollback

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "undo the journaled steps of a failed or unconfirmed swap"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap rollback 
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "rollback")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #4)")
}
