// Package cpfs is the cpfs applet, dd's sibling for files: it copies a
// mounted filesystem's tree to another, keeping everything a root needs.
package cpfs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/filecopy"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "copy a filesystem's tree file by file (links, holes, xattrs, ACLs, flags)"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap cpfs [-j N] [--delta [--since T]] [--verify] [--content] SRC DST

Copies the tree at SRC into the existing directory DST, never into
another filesystem mounted below SRC (its mount point is made, empty).
It keeps hard links, holes (SEEK_DATA/SEEK_HOLE), every xattr (SELinux
labels, file capabilities, trusted.*, user.*), POSIX ACLs, device nodes,
fifos, sockets, numeric owners, nanosecond times (directories' after
their entries) and the immutable, append-only, nodump, noatime and sync
flags (set last). Prints what it did.

  -j N        N workers (default: two per CPU, 4 to 16)
  --delta     a second pass over an earlier copy: copies again what
              differs in type, size or mtime (and, with --since, whatever
              changed after T by its ctime), deletes what SRC no longer has
  --since T   when the first pass started (RFC 3339, as -v prints it)
  --no-flags  leave the inode flags for a --delta pass
  --verify    then compare both trees: every attribute above
  --content   with --verify, compare contents too (reads both trees)
  -v          print the start time for a later --since
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "cpfs")
	jobs := fs.Int("j", 0, "")
	delta := fs.Bool("delta", false, "")
	since := fs.String("since", "", "")
	noFlags := fs.Bool("no-flags", false, "")
	verify := fs.Bool("verify", false, "")
	content := fs.Bool("content", false, "")
	verbose := fs.Bool("v", false, "")
	ops, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(ops) != 2 {
		return cli.UsageError("SRC and DST expected, got %d operands", len(ops))
	}
	o := filecopy.Options{Workers: *jobs, Delta: *delta, NoFlags: *noFlags}
	if *since != "" {
		if o.Since, err = time.Parse(time.RFC3339Nano, *since); err != nil || !*delta {
			return cli.UsageError("--since %q: a time as -v prints it, with --delta", *since)
		}
	}
	start := time.Now()
	if *verbose {
		env.Printf("start %s\n", start.Format(time.RFC3339Nano))
	}
	st, err := filecopy.Copy(ctx, ops[1], ops[0], o)
	if err != nil {
		return err
	}
	took := time.Since(start)
	env.Printf("%v in %v, %.1f MB/s\n", st, took.Round(time.Millisecond), float64(st.Bytes)/took.Seconds()/1e6)
	if !*verify {
		return nil
	}
	c := filecopy.Check(0)
	if *content {
		c = filecopy.Content
	}
	diffs, err := filecopy.Compare(ops[0], ops[1], c)
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the copy differs:\n%s", strings.Join(diffs, "\n"))
	}
	env.Printf("verified: the trees are equal\n")
	return nil
}
