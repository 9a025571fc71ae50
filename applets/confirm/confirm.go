// Package confirm is the confirm applet.
package confirm

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "confirm a swap from a new login; the old root is then released"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap confirm 
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "confirm")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #6)")
}
