package filecopy

import (
	"errors"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// worker holds the buffers one goroutine reuses for every file.
type worker struct {
	j     *job
	buf   []byte // file data
	dents []byte // getdents
	xl    []byte // xattr names
	xv    []byte // xattr values
	names []string
	// touched: this directory's target was changed (its times are set again)
	touched bool
	st      unix.Statx_t
	tst     unix.Statx_t
}

func newWorker(j *job) *worker {
	return &worker{j: j, buf: make([]byte, 1<<20), dents: make([]byte, 32<<10), xl: make([]byte, 4<<10), xv: make([]byte, 64<<10)}
}

const (
	// O_NONBLOCK: a file that became a fifo under a live pass does
	// not block the open.
	rdFlags  = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NOATIME | unix.O_NONBLOCK
	dirFlags = rdFlags | unix.O_DIRECTORY
)

// open opens a source file without changing its atime (O_NOATIME
// needs the owner or CAP_FOWNER: retried without it).
func open(dirfd int, name string, flags int) (int, error) {
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if err == unix.EPERM {
		fd, err = unix.Openat(dirfd, name, flags&^unix.O_NOATIME, 0)
	}
	return fd, err
}

// readNames lists the directory fd, without . and .., sorted.
func (w *worker) readNames(fd int) ([]string, error) {
	names := w.names[:0]
	for {
		n, err := unix.Getdents(fd, w.dents)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			break
		}
		_, _, names = unix.ParseDirent(w.dents[:n], -1, names)
	}
	sort.Strings(names)
	w.names = names
	return names, nil
}

// copyDir copies the entries of d (its subdirectories are queued),
// then d's own metadata: nothing changes d after its entries.
func (w *worker) copyDir(d *dir) error {
	j := w.j
	sfd, err := open(unix.AT_FDCWD, d.src, dirFlags)
	if err != nil {
		if j.gone(err) {
			return nil
		}
		return pathErr("open", d.src, err)
	}
	defer unix.Close(sfd)
	dfd, err := unix.Open(d.dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathErr("open", d.dst, err)
	}
	defer unix.Close(dfd)
	names, err := w.readNames(sfd)
	if err != nil {
		return pathErr("getdents", d.src, err)
	}
	delta := j.o.Delta && !d.fresh
	t := &w.tst
	if delta {
		if err := unix.Statx(dfd, "", unix.AT_EMPTY_PATH, statxMask, t); err != nil {
			return pathErr("statx", d.dst, err)
		}
		// An immutable directory (a delta's flags from before) takes
		// no changes: its flags come back from the source at the end.
		if t.Attributes&(unix.STATX_ATTR_IMMUTABLE|unix.STATX_ATTR_APPEND) != 0 {
			if err := setFlags(d.dst, 0); err != nil {
				return err
			}
		}
	}
	w.touched = false
	same := delta && d.st.Mode == t.Mode && d.st.Uid == t.Uid && d.st.Gid == t.Gid && d.st.Mtime == t.Mtime
	// In a directory that changed, the target's names the source lacks
	// go first: a name may have moved to another type.
	if delta && (j.o.Since.IsZero() || !older(d.st.Ctime, j.since)) {
		names = append([]string(nil), names...) // prune reads into w.names
		if err := w.prune(dfd, d.dst, names); err != nil {
			return err
		}
	}
	for _, name := range names {
		if err := w.entry(d, sfd, dfd, name); err != nil && !j.gone(err) {
			return err
		}
	}
	if !j.o.NoFlags && d.st.Attributes&flagAttrs != 0 {
		w.keepFlags(sfd, "", d.dst)
	}
	// A delta leaves alone a directory it neither changed nor found changed.
	if same && !w.touched && (j.o.Since.IsZero() || older(d.st.Ctime, j.since)) {
		return nil
	}
	return w.meta(sfd, d.src, dfd, d.dst, &d.st, false)
}

// gone says whether err means that the source entry went away (or
// changed type) under a live pass: its delta sees to it.
func (j *job) gone(err error) bool {
	return !j.o.Delta && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR))
}

// prune deletes what the target directory has and the source does not.
func (w *worker) prune(dfd int, dst string, src []string) error {
	have, err := w.readNames(dfd)
	if err != nil {
		return pathErr("getdents", dst, err)
	}
	for _, name := range have {
		if i := sort.SearchStrings(src, name); i < len(src) && src[i] == name {
			continue
		}
		if err := w.remove(dfd, dst, name); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes a target entry, a directory with everything in it;
// flags (a later pass's immutable file) are cleared first when they
// stand in the way.
func (w *worker) remove(dfd int, dst, name string) error {
	p := dst + "/" + name
	err := unix.Unlinkat(dfd, name, 0)
	if err == unix.EISDIR {
		err = os.RemoveAll(p)
	}
	if errors.Is(err, unix.EPERM) {
		setFlags(p, 0)
		setFlags(dst, 0)
		err = os.RemoveAll(p)
	}
	if err != nil {
		return pathErr("remove", p, err)
	}
	w.j.removed.Add(1)
	w.touched = true
	return nil
}

// entry copies one entry of a directory.
func (w *worker) entry(d *dir, sfd, dfd int, name string) error {
	j := w.j
	st := &w.st
	if err := statx(sfd, name, st); err != nil {
		return pathErr("statx", d.src+"/"+name, err)
	}
	j.seen.Add(1)
	mode := uint32(st.Mode)
	isDir := mode&unix.S_IFMT == unix.S_IFDIR
	cross := j.crosses(st)
	if cross && !isDir {
		return nil // another filesystem's file mounted here
	}
	if j.o.Delta && !d.fresh {
		if w.unchanged(dfd, name, isDir) {
			if isDir && !cross {
				j.push(&dir{src: d.src + "/" + name, dst: d.dst + "/" + name, st: *st})
			} else if !j.o.NoFlags && st.Attributes&flagAttrs != 0 && mode&unix.S_IFMT == unix.S_IFREG {
				w.keepFlags(sfd, name, d.dst+"/"+name)
			}
			return nil
		}
		if err := w.remove(dfd, d.dst, name); err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	w.touched = true
	return w.create(d, sfd, dfd, name, cross)
}

// unchanged says whether the target of the entry in w.st can stay: a
// directory stays a directory (its entries are looked at one by one);
// anything else must have the same type, size and mtime, and have been
// left alone since the first pass began.
func (w *worker) unchanged(dfd int, name string, isDir bool) bool {
	st, t := &w.st, &w.tst
	if statx(dfd, name, t) != nil || (st.Mode^t.Mode)&unix.S_IFMT != 0 {
		return false
	}
	return isDir || st.Size == t.Size && st.Mtime == t.Mtime && (w.j.o.Since.IsZero() || older(st.Ctime, w.j.since))
}
