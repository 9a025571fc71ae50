package procscan

import (
	"strings"

	"golang.org/x/sys/unix"
)

// FDInfo is what /proc/PID/fdinfo/N says about an open file. It is read
// from the open file description itself, so it never touches the file's
// filesystem: that is how a dead NFS mount stays harmless.
type FDInfo struct {
	Pos   int64
	Flags uint32 // the open flags, octal in the file
	MntID int    // mount the file was opened through (global mount ID)
	Ino   uint64 // inode number ("ino:" line, Linux 5.14 and later)

	HasFlags, HasMntID, HasIno bool
}

// ParseFDInfo parses the body of an fdinfo file. Lines it does not know
// (eventfd-count, tfd, inotify, ...) are ignored; a malformed value of a
// known line leaves that field unset.
func ParseFDInfo(b []byte) FDInfo {
	var fi FDInfo
	eachKeyValue(b, func(key, val []byte) {
		switch string(key) { // no allocation: the compiler special-cases this
		case "pos":
			if v, ok := parseUint(val, 10); ok && v <= 1<<63-1 {
				fi.Pos = int64(v)
			}
		case "flags":
			if v, ok := parseUint(val, 8); ok && v <= 1<<32-1 {
				fi.Flags, fi.HasFlags = uint32(v), true
			}
		case "mnt_id":
			if v, ok := parseUint(val, 10); ok && v <= 1<<31-1 {
				fi.MntID, fi.HasMntID = int(v), true
			}
		case "ino":
			if v, ok := parseUint(val, 10); ok {
				fi.Ino, fi.HasIno = v, true
			}
		}
	})
	return fi
}

// Access is the access mode letter lsof prints after the fd number:
// 'r' read-only, 'w' write-only, 'u' read and write. O_PATH
// descriptors, which allow neither, get ' '.
func Access(flags uint32) byte {
	if flags&unix.O_PATH != 0 {
		return ' '
	}
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		return 'r'
	case unix.O_WRONLY:
		return 'w'
	default:
		return 'u'
	}
}

// Writable reports whether a file opened with flags can be written through.
func Writable(flags uint32) bool {
	a := Access(flags)
	return a == 'w' || a == 'u'
}

// flagNames are the open flags worth naming, in the order they print.
// Values come from x/sys/unix because they differ between architectures;
// O_LARGEFILE is there by its octal value since x/sys spells it 0 on
// 64-bit targets while the kernel still reports it.
var flagNames = []struct {
	bit  uint32
	name string
}{
	{unix.O_APPEND, "O_APPEND"},
	{unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_SYNC, "O_SYNC"},
	{unix.O_DSYNC, "O_DSYNC"},
	{unix.O_DIRECT, "O_DIRECT"},
	{unix.O_DIRECTORY, "O_DIRECTORY"},
	{unix.O_NOFOLLOW, "O_NOFOLLOW"},
	{unix.O_NOATIME, "O_NOATIME"},
	{unix.O_CLOEXEC, "O_CLOEXEC"},
	{unix.O_PATH, "O_PATH"},
	{unix.O_TMPFILE &^ unix.O_DIRECTORY, "O_TMPFILE"},
	{0o100000, "O_LARGEFILE"},
}

// FlagNames spells the status flags of an open file ("O_APPEND|O_CLOEXEC"),
// access mode excluded; O_SYNC includes O_DSYNC's bit and is named alone.
func FlagNames(flags uint32) string {
	var names []string
	for _, f := range flagNames {
		if f.bit == 0 || flags&f.bit != f.bit {
			continue
		}
		if f.name == "O_DSYNC" && flags&unix.O_SYNC == unix.O_SYNC {
			continue
		}
		if f.name == "O_DIRECTORY" && flags&unix.O_TMPFILE == unix.O_TMPFILE {
			continue
		}
		names = append(names, f.name)
	}
	return strings.Join(names, "|")
}

// Small byte helpers: the hot loop parses without strconv's string
// conversions and without allocating.

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// splitFields fills f with the blank-separated fields of line, in order,
// and returns what follows them; fields past the line's end are empty.
func splitFields(line []byte, f [][]byte) (rest []byte) {
	for i := range f {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		j := indexByte(line, ' ')
		if j < 0 {
			f[i], line = line, nil
		} else {
			f[i], line = line[:j], line[j+1:]
		}
	}
	return line
}

// eachKeyValue calls fn with the key and the trimmed value of every
// "key: value" line of b (an fdinfo file); lines without a colon are
// skipped.
func eachKeyValue(b []byte, fn func(key, val []byte)) {
	eachLine(b, func(line []byte) {
		if colon := indexByte(line, ':'); colon >= 0 {
			fn(line[:colon], trimSpace(line[colon+1:]))
		}
	})
}

// eachLine calls fn with every line of b, without its newline.
func eachLine(b []byte, fn func(line []byte)) {
	for len(b) > 0 {
		line := b
		if i := indexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		fn(line)
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// parseUint parses a whole field in base 8, 10 or 16; overflow or any
// stray byte fails.
func parseUint(b []byte, base uint64) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		if v > (1<<64-1-d)/base {
			return 0, false
		}
		v = v*base + d
	}
	return v, true
}
