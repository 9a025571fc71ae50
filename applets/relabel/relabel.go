// Package relabel is the tune2fs-relabel applet.
package relabel

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "give a filesystem a new label and UUID (old root: oldroot)"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap tune2fs-relabel DEV [--label L] [--uuid random|UUID]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "tune2fs-relabel")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #3)")
}
