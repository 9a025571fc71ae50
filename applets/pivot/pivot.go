// Package pivot is the pivot applet: pivot_root into the new root the way
// the manual procedure did ("cd /mnt/newroot; pivot_root . mnt/oldroot"),
// with the checks and the propagation fix the kernel will not explain.
package pivot

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/mountops"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "pivot_root into NEWROOT, old root to PUTOLD, propagation made private first"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap pivot NEWROOT [PUTOLD]
Make the filesystem mounted at NEWROOT the root with pivot_root(2); the old
root goes to PUTOLD (default NEWROOT/mnt/oldroot, created if missing) and
stays mounted, with everything mounted on it: move those back with
  rootswap mount-move /mnt/oldroot
Before the pivot / is made recursively private (pivot_root and mount --move
refuse shared mounts). Every process whose root or working directory was the
old root follows to the new one; open files, libraries and binaries stay on
the old root until the process is restarted.
NEWROOT must be a mount point and PUTOLD must lie below it; relative paths
are taken from the working directory. Nothing is changed when a check fails.
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	return run(env, mountops.System{}, args)
}

func run(env *cli.Env, m mountops.Mounter, args []string) error {
	fs := cli.FlagSet(env, "pivot")
	operands, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(operands) < 1 || len(operands) > 2 {
		return cli.UsageError("need NEWROOT and at most a PUTOLD, got %d operands", len(operands))
	}
	newroot, err := filepath.Abs(operands[0])
	if err != nil {
		return err
	}
	putold := filepath.Join(newroot, "mnt/oldroot")
	if len(operands) == 2 {
		if putold, err = filepath.Abs(operands[1]); err != nil {
			return err
		}
	}
	// When pivoting back before the submounts were moved, proc is
	// still below NEWROOT.
	tab, _, err := mountops.ReadTable(env.ProcRoot, newroot)
	if err != nil {
		return err
	}
	oldRoot, _ := tab.Containing("/")
	newMnt, _ := tab.Containing(newroot)
	inside := "/" + strings.TrimPrefix(putold, newroot+"/")

	say := func(format string, args ...any) { env.Printf(format+"\n", args...) }
	if newMnt.Point == newroot {
		say("pivot: %s (%s, at %s) becomes /; the old root %s (%s) goes to %s", newMnt.Source, newMnt.FSType, newroot, oldRoot.Source, oldRoot.FSType, inside)
	}
	if err := mountops.Pivot(m, tab, newroot, putold, say); err != nil {
		return err
	}
	say("done: / is %s (%s); the old root %s is at %s", newMnt.Source, newMnt.FSType, oldRoot.Source, inside)
	say("next: rootswap mount-move %s", inside)
	if shared := mountops.SavePropagation(tab, "/"); len(shared) > 0 {
		say("note: %d mounts were shared (systemd makes them so) and are private now; after mount-move, `mount --make-rshared /` restores that", len(shared))
	}
	return nil
}
