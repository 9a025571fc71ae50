package procscan

import "strings"

// UnixSocket is one line of /proc/net/unix.
type UnixSocket struct {
	// Addr is the socket's kernel address as the Num column shows it
	// (hashed by %pK unless kptr_restrict allows; zeros when it forbids),
	// AddrDigits that column's width: lsof prints it in DEVICE.
	Addr       uint64
	AddrDigits uint8
	Inode      uint64
	Type       uint16 // 1 STREAM, 2 DGRAM, 5 SEQPACKET
	State      uint8  // 1 unconnected, 3 connected, ...
	Flags      uint32 // 0x10000: listening
	Path       string // "" unbound, "@name" abstract, else the bound path as given to bind
}

// Listening reports whether the socket accepts connections.
func (s UnixSocket) Listening() bool { return s.Flags&0x10000 != 0 }

// Bound reports whether the socket has a name in a filesystem (not
// abstract, not unnamed): a file some mount holds.
func (s UnixSocket) Bound() bool { return s.Path != "" && s.Path[0] != '@' }

// TypeName is the socket type the way lsof and netstat spell it.
func (s UnixSocket) TypeName() string {
	switch s.Type {
	case 1:
		return "STREAM"
	case 2:
		return "DGRAM"
	case 3:
		return "RAW"
	case 4:
		return "RDM"
	case 5:
		return "SEQPACKET"
	}
	return "UNKNOWN"
}

// ParseUnixLine parses one data line of /proc/net/unix:
// "Num RefCount Protocol Flags Type St Inode Path". The header line and
// malformed lines give ok false.
func ParseUnixLine(line []byte) (s UnixSocket, ok bool) {
	var f [7][]byte
	line = splitFields(line, f[:])
	if len(f[0]) < 2 || len(f[0]) > 17 || f[0][len(f[0])-1] != ':' {
		return UnixSocket{}, false
	}
	addr, ok0 := parseUint(f[0][:len(f[0])-1], 16)
	flags, ok1 := parseUint(f[3], 16)
	typ, ok2 := parseUint(f[4], 16)
	st, ok3 := parseUint(f[5], 16)
	ino, ok4 := parseUint(f[6], 10)
	if !(ok0 && ok1 && ok2 && ok3 && ok4) || flags > 1<<32-1 || typ > 1<<16-1 || st > 255 {
		return UnixSocket{}, false
	}
	s = UnixSocket{Addr: addr, AddrDigits: uint8(len(f[0]) - 1), Inode: ino, Type: uint16(typ), State: uint8(st), Flags: uint32(flags)}
	for len(line) > 0 && line[0] == ' ' {
		line = line[1:]
	}
	s.Path = string(line)
	return s, true
}

// ParseUnix parses a whole /proc/net/unix.
func ParseUnix(b []byte) []UnixSocket {
	var out []UnixSocket
	for _, line := range strings.Split(string(b), "\n") {
		if s, ok := ParseUnixLine([]byte(line)); ok {
			out = append(out, s)
		}
	}
	return out
}
