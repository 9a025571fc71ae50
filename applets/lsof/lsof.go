// Package lsof is the lsof applet: the open files of every process, in
// lsof's own columns and spelling, read without ever stat()ing through a
// link into a filesystem that could hang (see internal/procscan).
package lsof

import (
	"context"
	"fmt"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "list open files, like lsof, safe on dead NFS"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap lsof [-atlnPw] [-p PIDS] [-c CMD] [-u USERS] [-d FDS] [+c W] [+d DIR] [+D DIR] [--deleted] [--writable] [--json] [--no-bpf] [PATH...]

List open files: cwd, rtd (root), txt (executable), mem and DEL (mapped
files; DEL when deleted) and descriptors as 3r, 4w, 5u, in lsof's
columns COMMAND PID USER FD TYPE DEVICE SIZE/OFF NODE NAME. Options are
lsof's and are written as for lsof: letters combine (-nP, -ta), a value
follows its letter or the next word (-p1, -p 1). Control characters in
names are escaped as lsof escapes them (\n, \t, ^[ for ESC, \xNN).

PATH that is a mount point selects every file open on that filesystem
(every mount of it); any other PATH selects the users of that file.
Unix sockets bound on a selected filesystem are listed too (lsof leaves
them out), marked "(bound here; lsof omits)". Selections (PATH, +d, +D,
-p, -c, -u, -d) are ORed as in lsof, ANDed with -a; ^ excludes.

Never stats through a link into NFS, CIFS, FUSE or other filesystems
that could hang: those files are identified by fdinfo and maps alone,
their SIZE/OFF shows the offset (0tN). As root, in the initial PID
namespace, what every process holds is read in one pass by BPF
iterators (kernel BTF needed): the kernel reports each file's mount,
inode and path itself, nothing is looked up, and files on filesystems
that no PATH names are skipped in the kernel. What the programs need
of the kernel's BTF is kept for the boot in /run/rootswap-btf.cache.
Elsewhere, or with --no-bpf, /proc is read.

  -a            AND the selections
  -c CMD        processes whose command begins with CMD; ^CMD excludes;
                /REGEX/ (modifiers i, x) matches; repeatable
  +c W          COMMAND column width (default 9; 0 the whole name)
  -d FDS        descriptors: cwd,rtd,txt,mem,DEL,fd, numbers, ranges (0-7);
                all ^ to exclude
  +d DIR        DIR and the files directly in it
  +D DIR        DIR and every file below it, on DIR's filesystem only
                (by name: no walk of the tree, no stat of its files)
  -l            user ids as numbers
  -n -P         accepted; host addresses and ports are always printed as
                numbers, never looked up
  -w            no warning about processes that could not be read
  -p PIDS       these processes (comma list, ^ excludes)
  -t            process ids only, sorted, one per line, no header
  -u USERS      processes of these users (names or uids, comma list, ^ excludes)
  --deleted     only deleted files still open or mapped (FD DEL, "(deleted)")
  --writable    only descriptors open for writing (mode w or u)
  --json        one JSON object per line instead of the table
  --no-bpf      read /proc only; do not load the kernel iterators
                (ROOTSWAP_DEBUG=1 says on stderr which way was taken, and why)

Nothing found: no output, exit status 1 (as lsof).
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	o, err := parseArgs(args)
	if err != nil {
		return err
	}
	uids, err := lookupUsers(o.users)
	if err != nil {
		return err
	}
	notUIDs, err := lookupUsers(o.notUsers)
	if err != nil {
		return err
	}
	// Paths are made absolute before the scan; which of them are mount
	// points is decided against the scanner's own mount table.
	abs := func(paths []string) ([]string, error) {
		out := make([]string, len(paths))
		for i, p := range paths {
			if out[i], err = filepath.Abs(p); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	paths, err := abs(o.paths)
	if err != nil {
		return err
	}
	for i := range o.dirs {
		if o.dirs[i].path, err = filepath.Abs(o.dirs[i].path); err != nil {
			return err
		}
	}

	self, err := mountinfo.Read(env.ProcRoot, "thread-self")
	if err != nil {
		if self, err = mountinfo.Read(env.ProcRoot, "self"); err != nil {
			return err
		}
	}
	sel, err := selectors(self, paths, stat)
	if err != nil {
		return err
	}
	dirSel, err := dirSelectors(self, o.dirs, stat)
	if err != nil {
		return err
	}
	f := newFilter(o, append(sel, dirSel...), uids, notUIDs)
	debugOut := env.Getenv != nil && env.Getenv("ROOTSWAP_DEBUG") != ""
	scanOpt := procscan.Options{NoCgroup: true, NoBPF: o.noBPF, BPFLog: debugOut, Describe: describe(o, f)}
	if f.onlyNames() {
		scanOpt.Devs = scanDevs(self, f.sel)
	}
	if f.onlyPIDs() {
		scanOpt.PIDs = f.pids
	}

	// A scan allocates a few hundred bytes per open file and frees
	// nothing before the rows are printed: collecting garbage meanwhile
	// is wasted work (a third of the time on a busy host). The memory
	// limit still bounds the heap; both settings are restored, since the
	// rescue shell runs applets inside the swap engine.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(256 << 20))
	snap, err := procscan.Scan(env.ProcRoot, scanOpt)
	if err != nil {
		return err
	}
	rows := listRows(snap, f, newUsers(o.numUID), kernelDevices(env.ProcRoot))
	rows = filterRows(rows, o.deleted, o.writable)
	switch {
	case o.terse:
		err = writePIDs(env.Stdout, rows)
	case o.json:
		err = writeJSON(env.Stdout, rows)
	default:
		err = table{cmdLimit: o.cmdWidth, utf8: utf8Locale(env.Getenv)}.writeTable(env.Stdout, rows)
	}
	if err != nil {
		return err
	}
	if debugOut {
		why := ""
		if snap.BPFErr != nil {
			why = " (" + snap.BPFErr.Error() + ")"
		}
		env.Errorf("rootswap lsof: read with %s%s\n", snap.Source, why)
		for _, n := range snap.BPFNotes {
			env.Errorf("rootswap lsof: %s\n", n)
		}
	}
	if snap.Denied > 0 && !o.terse && !o.noWarn {
		env.Errorf("rootswap lsof: %d processes could not be read completely: permission denied\n", snap.Denied)
	}
	if len(rows) == 0 {
		return cli.ExitCode(1) // as lsof: nothing found
	}
	return nil
}

// describe is whether the scan reads what names sockets and anonymous
// inodes (inet tables, fdinfo): only when rows of theirs can be printed
// with their names; never for PATH selections alone (lsof MOUNT), whose
// rows are files of those filesystems, nor for -t.
func describe(o *options, f *filter) bool {
	return !f.onlyNames() && !o.terse
}

// lookupUsers turns -u names and uids into uids.
func lookupUsers(names []string) ([]int, error) {
	var out []int
	for _, n := range names {
		if uid, err := strconv.Atoi(n); err == nil && uid >= 0 {
			out = append(out, uid)
			continue
		}
		u, err := user.Lookup(n)
		if err != nil {
			return nil, fmt.Errorf("-u %s: %w", n, err)
		}
		uid, err := strconv.Atoi(u.Uid)
		if err != nil {
			return nil, fmt.Errorf("-u %s: uid %q: %w", n, u.Uid, err)
		}
		out = append(out, uid)
	}
	return out, nil
}

// kernelDevices finds the devices lsof prints for pipes and anonymous
// inodes: pipefs and anon_inodefs have one superblock each, so a pipe
// and an eventfd of this process tell them (a few syscalls per run, none
// per descriptor). Not on a fixture tree, whose files are not this
// kernel's.
func kernelDevices(procRoot string) *kernelDevs {
	k := &kernelDevs{}
	var sfs unix.Statfs_t
	if unix.Statfs(procRoot, &sfs) != nil || sfs.Type != unix.PROC_SUPER_MAGIC {
		return k
	}
	k.procRoot = procRoot
	var p [2]int
	if unix.Pipe2(p[:], unix.O_CLOEXEC) != nil {
		return k
	}
	var st unix.Stat_t
	if unix.Fstat(p[0], &st) == nil {
		k.pipe = st.Dev
	}
	unix.Close(p[0])
	unix.Close(p[1])
	if fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC); err == nil {
		if unix.Fstat(fd, &st) == nil {
			k.anon = st.Dev
		}
		unix.Close(fd)
	}
	if fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err == nil {
		if unix.Fstat(fd, &st) == nil {
			k.sock = st.Dev
		}
		unix.Close(fd)
	}
	return k
}
