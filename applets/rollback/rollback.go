// Package rollback is the rollback applet: put the old root back.
package rollback

import (
	"context"
	"fmt"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/swap"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "undo the journaled steps of a failed or unconfirmed swap"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap rollback [--journal FILE]

While the engine runs and waits for confirmation, asks it to roll back.
When the engine is gone (killed, out of memory), undoes every step its
journal shows done, in reverse, from this process: the old root goes back
to /, read-write, and the stopped services start again. The new device is
left as it is for inspection.
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "rollback")
	path := fs.String("journal", "", "")
	rest, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.UsageError("unexpected argument %q", rest[0])
	}
	st, err := swap.CurrentStatus(env.ProcRoot, *path)
	if err != nil {
		return err
	}
	*path = st.Path
	procRoot := swap.LiveProcRoot(env.ProcRoot)
	switch st.Phase {
	case journal.Succeeded, journal.RolledBack:
		return fmt.Errorf("the swap already ended (%s): nothing to roll back", st.Phase)
	}
	j, err := journal.OpenAppend(*path, env.Now)
	if err != nil {
		return err
	}
	defer j.Close()
	if st.EngineAlive {
		if err := j.Add(journal.Record{Kind: journal.KindRollback, Err: "asked for by the admin"}); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "asked the engine (pid %d) to roll back; it does so at its confirm wait. Following:\n", st.EnginePID)
		for i := 0; i < 600; i++ {
			s, err := swap.LoadStatus(procRoot, *path)
			if err == nil && (s.Phase == journal.RolledBack || s.Phase == journal.Failed || s.Phase == journal.Succeeded) {
				fmt.Fprintf(env.Stdout, "%s\n", s.Phase)
				if s.Phase != journal.RolledBack {
					return cli.ExitCode(1)
				}
				return nil
			}
			time.Sleep(200 * time.Millisecond)
		}
		return fmt.Errorf("the engine has not rolled back after 2 minutes; rootswap status")
	}
	fmt.Fprintf(env.Stdout, "the engine (pid %d) is gone; undoing its journaled steps from here\n", st.EnginePID)
	rt, err := swap.NewRuntime(ctx, procRoot, env.SysRoot, env.Stdout)
	if err != nil {
		return err
	}
	res, err := swap.RollbackFromJournal(ctx, rt, *path, st.Trusted, j)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s; undone: %v\n", res.Phase, res.Undone)
	if res.Phase != journal.RolledBack {
		for name, e := range res.UndoErrors {
			fmt.Fprintf(env.Stderr, "undo %s failed: %v\n", name, e)
		}
		return cli.ExitCode(1)
	}
	return nil
}
