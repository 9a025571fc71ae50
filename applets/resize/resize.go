// Package resize is the resize applet.
package resize

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "grow or shrink a filesystem to the device size or SIZE"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap resize DEV [SIZE]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "resize")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #3)")
}
