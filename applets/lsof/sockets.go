package lsof

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// This file spells sockets and anonymous inodes as lsof 4.95 does on
// Linux (dialects/linux/dsock.c, dproc.c, print.c), always numerically
// (-n -P).

// unixDevice is lsof's DEVICE of a unix socket: "0x" and the Num column
// of /proc/net/unix as it stands.
func unixDevice(u procscan.UnixSocket) string {
	s := strconv.FormatUint(u.Addr, 16)
	if pad := int(u.AddrDigits) - len(s); pad > 0 {
		s = strings.Repeat("0", pad) + s
	}
	return "0x" + s
}

// unixName is lsof's NAME of a unix socket: the path, the type and the
// state. lsof splits /proc/net/unix lines at blanks and colons, so it
// shows a path only up to its first space, tab or colon; so does this.
func unixName(u procscan.UnixSocket) string {
	p := u.Path
	if i := strings.IndexAny(p, " \t:"); i >= 0 {
		p = p[:i]
	}
	n := "type=" + u.TypeName() + " (" + unixState(u) + ")"
	if p != "" {
		n = p + " " + n
	}
	return n
}

// tcpStates are the TCP states as lsof names them, by number.
var tcpStates = []string{"CLOSED", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2",
	"TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"}

// inetType is lsof's TYPE of an inet socket.
func inetType(s procscan.InetSocket) string {
	switch {
	case s.Proto == procscan.ProtoRaw && s.V6:
		return "raw6"
	case s.Proto == procscan.ProtoRaw:
		return "raw"
	case s.V6:
		return "IPv6"
	}
	return "IPv4"
}

// inetName is lsof's NAME of an inet socket: "LOCAL->REMOTE", an address
// that is all zeros with port 0 left out, "*" for a wildcard address or
// port; then, after a blank, "(STATE)" for TCP and nothing for UDP (the
// blank stays). A "6" table's v4-mapped addresses print as IPv4. Raw
// sockets show the table's own hex fields and "st=".
func inetName(s procscan.InetSocket) string {
	if s.Proto == procscan.ProtoRaw {
		b := appendRawEnd(nil, s.Local, s.V6)
		b = append(b, "->"...)
		b = appendRawEnd(b, s.Remote, s.V6)
		b = append(b, " st="...)
		b = appendHex(b, uint64(s.State), 2)
		return string(b)
	}
	l, r := addr16(s.Local.Addr()), addr16(s.Remote.Addr())
	hasL := l != [16]byte{} || s.Local.Port() != 0
	hasR := r != [16]byte{} || s.Remote.Port() != 0
	v4 := !s.V6 || hasL && s.Local.Addr().Is4In6() || hasR && s.Remote.Addr().Is4In6()
	var b []byte
	if hasL {
		b = appendInetEnd(b, l, s.Local.Port(), v4)
	}
	if hasR {
		b = append(b, "->"...)
		b = appendInetEnd(b, r, s.Remote.Port(), v4)
	}
	if len(b) > 0 {
		b = append(b, ' ')
	}
	if s.Proto == procscan.ProtoTCP {
		b = append(b, '(')
		if int(s.State) < len(tcpStates) {
			b = append(b, tcpStates[s.State]...)
		} else {
			b = append(b, "UNKNOWN_TCP_STATE_"...)
			b = strconv.AppendUint(b, uint64(s.State), 10)
		}
		b = append(b, ')')
	}
	return string(b)
}

// addr16 is an address's 16 bytes; an IPv4 one in the last four, the
// rest zero (not v4-mapped: lsof tests the whole for zero).
func addr16(a netip.Addr) [16]byte {
	if a.Is4() {
		var x [16]byte
		v := a.As4()
		copy(x[12:], v[:])
		return x
	}
	return a.As16()
}

// appendInetEnd appends "HOST:PORT"; v4 takes the address's last four
// bytes.
func appendInetEnd(b []byte, a [16]byte, port uint16, v4 bool) []byte {
	switch {
	case v4 && [4]byte(a[12:]) == [4]byte{}, !v4 && a == [16]byte{}:
		b = append(b, '*')
	case v4:
		b = appendDotted(b, a[12:])
	default:
		b = append(b, '[')
		b = appendNtop6(b, a)
		b = append(b, ']')
	}
	b = append(b, ':')
	if port == 0 {
		return append(b, '*')
	}
	return strconv.AppendUint(b, uint64(port), 10)
}

func appendDotted(b []byte, a []byte) []byte {
	for i, x := range a[:4] {
		if i > 0 {
			b = append(b, '.')
		}
		b = strconv.AppendUint(b, uint64(x), 10)
	}
	return b
}

