package mountops

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFlagNames(t *testing.T) {
	for _, tc := range []struct {
		flags uintptr
		want  string
	}{
		{0, "0"},
		{unix.MS_MOVE, "MS_MOVE"},
		{unix.MS_REC | unix.MS_PRIVATE, "MS_REC|MS_PRIVATE"},
		{unix.MS_SHARED, "MS_SHARED"},
		{unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY, "MS_RDONLY|MS_REMOUNT|MS_BIND"},
		{unix.MS_REC | unix.MS_SLAVE | 1<<29, "MS_REC|MS_SLAVE|0x20000000"},
	} {
		if got := FlagNames(tc.flags); got != tc.want {
			t.Errorf("FlagNames(%#x) = %q, want %q", tc.flags, got, tc.want)
		}
	}
	if got, want := UnmountFlagNames(unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW), "MNT_DETACH|UMOUNT_NOFOLLOW"; got != want {
		t.Errorf("UnmountFlagNames = %q, want %q", got, want)
	}
}

func TestErrorWrapsErrnoAndNamesFlags(t *testing.T) {
	f := &Fake{Fail: func(c Call) error {
		if c.Op == "mount" {
			return unix.EINVAL
		}
		return unix.EBUSY
	}}
	err := f.Mount("/mnt/oldroot/proc", "/proc", "", unix.MS_MOVE, "")
	if !errors.Is(err, unix.EINVAL) {
		t.Fatalf("errors.Is(%v, EINVAL) = false", err)
	}
	if got, want := err.Error(), "mount src=/mnt/oldroot/proc, dst=/proc, flags=MS_MOVE: invalid argument"; got != want {
		t.Errorf("mount error:\n got %s\nwant %s", got, want)
	}
	err = f.Unmount("/mnt/oldroot", unix.MNT_DETACH)
	if got, want := err.Error(), "umount2 dst=/mnt/oldroot, flags=MNT_DETACH: device or resource busy"; got != want {
		t.Errorf("unmount error:\n got %s\nwant %s", got, want)
	}
	var e *Error
	if !errors.As(err, &e) || !errors.Is(e.Unwrap(), unix.EBUSY) {
		t.Errorf("Unwrap of %v is not EBUSY", err)
	}
	err = f.PivotRoot(".", "mnt/oldroot")
	errors.As(err, &e)
	e.Dir, e.Hint = "/mnt/newroot", WhyBusy
	if got, want := err.Error(), `pivot_root(".", "mnt/oldroot") in /mnt/newroot: device or resource busy: `+WhyBusy; got != want {
		t.Errorf("pivot_root error:\n got %s\nwant %s", got, want)
	}
	if !strings.Contains((&Error{Op: "mount", Target: "/", Flags: unix.MS_REC | unix.MS_PRIVATE, Err: unix.EPERM}).Error(), "flags=MS_REC|MS_PRIVATE: operation not permitted") {
		t.Error("propagation flags not spelled by name")
	}
}
