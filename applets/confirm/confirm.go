// Package confirm is the confirm applet: the admin's word, from a new
// login, that the new root works.
package confirm

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/rootswap/rootswap/internal/bootguard"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/swap"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "confirm a swap from a new login; the old root is then released"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap confirm [--journal FILE] | --boot

Run it from a NEW SSH login while run waits (--confirm-timeout): that
the login worked proves sshd runs from the new root. Without it the
engine rolls back when the time is up.

--boot confirms the first boot of the new root after finish: it becomes
GRUB's default and the boot guard's deadline is off (finish
--boot-confirm manual waits for it; by default sshd answering does it).
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "confirm")
	path := fs.String("journal", "", "")
	boot := fs.Bool("boot", false, "")
	rest, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.UsageError("unexpected argument %q", rest[0])
	}
	if *boot {
		return bootguard.LiveConfirmer(env.Stdout, env.ProcRoot, env.SysRoot, true).Confirm(ctx)
	}
	st, err := swap.CurrentStatus(env.ProcRoot, *path)
	if err != nil {
		return err
	}
	*path = st.Path
	if st.Phase != journal.WaitingConfirm {
		return fmt.Errorf("nothing to confirm: the swap is %s", st.Phase)
	}
	if err := swap.CheckNewLogin(env.ProcRoot, filepath.Dir(*path), st.EnginePID); err != nil {
		return err
	}
	j, err := journal.OpenAppend(*path, env.Now)
	if err != nil {
		return err
	}
	defer j.Close()
	if err := j.Add(journal.Record{Kind: journal.KindConfirm}); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, "confirmed: the engine now releases the old root (rootswap status)")
	return nil
}
