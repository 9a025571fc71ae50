// Package mountops does the mount-table surgery of a root swap: making
// propagation private (and shared again afterwards), pivot_root into the
// new root and back, and moving the submounts of one root to the other.
//
// Everything goes through a Mounter, so the plans (which calls, in which
// order, with which flags) are tested without root against a recording
// Fake, and the same code runs against the kernel through System.
//
// The old root is never unmounted or deleted here (unlike u-root's
// mount.SwitchRoot, which empties it): it stays at PUTOLD, so that a
// rollback can pivot back into it.
package mountops

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Mounter is the part of the kernel this package uses. Mount, Unmount
// and PivotRoot report failures as *Error.
type Mounter interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	Unmount(target string, flags int) error
	PivotRoot(newroot, putold string) error
	Chdir(dir string) error
	// Lstat, MkdirAll and CreateFile make missing mount points.
	Lstat(path string) (fs.FileInfo, error)
	MkdirAll(path string, perm fs.FileMode) error
	CreateFile(path string, perm fs.FileMode) error
}

// System is the Mounter of the running kernel.
type System struct{}

var _ Mounter = System{}

// Mount is mount(2).
func (System) Mount(source, target, fstype string, flags uintptr, data string) error {
	return mountError(source, target, fstype, flags, data, unix.Mount(source, target, fstype, flags, data))
}

// Unmount is umount2(2).
func (System) Unmount(target string, flags int) error {
	return unmountError(target, flags, unix.Unmount(target, flags))
}

// PivotRoot is pivot_root(2); relative paths are taken from the working
// directory.
func (System) PivotRoot(newroot, putold string) error {
	return pivotError(newroot, putold, unix.PivotRoot(newroot, putold))
}

// Chdir is chdir(2). It changes the directory of the calling thread's
// fs_struct (the whole process unless the thread unshared CLONE_FS).
func (System) Chdir(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return &os.PathError{Op: "chdir", Path: dir, Err: err}
	}
	return nil
}

// Lstat is os.Lstat.
func (System) Lstat(path string) (fs.FileInfo, error) { return os.Lstat(path) }

// MkdirAll is os.MkdirAll.
func (System) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

// CreateFile creates an empty file (a mount point for a file bind mount);
// it never truncates an existing one.
func (System) CreateFile(path string, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	return f.Close()
}

func mountError(source, target, fstype string, flags uintptr, data string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: "mount", Source: source, Target: target, FSType: fstype, Flags: flags, Data: data, Err: err}
}

func unmountError(target string, flags int, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: "umount2", Target: target, Flags: uintptr(flags), Err: err}
}

func pivotError(newroot, putold string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: "pivot_root", Source: newroot, Target: putold, Err: err}
}

// isNotExist is errors.Is(err, fs.ErrNotExist) for both *PathError and
// a bare errno from a fake.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT)
}
