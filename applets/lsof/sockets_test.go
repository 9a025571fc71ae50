package lsof

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/procscan"
)

// TestSocketAndAnonRows prints the fixture's sockets and anonymous
// inodes as lsof 4.95 does: unix sockets with their kernel address as
// DEVICE and the path up to its first blank, inet sockets with the inode
// as DEVICE and the protocol as NODE, a raw socket's hex fields, netlink
// sockets by their protocol, eventfd, pidfd and eventpoll named from
// fdinfo. A fixture is not the live procfs: no device for anonymous
// inodes, no protocol for a socket in no table.
func TestSocketAndAnonRows(t *testing.T) {
	got, err := run(t, "-p", "300", "-a", "-d", "3-14")
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"COMMAND PID USER   FD      TYPE             DEVICE SIZE/OFF NODE NAME\n" +
		"sshd    300 root    3u     unix 0x0000000000000000      0t0 2002 type=STREAM (CONNECTED)\n" +
		"sshd    300 root    4u     unix 0x0000000000000000      0t0 3003 sock type=STREAM (LISTEN)\n" +
		"sshd    300 root    5u     IPv4               4001      0t0  TCP *:22 (LISTEN)\n" +
		"sshd    300 root    6u     IPv6               4002      0t0  TCP 127.0.0.1:22->127.0.0.1:50000 (ESTABLISHED)\n" +
		"sshd    300 root    7u     IPv6               4003      0t0  UDP [::1]:53 \n" +
		"sshd    300 root    8u      raw                         0t0 4004 00000000:0001->00000000:0000 st=07\n" +
		"sshd    300 root    9u  a_inode                           0      [eventfd:12]\n" +
		"sshd    300 root   10u  a_inode                           0      [pidfd:42]\n" +
		"sshd    300 root   11u  a_inode                           0      [eventpoll:5,9]\n" +
		"sshd    300 root   12u     sock                         0t0 4999 socket:[4999]\n" +
		"sshd    300 root   13u  netlink                         0t0 4005 ROUTE\n" +
		"sshd    300 root   14u  netlink                         0t0 4006 unknown protocol: 30\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	out, err := run(t, "-p", "1")
	if err != nil {
		t.Fatal(err)
	}
	if w := " 0x000000009c42feb8      0t0  1001 /run/systemd/notify type=STREAM (LISTEN)\n"; !strings.Contains(out, w) {
		t.Errorf("lsof -p 1 lacks %q:\n%s", w, out)
	}
}

