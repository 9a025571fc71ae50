package mountops

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Error is a failed mount(2), umount2(2) or pivot_root(2): what was asked
// of the kernel, flags by name, and the errno (kept for errors.Is).
type Error struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	Op     string // "mount", "umount2", "pivot_root"
	Source string // pivot_root: new_root
	Target string // pivot_root: put_old
	FSType string
	Flags  uintptr
	Data   string
	Dir    string // working directory the call was made in, when paths are relative
	Err    error  // the errno
	Hint   string // what the errno most likely means here, for an admin
}

// Error reads like
//
//	mount src=/mnt/oldroot/proc, dst=/proc, flags=MS_MOVE: invalid argument
//	pivot_root(".", "mnt/oldroot") in /mnt/newroot: invalid argument: / or NEWROOT has shared propagation (made it private?)
func (e *Error) Error() string {
	var b strings.Builder
	if e.Op == "pivot_root" {
		b.WriteString("pivot_root(" + strconv.Quote(e.Source) + ", " + strconv.Quote(e.Target) + ")")
		if e.Dir != "" {
			b.WriteString(" in " + e.Dir)
		}
	} else {
		b.WriteString(e.Op + " ")
		if e.Source != "" {
			b.WriteString("src=" + e.Source + ", ")
		}
		b.WriteString("dst=" + e.Target)
		if e.FSType != "" {
			b.WriteString(", fstype=" + e.FSType)
		}
		if e.Flags != 0 {
			if e.Op == "umount2" {
				b.WriteString(", flags=" + UnmountFlagNames(int(e.Flags)))
			} else {
				b.WriteString(", flags=" + FlagNames(e.Flags))
			}
		}
		if e.Data != "" {
			b.WriteString(", data=" + e.Data)
		}
		if e.Dir != "" {
			b.WriteString(" in " + e.Dir)
		}
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(": " + e.Hint)
	}
	return b.String()
}

// Unwrap gives errors.Is the errno.
func (e *Error) Unwrap() error { return e.Err }

type flagName struct {
	bits uintptr
	name string
}

// mountFlagNames is in bit order, so FlagNames reads the same every time.
var mountFlagNames = []flagName{
	{unix.MS_RDONLY, "MS_RDONLY"},
	{unix.MS_NOSUID, "MS_NOSUID"},
	{unix.MS_NODEV, "MS_NODEV"},
	{unix.MS_NOEXEC, "MS_NOEXEC"},
	{unix.MS_SYNCHRONOUS, "MS_SYNCHRONOUS"},
	{unix.MS_REMOUNT, "MS_REMOUNT"},
	{unix.MS_MANDLOCK, "MS_MANDLOCK"},
	{unix.MS_DIRSYNC, "MS_DIRSYNC"},
	{unix.MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"},
	{unix.MS_NOATIME, "MS_NOATIME"},
	{unix.MS_NODIRATIME, "MS_NODIRATIME"},
	{unix.MS_BIND, "MS_BIND"},
	{unix.MS_MOVE, "MS_MOVE"},
	{unix.MS_REC, "MS_REC"},
	{unix.MS_SILENT, "MS_SILENT"},
	{unix.MS_POSIXACL, "MS_POSIXACL"},
	{unix.MS_UNBINDABLE, "MS_UNBINDABLE"},
	{unix.MS_PRIVATE, "MS_PRIVATE"},
	{unix.MS_SLAVE, "MS_SLAVE"},
	{unix.MS_SHARED, "MS_SHARED"},
	{unix.MS_RELATIME, "MS_RELATIME"},
	{unix.MS_I_VERSION, "MS_I_VERSION"},
	{unix.MS_STRICTATIME, "MS_STRICTATIME"},
	{unix.MS_LAZYTIME, "MS_LAZYTIME"},
}

var unmountFlagNames = []flagName{
	{unix.MNT_FORCE, "MNT_FORCE"},
	{unix.MNT_DETACH, "MNT_DETACH"},
	{unix.MNT_EXPIRE, "MNT_EXPIRE"},
	{unix.UMOUNT_NOFOLLOW, "UMOUNT_NOFOLLOW"},
}

// FlagNames spells mount(2) flags the way the man page does:
// "MS_REC|MS_PRIVATE". Bits without a name are given in hex; no flags is "0".
func FlagNames(flags uintptr) string { return names(mountFlagNames, flags) }

// UnmountFlagNames spells umount2(2) flags: "MNT_DETACH".
func UnmountFlagNames(flags int) string { return names(unmountFlagNames, uintptr(flags)) }

func names(table []flagName, flags uintptr) string {
	if flags == 0 {
		return "0"
	}
	var out []string
	rest := flags
	for _, f := range table {
		if flags&f.bits == f.bits {
			out = append(out, f.name)
			rest &^= f.bits
		}
	}
	if rest != 0 {
		out = append(out, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	return strings.Join(out, "|")
}
