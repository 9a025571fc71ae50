// Package filecopy copies a mounted filesystem's tree to another,
// file by file, keeping what a root needs: hard links, holes, xattrs
// (SELinux labels, file capabilities, POSIX ACLs), device nodes, fifos,
// sockets, numeric ownership, nanosecond times and the immutable and
// append-only flags. It never crosses into another mounted filesystem.
// A second, delta pass copies only what changed since a time and deletes
// what the source no longer has: the swap's frozen round.
package filecopy

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Options of a copy.
type Options struct {
	// Workers copy directories in parallel; 0: two per CPU, 4 to 16 (a
	// worker mostly waits for the disk: more of them keep more reads in
	// flight; measured here, 4 copied a root in half the time of 2).
	Workers int
	// Delta makes this a second pass over a tree already copied: an
	// entry whose target has its type, size and mtime (and, with Since,
	// whose ctime is older than Since) is left; the rest is copied again,
	// and what the target has that the source lacks is deleted.
	Delta bool
	// Since is when the first pass began (ctime is set by every change
	// to an inode: data, metadata, links, renames).
	Since time.Time
	// NoFlags leaves the immutable and append-only flags unset: the
	// first pass of two, whose delta then sets them.
	NoFlags bool
	// Progress, when set, is told the counts so far after each
	// directory (under the queue's lock: one call at a time; it must
	// be quick) and at the end.
	Progress func(Stats)
}

// Stats counts what a copy did; Seen, the entries it looked at.
type Stats struct {
	Files, Dirs, Links, Others, Removed, Bytes, Seen int64
}

func (s Stats) String() string {
	return fmt.Sprintf("%d files, %d directories, %d hard links, %d others, %d bytes, %d removed",
		s.Files, s.Dirs, s.Links, s.Others, s.Bytes, s.Removed)
}

// dir is a directory to copy, found by its parent.
type dir struct {
	src, dst string
	st       unix.Statx_t
	fresh    bool // made by this pass: its entries need no check
}

// flagged is an inode whose flags are set once everything is copied:
// an immutable file cannot get another link, an append-only one no data.
type flagged struct {
	path  string
	flags int
}

type job struct {
	o        Options
	since    unix.StatxTimestamp
	dev      [2]uint32 // the source root's st_dev
	mnt      uint64    // and its mount id
	noCFR    atomic.Bool
	files    atomic.Int64
	dirs     atomic.Int64
	links    atomic.Int64
	others   atomic.Int64
	removed  atomic.Int64
	bytes    atomic.Int64
	seen     atomic.Int64
	mu       sync.Mutex
	cond     sync.Cond
	queue    []*dir
	pending  int
	err      error
	lmu      sync.Mutex
	linked   map[inode]string // source inode -> its first copy
	flags    []flagged
	canceled func() error
	// Who creates the copies, and the umask they are created with.
	uid, gid, umask uint32
}

// Copy copies the tree at src into the directory dst (which must exist).
func Copy(ctx context.Context, dst, src string, o Options) (Stats, error) {
	j := &job{o: o, linked: map[inode]string{}, canceled: ctx.Err, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), umask: umask()}
	j.cond.L = &j.mu
	if !o.Since.IsZero() {
		// ctime comes from a coarse clock that lags by up to a tick.
		t := o.Since.Add(-time.Second)
		j.since = unix.StatxTimestamp{Sec: t.Unix(), Nsec: uint32(t.Nanosecond())}
	}
	root := &dir{src: src, dst: dst}
	if err := statx(unix.AT_FDCWD, src, &root.st); err != nil {
		return Stats{}, pathErr("statx", src, err)
	}
	j.dev = [2]uint32{root.st.Dev_major, root.st.Dev_minor}
	j.mnt = root.st.Mnt_id
	j.push(root)
	n := o.Workers
	if n <= 0 {
		n = min(max(2*runtime.NumCPU(), 4), 16)
	}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(j)
			for d := j.pop(); d != nil; d = j.pop() {
				j.done(w.copyDir(d))
			}
		}()
	}
	wg.Wait()
	if j.err == nil && !o.NoFlags {
		j.err = j.setFlags()
	}
	st := j.stats()
	if o.Progress != nil {
		o.Progress(st)
	}
	return st, j.err
}

