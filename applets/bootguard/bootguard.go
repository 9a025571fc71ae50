// Package bootguard is the boot guard applet: the init= of the one-shot
// GRUB entry finish writes for the first boot of a new root, its
// deadline keeper, and the confirmation unit's command.
package bootguard

import (
	"context"
	"os"

	"github.com/rootswap/rootswap/internal/bootguard"
	"github.com/rootswap/rootswap/internal/cli"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "the first boot's guard (init=), its deadline keeper, its confirmation"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap bootguard keeper | confirm   (as PID 1: rootswap-bootguard [ARGS...])

finish copies rootswap to /sbin/rootswap-bootguard and boots the new root
once with init=/sbin/rootswap-bootguard panic=N. As PID 1 the guard checks
that the real init (/etc/rootswap/firstboot: init=, /sbin/init) is there,
else reboots at once (GRUB's one-shot entry is spent: the old root boots);
starts the keeper, a child that outlives the exec and reboots when the
boot is not confirmed by the deadline; and execs the real init.

  keeper   the deadline keeper (the guard starts it)
  confirm  what the confirmation unit runs: once / is the new root and
           sshd answers, makes the new root GRUB's default and stops the
           keeper (rootswap confirm --boot is the admin's way)
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	rec, _ := bootguard.ReadRecord(bootguard.RootRecord) // none: /sbin/init, 10 min
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	switch {
	case os.Getpid() == 1:
		self, err := os.Executable()
		if err != nil {
			self = bootguard.GuardPath
		}
		return bootguard.Guard(rec, bootguard.LiveSys(rec, self), args)
	case sub == "keeper":
		return bootguard.RunKeeper(rec)
	case sub == "confirm":
		return bootguard.LiveConfirmer(env.Stdout, env.ProcRoot, env.SysRoot, false).Confirm(ctx)
	}
	return cli.UsageError("not PID 1: give keeper or confirm")
}
