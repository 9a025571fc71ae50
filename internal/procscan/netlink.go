package procscan

// NetlinkSocket is one line of /proc/net/netlink: a bound netlink
// socket (an unbound one is in no table).
type NetlinkSocket struct {
	Inode uint64
	Proto int // NETLINK_ROUTE (0), NETLINK_KOBJECT_UEVENT (15), ...
}

// ParseNetlinkLine parses one data line of /proc/net/netlink: "sk Eth
// Pid Groups Rmem Wmem Dump Locks Drops Inode". The header line,
// malformed lines and inode 0 give ok false.
func ParseNetlinkLine(line []byte) (s NetlinkSocket, ok bool) {
	var f [10][]byte
	splitFields(line, f[:])
	proto, ok1 := parseUint(f[1], 10)
	ino, ok2 := parseUint(f[9], 10)
	if _, ok0 := parseUint(f[0], 16); !(ok0 && ok1 && ok2) || proto > 1<<31-1 || ino == 0 {
		return NetlinkSocket{}, false
	}
	return NetlinkSocket{Inode: ino, Proto: int(proto)}, true
}

// ParseNetlink parses a whole /proc/net/netlink.
func ParseNetlink(b []byte) []NetlinkSocket {
	var out []NetlinkSocket
	eachLine(b, func(line []byte) {
		if s, ok := ParseNetlinkLine(line); ok {
			out = append(out, s)
		}
	})
	return out
}
