// Package plan is the plan applet.
package plan

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "read-only preflight: can / be swapped onto DEV, and what run would do"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap plan --to DEV [--json] [--force]
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "plan")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #2)")
}
