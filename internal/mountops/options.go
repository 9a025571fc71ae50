package mountops

import "golang.org/x/sys/unix"

// OptionWord is what one mount -o word means to mount(2).
type OptionWord struct {
	Set, Clear uintptr
	Propagate  bool // a propagation change: a mount(2) call of its own
}

// Option is the mount(2) meaning of the option word w; ok is false for a
// word that goes to the filesystem as data. The one table of option words:
// the rescue shell's mount -o and OptionFlags read it.
func Option(w string) (o OptionWord, ok bool) {
	switch w {
	case "defaults", "auto", "noauto", "nofail", "user", "nouser", "_netdev":
		return o, true
	case "ro":
		o.Set = unix.MS_RDONLY
	case "rw":
		o.Clear = unix.MS_RDONLY
	case "nosuid":
		o.Set = unix.MS_NOSUID
	case "suid":
		o.Clear = unix.MS_NOSUID
	case "nodev":
		o.Set = unix.MS_NODEV
	case "dev":
		o.Clear = unix.MS_NODEV
	case "noexec":
		o.Set = unix.MS_NOEXEC
	case "exec":
		o.Clear = unix.MS_NOEXEC
	case "sync":
		o.Set = unix.MS_SYNCHRONOUS
	case "async":
		o.Clear = unix.MS_SYNCHRONOUS
	case "dirsync":
		o.Set = unix.MS_DIRSYNC
	case "remount":
		o.Set = unix.MS_REMOUNT
	case "bind":
		o.Set = unix.MS_BIND
	case "rbind":
		o.Set = unix.MS_BIND | unix.MS_REC
	case "move":
		o.Set = unix.MS_MOVE
	case "noatime":
		o.Set = unix.MS_NOATIME
	case "atime":
		o.Clear = unix.MS_NOATIME
	case "nodiratime":
		o.Set = unix.MS_NODIRATIME
	case "diratime":
		o.Clear = unix.MS_NODIRATIME
	case "relatime":
		o.Set = unix.MS_RELATIME
	case "norelatime":
		o.Clear = unix.MS_RELATIME
	case "strictatime":
		o.Set = unix.MS_STRICTATIME
	case "lazytime":
		o.Set = unix.MS_LAZYTIME
	case "silent":
		o.Set = unix.MS_SILENT
	case "loud":
		o.Clear = unix.MS_SILENT
	case "nosymfollow":
		o.Set = unix.MS_NOSYMFOLLOW
	case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
		o.Propagate = true
		switch w[len(w)-4:] {
		case "vate":
			o.Set = unix.MS_PRIVATE
		case "ared":
			o.Set = unix.MS_SHARED
		case "lave":
			o.Set = unix.MS_SLAVE
		default:
			o.Set = unix.MS_UNBINDABLE
		}
		if w[0] == 'r' {
			o.Set |= unix.MS_REC
		}
	default:
		return o, false
	}
	return o, true
}
