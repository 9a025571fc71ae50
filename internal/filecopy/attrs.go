package filecopy

import (
	"bytes"

	"golang.org/x/sys/unix"
)

// xattrs copies every extended attribute: security.selinux,
// security.capability, trusted.*, user.* and the POSIX ACLs
// (system.posix_acl_access, _default). sf and df are descriptors, or -1
// for the paths sp and dp (symlinks, device nodes: not opened).
func (w *worker) xattrs(sf int, sp string, df int, dp string) error {
	n, err := w.list(sf, sp)
	if err != nil || n == 0 {
		if err == unix.ENOTSUP {
			err = nil // a source filesystem without xattrs
		}
		if err != nil {
			err = pathErr("listxattr", sp, err)
		}
		return err
	}
	for names := w.xl[:n]; len(names) > 0; {
		i := bytes.IndexByte(names, 0)
		if i < 0 {
			i = len(names)
		}
		nb := names[:i]
		names = names[min(i+1, len(names)):]
		if xfsACL(nb) {
			continue
		}
		name := string(nb)
		v, err := w.get(sf, sp, name)
		if err == unix.ENODATA {
			continue // removed meanwhile
		}
		if err == nil {
			if df >= 0 {
				err = unix.Fsetxattr(df, name, w.xv[:v], 0)
			} else {
				err = unix.Lsetxattr(dp, name, w.xv[:v], 0)
			}
		}
		if err != nil {
			return pathErr("setxattr "+name, dp, err)
		}
	}
	return nil
}

func (w *worker) list(fd int, p string) (int, error) {
	for {
		var n int
		var err error
		if fd >= 0 {
			n, err = unix.Flistxattr(fd, w.xl)
		} else {
			n, err = unix.Llistxattr(p, w.xl)
		}
		if err != unix.ERANGE {
			return n, err
		}
		w.xl = make([]byte, 2*len(w.xl))
	}
}

func (w *worker) get(fd int, p, name string) (int, error) {
	for {
		var n int
		var err error
		if fd >= 0 {
			n, err = unix.Fgetxattr(fd, name, w.xv)
		} else {
			n, err = unix.Lgetxattr(p, name, w.xv)
		}
		if err != unix.ERANGE {
			return n, err
		}
		w.xv = make([]byte, 2*len(w.xv))
	}
}

// xfsACL: xfs shows root its ACLs twice, as system.posix_acl_* and as
// its own trusted.SGI_ACL_FILE and _DEFAULT; the first are copied.
func xfsACL(name []byte) bool {
	return bytes.HasPrefix(name, []byte("trusted.SGI_ACL_"))
}

// The inode flags copied (chattr's S, i, a, d, A), and the statx
// attributes that show some are set (no ioctl for the rest).
const (
	keptFlags = 0x08 | 0x10 | 0x20 | 0x40 | 0x80 // FS_SYNC_FL|FS_IMMUTABLE_FL|FS_APPEND_FL|FS_NODUMP_FL|FS_NOATIME_FL
	flagAttrs = unix.STATX_ATTR_IMMUTABLE | unix.STATX_ATTR_APPEND | unix.STATX_ATTR_NODUMP
)

// getFlags reads the kept flags of the file open at fd.
func getFlags(fd int) int {
	f, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return 0
	}
	return int(f) & keptFlags
}

// keepFlags notes the flags of the source (fd, or name in the directory
// fd) for the copy at dp, set when the copy ends.
func (w *worker) keepFlags(fd int, name, dp string) {
	if name != "" {
		var err error
		if fd, err = open(fd, name, rdFlags|unix.O_NONBLOCK); err != nil {
			return
		}
		defer unix.Close(fd)
	}
	if f := getFlags(fd); f != 0 {
		w.j.lmu.Lock()
		w.j.flags = append(w.j.flags, flagged{dp, f})
		w.j.lmu.Unlock()
	}
}

// setFlags sets the kept flags of path to f, leaving the filesystem's
// own (ext4's extents flag).
func setFlags(path string, f int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		var cur uint32
		if cur, err = unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS); err == nil {
			err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(cur)&^keptFlags|f)
		}
		unix.Close(fd)
	}
	if err != nil {
		return pathErr("FS_IOC_SETFLAGS", path, err)
	}
	return nil
}