// appendNtop6 spells an IPv6 address as glibc's inet_ntop does (which
// lsof calls): the first longest run of two or more zero words as "::",
// and the last 32 bits dotted after "::" or "::ffff:" (IPv4-compatible
// and v4-mapped forms), which net/netip spells otherwise for the former.
func appendNtop6(b []byte, a [16]byte) []byte {
	var w [8]uint16
	for i := range w {
		w[i] = binary.BigEndian.Uint16(a[2*i:])
	}
	base, n := -1, 0
	for i := 0; i < 8; {
		if w[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && w[j] == 0 {
			j++
		}
		if j-i > n {
			base, n = i, j-i
		}
		i = j
	}
	if n < 2 {
		base = -1
	}
	for i := 0; i < 8; i++ {
		if base >= 0 && i >= base && i < base+n {
			if i == base {
				b = append(b, ':')
			}
			continue
		}
		if i != 0 {
			b = append(b, ':')
		}
		if i == 6 && base == 0 && (n == 6 || n == 5 && w[5] == 0xffff) {
			return appendDotted(b, a[12:])
		}
		b = strconv.AppendUint(b, uint64(w[i]), 16)
	}
	if base >= 0 && base+n == 8 {
		b = append(b, ':')
	}
	return b
}

// appendRawEnd appends an address and port as /proc/net/raw{,6} prints
// them: each 32-bit word of the address in host order, upper-case hex.
func appendRawEnd(b []byte, ap netip.AddrPort, v6 bool) []byte {
	a := ap.Addr().AsSlice()
	if v6 && len(a) != 16 || !v6 && len(a) != 4 {
		a = make([]byte, 4+12*btoi(v6))
	}
	for i := 0; i < len(a); i += 4 {
		b = appendHex(b, uint64(binary.NativeEndian.Uint32(a[i:])), 8)
	}
	b = append(b, ':')
	return appendHex(b, uint64(ap.Port()), 4)
}

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

func appendHex(b []byte, v uint64, digits int) []byte {
	s := strings.ToUpper(strconv.FormatUint(v, 16))
	for range digits - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

// anonName is lsof's NAME of an anonymous inode: the link text after
// "anon_inode:", with eventfd's id, a pidfd's pid and the descriptors an
// eventpoll watches (sorted; "..." after the 32 lsof reads) from fdinfo.
func anonName(f *procscan.FD) string {
	name := strings.TrimPrefix(f.Name, "anon_inode:")
	a := f.Anon
	if a == nil {
		return name
	}
	switch {
	case name == "[eventfd]" && a.HasEventfdID:
		return "[eventfd:" + strconv.Itoa(a.EventfdID) + "]"
	case name == "[pidfd]" && a.HasPid:
		return "[pidfd:" + strconv.Itoa(a.Pid) + "]"
	case name == "[eventpoll]" && len(a.TFDs) > 0:
		tfds := slices.Clone(a.TFDs)
		slices.Sort(tfds)
		b := []byte("[eventpoll:")
		for i, t := range tfds {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(t), 10)
		}
		if len(tfds) == procscan.MaxTFDs {
			b = append(b, "..."...)
		}
		return string(append(b, ']'))
	}
	return name
}

// netlinkProtos are the netlink protocols lsof names, by number ("" for
// 17, which it does not). An array, not a map: static data, no init code.
var netlinkProtos = [...]string{0: "ROUTE", 1: "UNUSED", 2: "USERSOCK", 3: "FIREWALL", 4: "INET_DIAG", 5: "NFLOG",
	6: "XFRM", 7: "SELINUX", 8: "ISCSI", 9: "AUDIT", 10: "FIB_LOOKUP", 11: "CONNECTOR", 12: "NETFILTER", 13: "IP6_FW",
	14: "DNRTMSG", 15: "KOBJECT_UEVENT", 16: "GENERIC", 18: "SCSITRANSPORT", 19: "ECRYPTFS", 20: "RDMA", 21: "CRYPTO", 22: "SMC"}

// netlinkName is lsof's NAME of a netlink socket: its protocol.
func netlinkName(proto int) string {
	if proto >= 0 && proto < len(netlinkProtos) && netlinkProtos[proto] != "" {
		return netlinkProtos[proto]
	}
	return "unknown protocol: " + strconv.Itoa(proto)
}

// sockProtocol is lsof's NAME of a socket in none of the tables: the
// protocol sockfs names in the socket's system.sockprotoname attribute.
func sockProtocol(procRoot string, pid, fd int) string {
	var buf [64]byte
	n, err := unix.Getxattr(procRoot+"/"+strconv.Itoa(pid)+"/fd/"+strconv.Itoa(fd), "system.sockprotoname", buf[:])
	if err != nil || n <= 0 {
		return "can't identify protocol"
	}
	p := buf[:n]
	if i := slices.Index(p, 0); i >= 0 {
		p = p[:i]
	}
	return "protocol: " + string(p)
}
