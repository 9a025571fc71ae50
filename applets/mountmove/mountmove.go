// Package mountmove is the mount-move applet: after pivot_root, put every
// mount that went along with the old root back at its place under /
// ("mount --move /mnt/oldroot/proc /proc" for each of them).
package mountmove

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/mountops"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "move every mount below OLDROOT back to the same path under /"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap mount-move OLDROOT [--dry-run] [--no-mkdir]
Move every mount below OLDROOT (a mount point, /mnt/oldroot after
rootswap pivot) to the same path under /: OLDROOT/proc to /proc, and so on.
OLDROOT itself stays. Only mounts sitting directly on OLDROOT's mount are
moved; their submounts go along (OLDROOT/dev takes OLDROOT/dev/pts).
A mount point missing under / is created (the new root is a copy of the
old one, so normally none is); it is said so, one line each.
For a rollback, after pivoting back: rootswap mount-move /mnt/newroot.
  --dry-run    print the moves, change nothing
  --no-mkdir   leave a mount whose mount point is missing where it is
Exit status 1 when a mount could not be moved.
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	return run(env, mountops.System{}, args)
}

func run(env *cli.Env, m mountops.Mounter, args []string) error {
	fs := cli.FlagSet(env, "mount-move")
	var opts mountops.MoveOptions
	fs.BoolVar(&opts.DryRun, "dry-run", false, "")
	fs.BoolVar(&opts.NoMkdir, "no-mkdir", false, "")
	operands, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(operands) != 1 {
		return cli.UsageError("need exactly one OLDROOT, got %d operands", len(operands))
	}
	oldroot, err := filepath.Abs(operands[0])
	if err != nil {
		return err
	}
	// Right after pivot_root, proc is still below OLDROOT.
	tab, from, err := mountops.ReadTable(env.ProcRoot, oldroot)
	if err != nil {
		return err
	}
	if from != env.ProcRoot {
		env.Printf("reading the mount table from %s (proc is not at %s yet)\n", from, env.ProcRoot)
	}

	// Plan first, to say what will be touched before touching it.
	plan, err := mountops.MoveSubmounts(m, tab, oldroot, mountops.MoveOptions{DryRun: true, NoMkdir: opts.NoMkdir})
	if err != nil {
		return err
	}
	if len(plan) == 0 {
		env.Printf("nothing is mounted below %s\n", oldroot)
		return nil
	}
	if !opts.DryRun {
		all := 0
		for _, mv := range plan {
			all += 1 + len(mv.Children)
		}
		env.Printf("moving the %d mounts below %s back under / (%d moves)\n", all, oldroot, len(plan))
	}

	moves, err := plan, nil
	if !opts.DryRun {
		moves, err = mountops.MoveSubmounts(m, tab, oldroot, opts)
	}
	left := 0
	for _, mv := range moves {
		if mv.Skipped != "" {
			left++
			env.Errorf("rootswap mount-move: left %s where it is: %s\n", mv.From, mv.Skipped)
			continue
		}
		if mv.Created {
			env.Printf("%s missing mount point %s\n", verb(opts.DryRun, "would create", "created"), mv.To)
		}
		if mv.Hides != "" {
			env.Printf("note: %s is already a mount point (%s); the moved mount covers it\n", mv.To, mv.Hides)
		}
		if !opts.DryRun && !mv.Done {
			continue // the failed one: err says it
		}
		with := ""
		if len(mv.Children) > 0 {
			with = ", with " + strings.Join(mv.Children, " ")
		}
		env.Printf("%s %s -> %s (%s%s)\n", verb(opts.DryRun, "would move", "moved"), mv.From, mv.To, mv.Mount.FSType, with)
	}
	if err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("%d mount(s) left below %s", left, oldroot)
	}
	return nil
}

func verb(dryRun bool, would, did string) string {
	if dryRun {
		return would
	}
	return did
}
