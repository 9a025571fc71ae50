package blockdev

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FileSize is the size in bytes of a regular file or of a block device
// (BLKGETSIZE64), whichever path is; anything else is an error.
func FileSize(path string) (int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return st.Size, nil
	case unix.S_IFBLK:
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		n, err := unix.IoctlGetUint64(int(f.Fd()), unix.BLKGETSIZE64)
		if err != nil {
			return 0, &os.PathError{Op: "ioctl BLKGETSIZE64", Path: path, Err: err}
		}
		return int64(n), nil
	}
	return 0, fmt.Errorf("%s: neither a regular file nor a block device: %s", path, fileKind(st.Mode))
}

// ErrInUse is wrapped by OpenExclusive when the kernel refuses an
// exclusive open: the device is mounted, is part of a dm/md/LVM device, or
// another program holds it open exclusively.
var ErrInUse = errors.New("in use (mounted, held by dm/md/LVM, or opened exclusively)")

// OpenExclusive opens the block device at path with O_EXCL, which the
// kernel refuses with EBUSY while the device is mounted or held. Keeping
// the file open keeps others (mount, mkfs) out until it is closed, which
// makes it both a cross-check of "not in use" and a lock. flag is
// os.O_RDONLY or os.O_RDWR.
func OpenExclusive(path string, flag int) (*os.File, error) {
	if _, err := rdevOf(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, flag|unix.O_EXCL|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return nil, &os.PathError{Op: "open O_EXCL", Path: path, Err: fmt.Errorf("%w: %w", ErrInUse, unix.EBUSY)}
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// InUse reports whether the kernel considers the block device at path
// busy (see OpenExclusive).
func InUse(path string) (bool, error) {
	f, err := OpenExclusive(path, os.O_RDONLY)
	if errors.Is(err, ErrInUse) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, f.Close()
}
