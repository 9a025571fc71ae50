// Package mountmove is the mount-move applet.
package mountmove

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "move every mount below OLDROOT back to the same path under /"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap mount-move OLDROOT [--dry-run]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "mount-move")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #4)")
}