func (j *job) stats() Stats {
	return Stats{j.files.Load(), j.dirs.Load(), j.links.Load(), j.others.Load(), j.removed.Load(), j.bytes.Load(), j.seen.Load()}
}

func (j *job) push(d *dir) {
	j.mu.Lock()
	j.queue = append(j.queue, d)
	j.pending++
	j.mu.Unlock()
	j.cond.Signal()
}

// pop takes the newest directory (depth first keeps the queue short),
// waiting while others may still add some; nil when all is done or a
// worker failed.
func (j *job) pop() *dir {
	j.mu.Lock()
	defer j.mu.Unlock()
	for len(j.queue) == 0 && j.pending > 0 && j.err == nil {
		j.cond.Wait()
	}
	if j.err != nil || len(j.queue) == 0 {
		return nil
	}
	d := j.queue[len(j.queue)-1]
	j.queue = j.queue[:len(j.queue)-1]
	return d
}

func (j *job) done(err error) {
	if err == nil {
		err = j.canceled()
	}
	j.mu.Lock()
	j.pending--
	if err != nil && j.err == nil {
		j.err = err
	}
	wake := j.pending == 0 || j.err != nil
	if j.o.Progress != nil {
		j.o.Progress(j.stats())
	}
	j.mu.Unlock()
	if wake {
		j.cond.Broadcast()
	}
}

// setFlags sets the flags kept for the end, deepest paths first so that
// an immutable directory's entries are done before it.
func (j *job) setFlags() error {
	sort.Slice(j.flags, func(a, b int) bool { return j.flags[a].path > j.flags[b].path })
	for _, f := range j.flags {
		if err := setFlags(f.path, f.flags); err != nil {
			return err
		}
	}
	return nil
}

const statxMask = unix.STATX_BASIC_STATS | unix.STATX_MNT_ID

func statx(dirfd int, name string, st *unix.Statx_t) error {
	return unix.Statx(dirfd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_DONT_SYNC, statxMask, st)
}

// older says whether t is before u.
func older(t, u unix.StatxTimestamp) bool {
	return t.Sec < u.Sec || t.Sec == u.Sec && t.Nsec < u.Nsec
}

// crosses says whether an entry lives on another mount than the root:
// by mount id (Linux 5.8), else by st_dev. A btrfs subvolume below the
// root has an st_dev of its own but is the same mount: its files are
// copied (cp -x would leave them out).
func (j *job) crosses(st *unix.Statx_t) bool {
	if st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return true
	}
	if st.Mask&unix.STATX_MNT_ID != 0 && j.mnt != 0 {
		return st.Mnt_id != j.mnt
	}
	return st.Dev_major != j.dev[0] || st.Dev_minor != j.dev[1]
}

// inode names an inode: inode numbers repeat across btrfs subvolumes.
type inode struct {
	dev [2]uint32
	ino uint64
}

func inodeOf(st *unix.Statx_t) inode { return inode{[2]uint32{st.Dev_major, st.Dev_minor}, st.Ino} }

// umask reads the process's umask from /proc (umask(2) can only set
// it); unknown, every copy gets its chmod.
func umask() uint32 {
	b, _ := os.ReadFile("/proc/self/status")
	_, v, ok := strings.Cut(string(b), "\nUmask:\t")
	if n, err := strconv.ParseUint(v[:min(len(v), 4)], 8, 32); ok && err == nil {
		return uint32(n)
	}
	return 0o7777
}

// pathErr is err from op on path p.
func pathErr(op, p string, err error) error { return &os.PathError{Op: op, Path: p, Err: err} }
