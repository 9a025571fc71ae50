// Package plan is the plan applet: a read-only preflight of a swap of /
// onto a device, printing exactly the steps run would take.
package plan

import (
	"context"
	"encoding/json"
	"io"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/swap"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "read-only preflight: can / be swapped onto DEV, and what run would do"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap plan --to DEV [--json] [any flag of run]

Inspects the running system and changes nothing: deleted-but-open files,
writers on /, loop images, network and FUSE mounts, unix sockets, mount
namespaces holding /, submounts, the init system, the target device,
memory, tools and the lifeline's keys; then the numbered steps run would
take with the same flags, timeouts included. It takes every flag of run
and is its contract: exit 0 means run, with those flags, will not refuse.
Exit status: 0 run can proceed, 3 blocked (each blocker with its fix),
2 usage, 1 error.
  --json                the report as JSON
  --yes                 accepted (and ignored) so that run's command line works as is
` + swap.FlagsUsage

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "plan")
	flags := swap.AddFlags(fs)
	asJSON := fs.Bool("json", false, "")
	fs.Bool("yes", false, "")
	rest, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.UsageError("unexpected argument %q", rest[0])
	}
	opts, err := flags.Options(env)
	if err != nil {
		return err
	}
	rt, err := swap.NewRuntime(ctx, env.ProcRoot, env.SysRoot, io.Discard)
	if err != nil {
		return err
	}
	report, steps, state, err := swap.Plan(ctx, rt, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		var list []map[string]string
		for _, st := range steps {
			list = append(list, map[string]string{"name": st.Name(), "describe": st.Describe(state)})
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"report": report, "steps": list, "ok": len(report.Blockers) == 0}); err != nil {
			return err
		}
	} else {
		report.Print(env.Stdout, steps, state)
	}
	if len(report.Blockers) > 0 {
		return cli.ExitCode(3)
	}
	return nil
}
