// Package telinitu is the telinit-u applet.
package telinitu

import (
	"context"
	"errors"

	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "re-execute PID 1 in place (systemd, sysvinit, OpenRC)"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap telinit-u 
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "telinit-u")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	return errors.New("not implemented yet (issue #4)")
}