func TestInetName(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		s    procscan.InetSocket
		want string
	}{
		{procscan.InetSocket{Proto: procscan.ProtoTCP, Local: ap("127.0.0.1:8080"), Remote: ap("0.0.0.0:0"), State: 10}, "127.0.0.1:8080 (LISTEN)"},
		{procscan.InetSocket{Proto: procscan.ProtoTCP, Local: ap("0.0.0.0:22"), Remote: ap("10.0.0.2:0"), State: 2}, "*:22->10.0.0.2:* (SYN_SENT)"},
		{procscan.InetSocket{Proto: procscan.ProtoTCP, Local: ap("0.0.0.0:0"), Remote: ap("0.0.0.0:0"), State: 7}, "(CLOSE)"},
		{procscan.InetSocket{Proto: procscan.ProtoTCP, Local: ap("1.2.3.4:1"), Remote: ap("0.0.0.0:0"), State: 12}, "1.2.3.4:1 (UNKNOWN_TCP_STATE_12)"},
		{procscan.InetSocket{Proto: procscan.ProtoUDP, Local: ap("127.0.0.1:46447"), Remote: ap("127.0.0.1:40583"), State: 1}, "127.0.0.1:46447->127.0.0.1:40583 "},
		{procscan.InetSocket{Proto: procscan.ProtoUDPLite, Local: ap("0.0.0.0:44314"), Remote: ap("0.0.0.0:0"), State: 7}, "*:44314 "},
		{procscan.InetSocket{Proto: procscan.ProtoTCP, V6: true, Local: ap("[::]:50539"), Remote: ap("[::]:0"), State: 10}, "*:50539 (LISTEN)"},
		{procscan.InetSocket{Proto: procscan.ProtoTCP, V6: true, Local: ap("[::ffff:127.0.0.1]:43612"), Remote: ap("[::ffff:127.0.0.1]:50539"), State: 1},
			"127.0.0.1:43612->127.0.0.1:50539 (ESTABLISHED)"},
		{procscan.InetSocket{Proto: procscan.ProtoTCP, V6: true, Local: ap("[2001:db8::1:0:0:1]:443"), Remote: ap("[fe80::1]:5"), State: 1},
			"[2001:db8::1:0:0:1]:443->[fe80::1]:5 (ESTABLISHED)"},
		// glibc's inet_ntop, not net/netip: the IPv4-compatible form.
		{procscan.InetSocket{Proto: procscan.ProtoUDP, V6: true, Local: ap("[::102:304]:53"), Remote: ap("[::]:0"), State: 7}, "[::1.2.3.4]:53 "},
		{procscan.InetSocket{Proto: procscan.ProtoRaw, V6: true, Local: ap("[::1]:58"), Remote: ap("[::]:0"), State: 7},
			"00000000000000000000000001000000:003A->00000000000000000000000000000000:0000 st=07"},
	} {
		if got := inetName(tc.s); got != tc.want {
			t.Errorf("inetName(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestAppendNtop6(t *testing.T) {
	for in, want := range map[string]string{
		"::": "::", "::1": "::1", "1::": "1::", "2001:db8:0:0:1:0:0:1": "2001:db8::1:0:0:1", "1:0:2:3:4:5:6:7": "1:0:2:3:4:5:6:7",
		"::ffff:1.2.3.4": "::ffff:1.2.3.4", "::1.2.3.4": "::1.2.3.4", "fe80::ff:fe00:1": "fe80::ff:fe00:1",
	} {
		if got := string(appendNtop6(nil, netip.MustParseAddr(in).As16())); got != want {
			t.Errorf("appendNtop6(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestUnixColumns(t *testing.T) {
	u := procscan.UnixSocket{Addr: 0xc1a2b3c4, AddrDigits: 8, Type: 2, State: 1, Path: "/run/a:b"}
	if got := unixDevice(u); got != "0xc1a2b3c4" {
		t.Errorf("unixDevice = %q, want 0xc1a2b3c4", got)
	}
	if got := unixName(u); got != "/run/a type=DGRAM (UNCONNECTED)" {
		t.Errorf("unixName = %q, want the path up to the colon, as lsof", got)
	}
	u = procscan.UnixSocket{Addr: 0x25e4b415, AddrDigits: 16, Type: 1, State: 1, Flags: 0x10000, Path: "@abstract-name"}
	if got, want := unixDevice(u)+" "+unixName(u), "0x0000000025e4b415 @abstract-name type=STREAM (LISTEN)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestAnonName(t *testing.T) {
	tfds := make([]int, procscan.MaxTFDs)
	var want strings.Builder
	want.WriteString("[eventpoll:")
	for i := range tfds {
		tfds[i] = procscan.MaxTFDs - i
		if i > 0 {
			want.WriteByte(',')
		}
		want.WriteString(strconv.Itoa(i + 1))
	}
	want.WriteString("...]")
	for _, tc := range []struct {
		f    procscan.FD
		want string
	}{
		{procscan.FD{Name: "anon_inode:[eventpoll]", Anon: &procscan.AnonInfo{TFDs: tfds}}, want.String()},
		{procscan.FD{Name: "anon_inode:[eventpoll]", Anon: &procscan.AnonInfo{}}, "[eventpoll]"},
		{procscan.FD{Name: "anon_inode:[pidfd]", Anon: &procscan.AnonInfo{}}, "[pidfd]"}, // reaped
		{procscan.FD{Name: "anon_inode:[eventfd]", Anon: &procscan.AnonInfo{EventfdID: 0, HasEventfdID: true}}, "[eventfd:0]"},
		{procscan.FD{Name: "anon_inode:inotify"}, "inotify"},
		{procscan.FD{Name: "anon_inode:[timerfd]"}, "[timerfd]"},
	} {
		if got := anonName(&tc.f); got != tc.want {
			t.Errorf("anonName(%s %+v) = %q, want %q", tc.f.Name, tc.f.Anon, got, tc.want)
		}
	}
}

// TestDescribe: only selections that can print sockets and anonymous
// inodes pay for their tables and fdinfo; lsof MOUNT and -t never do.
func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true}, {[]string{"-p", "1"}, true}, {[]string{"-c", "sshd", "/"}, true},
		{[]string{"/"}, false}, {[]string{"+D", "/var"}, false}, {[]string{"-a", "-c", "sshd", "/"}, false}, {[]string{"-t", "-p", "1"}, false},
	} {
		o, err := parseArgs(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		var sel []selector
		if len(o.paths)+len(o.dirs) > 0 {
			sel = []selector{{path: "/"}}
		}
		if got := describe(o, newFilter(o, sel, nil, nil)); got != tc.want {
			t.Errorf("describe(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
