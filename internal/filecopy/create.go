package filecopy

import (
	"golang.org/x/sys/unix"
)

// create makes the copy of the entry in w.st: a directory is queued for
// a worker, anything else is done here, metadata included.
func (w *worker) create(d *dir, sfd, dfd int, name string, cross bool) error {
	j, st := w.j, &w.st
	sp, dp := d.src+"/"+name, d.dst+"/"+name
	mode := uint32(st.Mode)
	typ := mode & unix.S_IFMT
	if typ == unix.S_IFDIR {
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil && err != unix.EEXIST {
			return pathErr("mkdir", dp, err)
		}
		j.dirs.Add(1)
		if cross {
			// A mount point: the directory, not what is mounted on it.
			return w.meta(-1, sp, -1, dp, st, false)
		}
		j.push(&dir{src: sp, dst: dp, st: *st, fresh: true})
		return nil
	}
	var src int = -1
	if typ == unix.S_IFREG {
		var err error
		if src, err = open(sfd, name, rdFlags); err != nil {
			return pathErr("open", sp, err)
		}
		defer unix.Close(src)
	}
	// A hard link to an inode already copied is a link; the first name
	// is created under the lock so that no second one finds it missing.
	locked := st.Nlink > 1
	if locked {
		j.lmu.Lock()
		if first, ok := j.linked[inodeOf(st)]; ok {
			j.lmu.Unlock()
			if err := unix.Linkat(unix.AT_FDCWD, first, dfd, name, 0); err != nil {
				return pathErr("link "+first+" to", dp, err)
			}
			j.links.Add(1)
			return nil
		}
	}
	dst, err := w.make(src, sfd, dfd, name, st)
	if err == unix.EEXIST {
		// A target that is not empty: what is there goes.
		if err = w.remove(dfd, d.dst, name); err == nil {
			dst, err = w.make(src, sfd, dfd, name, st)
		}
	}
	if locked {
		if err == nil {
			j.linked[inodeOf(st)] = dp
		}
		j.lmu.Unlock()
	}
	if err != nil {
		return pathErr("create", dp, err)
	}
	if dst < 0 {
		j.others.Add(1)
		return w.meta(-1, sp, -1, dp, st, d.fresh)
	}
	defer unix.Close(dst)
	n, err := w.data(dst, src, st)
	j.bytes.Add(n)
	if err != nil {
		return pathErr("copy "+sp+" to", dp, err)
	}
	j.files.Add(1)
	if err := w.meta(src, sp, dst, dp, st, d.fresh); err != nil {
		return err
	}
	if !j.o.NoFlags && st.Attributes&flagAttrs != 0 {
		w.keepFlags(src, "", dp)
	}
	return nil
}

// make creates the inode: a regular file is returned open for writing,
// anything else as -1.
func (w *worker) make(src, sfd, dfd int, name string, st *unix.Statx_t) (int, error) {
	mode := uint32(st.Mode)
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, mode&0o777)
	case unix.S_IFLNK:
		n, err := unix.Readlinkat(sfd, name, w.buf)
		if err != nil {
			return -1, err
		}
		return -1, unix.Symlinkat(string(w.buf[:n]), dfd, name)
	}
	// Device nodes, fifos and sockets: mknod makes each.
	return -1, unix.Mknodat(dfd, name, mode, int(unix.Mkdev(st.Rdev_major, st.Rdev_minor)))
}

// meta sets ownership, mode, xattrs and times, in that order: chown
// clears set-id bits and file capabilities. sf and df are the source's
// and the copy's descriptors, or -1 for their paths sp and dp. made says
// the copy was just created, in a directory of this pass (no set-group-
// id bit, no default ACL yet), with its mode: it then has this process's
// owner and the mode less the umask, and needs no chown or chmod to get
// what it has already (most of a root: root's, 0644 or 0755).
func (w *worker) meta(sf int, sp string, df int, dp string, st *unix.Statx_t, made bool) error {
	j := w.j
	at, path, flags := df, "", unix.AT_EMPTY_PATH
	if df < 0 {
		at, path, flags = unix.AT_FDCWD, dp, unix.AT_SYMLINK_NOFOLLOW
	}
	mode := uint32(st.Mode) & 0o7777
	if !made || st.Uid != j.uid || st.Gid != j.gid {
		if err := unix.Fchownat(at, path, int(st.Uid), int(st.Gid), flags); err != nil {
			return pathErr("chown", dp, err)
		}
		made = false // chown cleared the set-id bits
	}
	if uint32(st.Mode)&unix.S_IFMT != unix.S_IFLNK && (!made || mode&(0o7000|j.umask) != 0) {
		var err error
		if df >= 0 {
			err = unix.Fchmod(df, uint32(st.Mode)&0o7777)
		} else {
			err = unix.Fchmodat(unix.AT_FDCWD, dp, uint32(st.Mode)&0o7777, 0)
		}
		if err != nil {
			return pathErr("chmod", dp, err)
		}
	}
	if err := w.xattrs(sf, sp, df, dp); err != nil {
		return err
	}
	ts := []unix.Timespec{
		{Sec: st.Atime.Sec, Nsec: int64(st.Atime.Nsec)},
		{Sec: st.Mtime.Sec, Nsec: int64(st.Mtime.Nsec)},
	}
	if err := unix.UtimesNanoAt(at, path, ts, flags); err != nil {
		return pathErr("utimensat", dp, err)
	}
	return nil
}
