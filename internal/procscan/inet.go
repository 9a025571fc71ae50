package procscan

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// Proto is the table an inet socket was listed in.
type Proto uint8

const (
	ProtoTCP Proto = iota + 1
	ProtoUDP
	ProtoUDPLite
	ProtoRaw
)

// String is the protocol's name as lsof prints it in NODE.
func (p Proto) String() string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoUDPLite:
		return "UDPLITE"
	case ProtoRaw:
		return "RAW"
	}
	return "?"
}

// InetSocket is one line of /proc/net/{tcp,udp,udplite,raw}{,6}.
type InetSocket struct {
	Inode         uint64
	Proto         Proto
	V6            bool           // from the "6" table (v4-mapped addresses included)
	Local, Remote netip.AddrPort // a raw socket's "port" is its IP protocol
	State         uint8          // TCP_ESTABLISHED (1) ... TCP_CLOSING (11); 7 (CLOSE) for an unconnected UDP socket
}

// inetTables are the /proc/net files read for inet sockets, per network
// namespace.
var inetTables = []struct {
	name  string
	proto Proto
	v6    bool
}{
	{"net/tcp", ProtoTCP, false}, {"net/tcp6", ProtoTCP, true},
	{"net/udp", ProtoUDP, false}, {"net/udp6", ProtoUDP, true},
	{"net/udplite", ProtoUDPLite, false}, {"net/udplite6", ProtoUDPLite, true},
	{"net/raw", ProtoRaw, false}, {"net/raw6", ProtoRaw, true},
}

// ParseInetLine parses one data line of a /proc/net/{tcp,udp,udplite,raw}
// table ("sl: LADDR:LPORT RADDR:RPORT ST TXQ:RXQ TR:WHEN RETR UID TIMEOUT
// INODE ..."); v6 says the table is a "6" one, whose addresses have 32
// hex digits. The header line and malformed lines give ok false; so do
// sockets with inode 0 (TIME_WAIT, connections not yet accepted), which
// no descriptor holds.
func ParseInetLine(line []byte, proto Proto, v6 bool) (s InetSocket, ok bool) {
	var f [10][]byte
	splitFields(line, f[:])
	if len(f[0]) < 2 || f[0][len(f[0])-1] != ':' {
		return InetSocket{}, false
	}
	local, ok1 := parseInetAddr(f[1], v6)
	remote, ok2 := parseInetAddr(f[2], v6)
	st, ok3 := parseUint(f[3], 16)
	ino, ok4 := parseUint(f[9], 10)
	if !(ok1 && ok2 && ok3 && ok4) || st > 255 || ino == 0 {
		return InetSocket{}, false
	}
	return InetSocket{Inode: ino, Proto: proto, V6: v6, Local: local, Remote: remote, State: uint8(st)}, true
}

// parseInetAddr parses "0100007F:1F90": the address as the kernel prints
// it, each 32-bit word in host byte order, and the port.
func parseInetAddr(b []byte, v6 bool) (netip.AddrPort, bool) {
	n := 8
	if v6 {
		n = 32
	}
	if len(b) != n+5 || b[n] != ':' {
		return netip.AddrPort{}, false
	}
	port, ok := parseUint(b[n+1:], 16)
	if !ok {
		return netip.AddrPort{}, false
	}
	var a [16]byte
	for i := 0; i < n/8; i++ {
		w, ok := parseUint(b[i*8:i*8+8], 16)
		if !ok {
			return netip.AddrPort{}, false
		}
		binary.NativeEndian.PutUint32(a[i*4:], uint32(w))
	}
	if !v6 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[:4])), uint16(port)), true
	}
	return netip.AddrPortFrom(netip.AddrFrom16(a), uint16(port)), true
}

// ParseInet parses a whole table.
func ParseInet(b []byte, proto Proto, v6 bool) []InetSocket {
	var out []InetSocket
	eachLine(b, func(line []byte) {
		if s, ok := ParseInetLine(line, proto, v6); ok {
			out = append(out, s)
		}
	})
	return out
}

// inetScan collects the inet and netlink sockets of every network
// namespace seen; nil when the scan does not describe sockets
// (Options.Describe).
type inetScan struct {
	mu      sync.Mutex
	seen    nsClaims
	socks   map[uint64]InetSocket
	netlink map[uint64]NetlinkSocket
}

// netInet reads the inet and netlink socket tables of a network
// namespace the first time it is seen, through a process of that
// namespace (as netUnix).
func (s *scan) netInet(r *reader, d *procDir, ns string) {
	t := s.inet
	// An unknown namespace is a process whose ns link could not be read:
	// its descriptors cannot be either. Each table read walks the
	// kernel's hash (a millisecond for tcp on a large host), so none is
	// read in vain.
	if t == nil || ns == "" {
		return
	}
	if !t.seen.claim(ns) {
		return
	}
	dirfd, err := d.open()
	if err != nil {
		t.seen.release(ns)
		return
	}
	var socks []InetSocket
	for _, tb := range inetTables {
		// A missing table (no IPv6, no udplite) has no sockets.
		if b, err := r.readFileAt(dirfd, tb.name); err == nil {
			socks = append(socks, ParseInet(b, tb.proto, tb.v6)...)
		}
	}
	var nl []NetlinkSocket
	if b, err := r.readFileAt(dirfd, "net/netlink"); err == nil {
		nl = ParseNetlink(b)
	}
	t.mu.Lock()
	for _, n := range nl {
		if _, dup := t.netlink[n.Inode]; !dup {
			t.netlink[n.Inode] = n
		}
	}
	for _, u := range socks {
		if _, dup := t.socks[u.Inode]; !dup { // the first line wins, as in lsof
			t.socks[u.Inode] = u
		}
	}
	t.mu.Unlock()
}
