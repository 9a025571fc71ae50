// Package pivot is the pivot applet.
package pivot

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "pivot_root into NEWROOT, old root to PUTOLD, propagation made private first"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap pivot NEWROOT [PUTOLD]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "pivot")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #4)")
}
