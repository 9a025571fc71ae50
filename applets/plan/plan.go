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
const Usage = `usage: rootswap plan --to DEV [--json] [--force] [--kill] [--no-bpf] [--stop SVC]... [--keep SVC]...

Inspects the running system and changes nothing: deleted-but-open files,
writers on /, loop images, network and FUSE mounts, unix sockets, mount
namespaces holding /, submounts, the init system, the target device,
memory and tools; then the numbered steps run would take.
Exit status: 0 run can proceed, 3 blocked (each blocker with its fix),
2 usage, 1 error.
  --to DEV     the new root's block device
  --json       the report as JSON
  --force      accept a target that carries a filesystem or other signature
  --kill       writers that belong to no service will be killed, not block
  --no-bpf     scan processes through /proc only (no BPF iterators)
  --stop SVC   stop this service for the copy too
  --keep SVC   never stop or restart this service
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "plan")
	to := fs.String("to", "", "")
	asJSON := fs.Bool("json", false, "")
	force := fs.Bool("force", false, "")
	kill := fs.Bool("kill", false, "")
	noBPF := fs.Bool("no-bpf", false, "")
	var stop, keep cli.StringList
	fs.Var(&stop, "stop", "")
	fs.Var(&keep, "keep", "")
	rest, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.UsageError("unexpected argument %q", rest[0])
	}
	if *to == "" {
		return cli.UsageError("--to DEV is required")
	}
	opts := swap.DefaultOptions(*to)
	opts.Stop, opts.Keep, opts.Kill, opts.NoBPF = stop, keep, *kill, *noBPF
	rt, err := swap.NewRuntime(ctx, env.ProcRoot, env.SysRoot, io.Discard)
	if err != nil {
		return err
	}
	report, steps, state, err := swap.Plan(ctx, rt, opts, *force)
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
