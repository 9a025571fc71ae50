package procscan

import (
	"net/netip"
	"os"
	"testing"
)

// The tables' addresses are 32-bit words in host byte order: these
// lines are a little-endian host's (as the fixture's).

func TestParseInetLine(t *testing.T) {
	for _, tc := range []struct {
		line  string
		proto Proto
		v6    bool
		want  InetSocket
		ok    bool
	}{
		{"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0   ",
			ProtoTCP, false, InetSocket{Inode: 12345, Proto: ProtoTCP, Local: netip.MustParseAddrPort("127.0.0.1:8080"),
				Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: 10}, true},
		{"   3: 0000000000000000FFFF00000100007F:AA5C 0000000000000000FFFF00000100007F:C56B 01 00000000:00000000 00:00000000 00000000     0        0 766965 1 0000000000000000 20 0 0 10 -1",
			ProtoTCP, true, InetSocket{Inode: 766965, Proto: ProtoTCP, V6: true, Local: netip.MustParseAddrPort("[::ffff:127.0.0.1]:43612"),
				Remote: netip.MustParseAddrPort("[::ffff:127.0.0.1]:50539"), State: 1}, true},
		{" 1234: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4003 2 0000000000000000 0",
			ProtoUDP, true, InetSocket{Inode: 4003, Proto: ProtoUDP, V6: true, Local: netip.MustParseAddrPort("[::1]:53"),
				Remote: netip.MustParseAddrPort("[::]:0"), State: 7}, true},
		// Header, a socket no descriptor holds (inode 0), the wrong width
		// for the table, a bad state, a line cut short.
		{"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", ProtoTCP, false, InetSocket{}, false},
		{"   1: 0100007F:0016 0100007F:A1B2 06 00000000:00000000 03:00001234 00000000     0        0 0 3 0000000000000000", ProtoTCP, false, InetSocket{}, false},
		{"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345", ProtoTCP, true, InetSocket{}, false},
		{"   0: 0100007F:1F90 00000000:0000 1FF 00000000:00000000 00:00000000 00000000     0        0 12345", ProtoTCP, false, InetSocket{}, false},
		{"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000", ProtoTCP, false, InetSocket{}, false},
		{"   0: 0100007G:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345", ProtoTCP, false, InetSocket{}, false},
	} {
		got, ok := ParseInetLine([]byte(tc.line), tc.proto, tc.v6)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseInetLine(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

// TestScanInet reads the fixture's tables once for the namespace all its
// processes share, and only when asked to.
func TestScanInet(t *testing.T) {
	snap, err := Scan("testdata/proc", Options{Describe: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]InetSocket{
		4001: {Inode: 4001, Proto: ProtoTCP, Local: netip.MustParseAddrPort("0.0.0.0:22"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: 10},
		4002: {Inode: 4002, Proto: ProtoTCP, V6: true, Local: netip.MustParseAddrPort("[::ffff:127.0.0.1]:22"), Remote: netip.MustParseAddrPort("[::ffff:127.0.0.1]:50000"), State: 1},
		4003: {Inode: 4003, Proto: ProtoUDP, V6: true, Local: netip.MustParseAddrPort("[::1]:53"), Remote: netip.MustParseAddrPort("[::]:0"), State: 7},
		4004: {Inode: 4004, Proto: ProtoRaw, Local: netip.MustParseAddrPort("0.0.0.0:1"), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: 7},
	}
	if len(snap.Inet) != len(want) {
		t.Errorf("Inet = %+v, want %+v", snap.Inet, want)
	}
	for ino, w := range want {
		if got := snap.Inet[ino]; got != w {
			t.Errorf("Inet[%d] = %+v, want %+v", ino, got, w)
		}
	}
	snap, err = Scan("testdata/proc", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if snap.Inet != nil {
		t.Errorf("Inet read without Describe: %+v", snap.Inet)
	}
}

func TestParseInetTable(t *testing.T) {
	b, err := os.ReadFile("testdata/proc/1/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	got := ParseInet(b, ProtoTCP, false)
	if len(got) != 1 || got[0].Inode != 4001 || got[0].Local != netip.MustParseAddrPort("0.0.0.0:22") {
		t.Errorf("ParseInet = %+v, want the listening socket 4001 only (the TIME_WAIT one has no inode)", got)
	}
}

func FuzzParseInetLine(f *testing.F) {
	f.Add([]byte("   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0"), false)
	f.Add([]byte("   3: 0000000000000000FFFF00000100007F:AA5C 0000000000000000FFFF00000100007F:C56B 01 00000000:00000000 00:00000000 00000000     0        0 766965 1 0000000000000000 20 0 0 10 -1"), true)
	f.Add([]byte("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"), false)
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		s, ok := ParseInetLine(b, ProtoUDP, v6)
		if !ok {
			if s != (InetSocket{}) {
				t.Fatalf("failed parse returned %+v", s)
			}
			return
		}
		if s.Inode == 0 || s.V6 != v6 || s.Local.Addr().Is6() != v6 || s.Remote.Addr().Is6() != v6 {
			t.Fatalf("inconsistent %+v", s)
		}
	})
}

func TestParseNetlink(t *testing.T) {
	b, err := os.ReadFile("testdata/proc/300/net/netlink")
	if err != nil {
		t.Fatal(err)
	}
	got := ParseNetlink(b)
	want := []NetlinkSocket{{Inode: 4005, Proto: 0}, {Inode: 4, Proto: 0}, {Inode: 4006, Proto: 30}}
	if len(got) != len(want) {
		t.Fatalf("ParseNetlink = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"0000 x 1 0 0 0 0 2 0 5", "0000 0 1 0 0 0 0 2 0", "0000 0 1 0 0 0 0 2 0 0", "zz 0 1 0 0 0 0 2 0 5"} {
		if s, ok := ParseNetlinkLine([]byte(bad)); ok {
			t.Errorf("ParseNetlinkLine(%q) = %+v, want a failure", bad, s)
		}
	}
	snap, err := Scan("testdata/proc", Options{Describe: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Netlink[4006]; got != (NetlinkSocket{Inode: 4006, Proto: 30}) {
		t.Errorf("Netlink[4006] = %+v", got)
	}
}

func FuzzParseNetlinkLine(f *testing.F) {
	f.Add([]byte("000000003320457b 0   300        00000000 0        0        0     2        0        4005    "))
	f.Add([]byte("sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := ParseNetlinkLine(b)
		if !ok && s != (NetlinkSocket{}) || ok && (s.Inode == 0 || s.Proto < 0) {
			t.Fatalf("ParseNetlinkLine(%q) = %+v, %v", b, s, ok)
		}
	})
}
