package procscan

import (
	"errors"
	"strconv"

	"golang.org/x/sys/unix"
)

// reader holds one worker's reusable buffers; it reads /proc with raw
// openat/read/readlinkat/getdents relative to the process's directory,
// which saves the path walk from the proc root for every file.
type reader struct {
	buf    []byte     // file contents
	link   [4096]byte // readlink target (PATH_MAX)
	dirent [8192]byte
	name   []byte // scratch for "fdinfo/N"
}

func newReader() *reader { return &reader{buf: make([]byte, 64<<10)} }

// readFileAt reads a whole /proc file into r.buf and returns it (valid
// until the next call).
func (r *reader) readFileAt(dirfd int, name string) ([]byte, error) {
	return r.read(dirfd, name, false)
}

// readOnceAt reads a /proc file that the kernel generates in one go
// (single_open: status, fdinfo, cgroup): a read that leaves room in the
// buffer has returned all of it, which saves the read that returns 0.
func (r *reader) readOnceAt(dirfd int, name string) ([]byte, error) {
	return r.read(dirfd, name, true)
}

func (r *reader) read(dirfd int, name string, once bool) ([]byte, error) {
	fd, err := openat(dirfd, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Read(fd, r.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &pathErr{op: "read", name: name, err: err}
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
		if once && n < len(r.buf) {
			return r.buf[:n], nil
		}
	}
}

// readlinkAt returns the link text of dirfd/name.
func (r *reader) readlinkAt(dirfd int, name string) (string, error) {
	for {
		n, err := unix.Readlinkat(dirfd, name, r.link[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", &pathErr{op: "readlink", name: name, err: err}
		}
		return string(r.link[:n]), nil
	}
}

// fdNumbers lists the numeric entries of the directory dirfd/name.
func (r *reader) fdNumbers(dirfd int, name string, into []int) ([]int, error) {
	fd, err := openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Getdents(fd, r.dirent[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &pathErr{op: "getdents", name: name, err: err}
		}
		if n == 0 {
			return into, nil
		}
		b := r.dirent[:n]
		for len(b) >= 19 {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				break
			}
			nm := b[19:reclen]
			if i := indexByte(nm, 0); i >= 0 {
				nm = nm[:i]
			}
			if v, ok := parseUint(nm, 10); ok && v < 1<<31 {
				into = append(into, int(v))
			}
			b = b[reclen:]
		}
	}
}

// number returns n in decimal, allocation-free for small numbers.
func (r *reader) number(n int) string {
	if n < len(smallNumbers) {
		return smallNumbers[n]
	}
	return strconv.Itoa(n)
}

var smallNumbers = func() []string {
	s := make([]string, 1024)
	for i := range s {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// subName returns "prefix/N" built in a reused buffer.
func (r *reader) subName(prefix string, n int) string {
	r.name = append(r.name[:0], prefix...)
	r.name = append(r.name, '/')
	r.name = strconv.AppendInt(r.name, int64(n), 10)
	return string(r.name)
}

func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &pathErr{op: "open", name: name, err: err}
		}
		return fd, nil
	}
}

// pathErr is a cheap error for the hot path; it becomes an os.PathError
// with the full path only when it is reported.
type pathErr struct {
	op, name string
	err      error
}

func (e *pathErr) Error() string { return e.op + " " + e.name + ": " + e.err.Error() }
func (e *pathErr) Unwrap() error { return e.err }

// vanished reports errors that mean the process (or the fd) went away
// while being read: not a failure of the scan.
func vanished(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}
