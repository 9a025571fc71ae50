// Package lsof is the lsof applet: the open files of every process, in
// lsof's own columns and spelling, read without ever stat()ing through a
// link into a filesystem that could hang (see internal/procscan).
package lsof

import (
	"context"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "list open files, like lsof, safe on dead NFS"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap lsof [-p PID[,PID...]] [--deleted] [--writable] [--json] [--no-bpf] [PATH...]

List open files: cwd, rtd (root), txt (executable), mem and DEL (mapped
files; DEL when deleted) and descriptors as 3r, 4w, 5u, in lsof's
columns COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME.

PATH that is a mount point selects every file open on that filesystem
(every mount of it); any other PATH selects the users of that file.
Unix sockets bound on a selected filesystem are listed too (lsof leaves
them out), marked "(bound here; lsof omits)". Options and PATHs narrow
the listing together.

Never stats through a link into NFS, CIFS, FUSE or other filesystems
that could hang: those files are identified by fdinfo and maps alone,
their SIZE/OFF shows the offset (0tN). As root, in the initial PID
namespace, what every process holds is read in one pass by BPF
iterators (kernel BTF needed): the kernel reports each file's mount,
inode and path itself, nothing is looked up, and files on filesystems
that no PATH names are skipped in the kernel. Elsewhere, or with
--no-bpf, /proc is read.

  -p PID[,PID]  only these processes
  --deleted     only deleted files still open or mapped (FD DEL, "(deleted)")
  --writable    only descriptors open for writing (mode w or u)
  --json        one JSON object per line instead of the table
  --no-bpf      read /proc only; do not load the kernel iterators
                (ROOTSWAP_DEBUG=1 says on stderr which way was taken, and why)
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "lsof")
	pidList := fs.String("p", "", "")
	deleted := fs.Bool("deleted", false, "")
	writable := fs.Bool("writable", false, "")
	asJSON := fs.Bool("json", false, "")
	noBPF := fs.Bool("no-bpf", false, "")
	paths, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	var pids []int
	if *pidList != "" {
		for _, s := range strings.Split(*pidList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				return cli.UsageError("-p %q: not a process id", s)
			}
			pids = append(pids, n)
		}
	}
	// Paths are made absolute before the scan; which of them are mount
	// points is decided against the scanner's own mount table.
	abs := make([]string, len(paths))
	for i, p := range paths {
		if abs[i], err = filepath.Abs(p); err != nil {
			return err
		}
	}

	self, err := mountinfo.Read(env.ProcRoot, "thread-self")
	if err != nil {
		if self, err = mountinfo.Read(env.ProcRoot, "self"); err != nil {
			return err
		}
	}
	sel, err := selectors(self, abs, stat)
	if err != nil {
		return err
	}

	// A scan allocates a few hundred bytes per open file and frees
	// nothing before the rows are printed: collecting garbage meanwhile
	// is wasted work (a third of the time on a busy host). The memory
	// limit still bounds the heap; both settings are restored, since the
	// rescue shell runs applets inside the swap engine.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	snap, err := procscan.Scan(env.ProcRoot, procscan.Options{
		PIDs: pids, NoCgroup: true, NoBPF: *noBPF, Devs: scanDevs(self, sel),
	})
	if err != nil {
		return err
	}
	users := newUsers()
	rows := listRows(snap, sel, users)
	rows = filterRows(rows, *deleted, *writable)
	if *asJSON {
		err = writeJSON(env.Stdout, rows)
	} else {
		err = writeTable(env.Stdout, rows)
	}
	if err != nil {
		return err
	}
	if env.Getenv != nil && env.Getenv("ROOTSWAP_DEBUG") != "" {
		why := ""
		if snap.BPFErr != nil {
			why = " (" + snap.BPFErr.Error() + ")"
		}
		env.Errorf("rootswap lsof: read with %s%s\n", snap.Source, why)
	}
	if snap.Denied > 0 {
		env.Errorf("rootswap lsof: %d processes could not be read completely: permission denied\n", snap.Denied)
	}
	if len(rows) == 0 {
		return cli.ExitCode(1) // as lsof: nothing found
	}
	return nil
}
