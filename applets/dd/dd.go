// Package dd is the dd applet.
package dd

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "GNU dd plus used-blocks copy, zstd backup and verify"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap dd [if=FILE] [of=FILE] [bs=N] [blocks=used|all|auto] [backup=FILE.zst] [verify=yes] [OPERAND]...
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "dd")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #3)")
}
