package procscan

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// The fixture under testdata/proc is a /proc tree of real directories,
// files and symlinks: a host mount namespace (ext4 root, tmpfs /run, an
// nfs4 mount, a bind mount with an escaped space) and a second one for
// pid 500; pid 600 is a directory left by a process that went away.

func scanFixture(t *testing.T) *Snapshot {
	t.Helper()
	snap, err := Scan("testdata/proc", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func proc(t *testing.T, s *Snapshot, pid int) *Process {
	t.Helper()
	for _, p := range s.Procs {
		if p.PID == pid {
			return p
		}
	}
	t.Fatalf("pid %d not in scan", pid)
	return nil
}

func fd(t *testing.T, p *Process, n int) *FD {
	t.Helper()
	for i := range p.FDs {
		if p.FDs[i].Num == n {
			return &p.FDs[i]
		}
	}
	t.Fatalf("pid %d: fd %d not in scan", p.PID, n)
	return nil
}

func TestScanProcesses(t *testing.T) {
	snap := scanFixture(t)
	var got []int
	for _, p := range snap.Procs {
		got = append(got, p.PID)
	}
	want := []int{1, 200, 300, 400, 500} // 600 vanished: skipped, no error
	if len(got) != len(want) {
		t.Fatalf("pids = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pids = %v, want %v", got, want)
		}
	}
	p := proc(t, snap, 400)
	if p.Comm != "nfsreader" || p.UID != 1000 || p.Cgroup != "0::/user.slice" || p.MountNS != "mnt:[4026531841]" {
		t.Errorf("pid 400 = comm %q uid %d cgroup %q ns %q", p.Comm, p.UID, p.Cgroup, p.MountNS)
	}
	if snap.SelfMountNS != "mnt:[4026531841]" || len(snap.Self) != 5 {
		t.Errorf("self ns %q with %d mounts, want mnt:[4026531841] with 5", snap.SelfMountNS, len(snap.Self))
	}
	if len(snap.Mounts) != 2 {
		t.Errorf("%d mount namespaces, want 2", len(snap.Mounts))
	}
}

func TestScanDescriptors(t *testing.T) {
	snap := scanFixture(t)
	p := proc(t, snap, 200)
	f := fd(t, p, 1)
	if f.Name != "/var/log/messages" || f.Kind != KindFile || f.Deleted {
		t.Errorf("fd 1 = %q kind %d deleted %v", f.Name, f.Kind, f.Deleted)
	}
	if Access(f.Info.Flags) != 'w' || FlagNames(f.Info.Flags) != "O_APPEND|O_LARGEFILE" || f.Info.Pos != 642199 {
		t.Errorf("fd 1 access %c flags %s pos %d", Access(f.Info.Flags), FlagNames(f.Info.Flags), f.Info.Pos)
	}
	if !f.HasMount || f.Mount.Point != "/" || f.Mount.FSType != "ext4" {
		t.Errorf("fd 1 mount = %+v", f.Mount)
	}
	dev, okDev := f.Dev()
	ino, okIno := f.Ino()
	if !okDev || dev != unix.Mkdev(8, 2) || !okIno || ino != 11587 {
		t.Errorf("fd 1 dev %d:%d ino %d", unix.Major(dev), unix.Minor(dev), ino)
	}
	if f.Stat != nil {
		t.Errorf("fd 1 was stat'ed in a fixture tree")
	}
	if d := fd(t, p, 5); !d.Deleted || d.Name != "/var/log/old.log" {
		t.Errorf("fd 5 = %q deleted %v, want /var/log/old.log deleted", d.Name, d.Deleted)
	}
	if pp := fd(t, p, 6); pp.Kind != KindPipe || pp.Inode != 5555 {
		t.Errorf("fd 6 = kind %d inode %d, want pipe 5555", pp.Kind, pp.Inode)
	}
	s := fd(t, proc(t, snap, 1), 3)
	if s.Kind != KindSocket || s.Inode != 1001 || snap.Unix[1001].Path != "/run/systemd/notify" || !snap.Unix[1001].Listening() {
		t.Errorf("pid 1 fd 3 = kind %d inode %d, socket %+v", s.Kind, s.Inode, snap.Unix[1001])
	}
	// A descriptor of another mount namespace resolves in that namespace.
	pg := fd(t, proc(t, snap, 500), 3)
	if !pg.HasMount || pg.Mount.Point != "/data" || pg.Mount.Dev() != unix.Mkdev(8, 17) {
		t.Errorf("pid 500 fd 3 mount = %+v", pg.Mount)
	}
}

func TestScanLinks(t *testing.T) {
	snap := scanFixture(t)
	sshd := proc(t, snap, 300)
	if e := sshd.Exe; e.Name != "/usr/sbin/sshd" || !e.Deleted || !e.HasIno || e.Ino != 14452 || e.Dev != unix.Mkdev(8, 2) {
		t.Errorf("sshd exe = %+v", e)
	}
	var del []string
	for _, m := range sshd.Maps {
		if m.Deleted {
			del = append(del, m.Path)
		}
	}
	if len(del) != 3 || del[2] != "/lib64/libdevmapper.so.1.02" {
		t.Errorf("sshd deleted mappings = %q", del)
	}
	nfs := proc(t, snap, 400)
	if !nfs.Cwd.HasMount || nfs.Cwd.Mount.FSType != "nfs4" || nfs.Cwd.HasIno {
		t.Errorf("nfs cwd = %+v: want the nfs4 mount, found lexically, no inode", nfs.Cwd)
	}
	if nfs.Root.Mount.Point != "/" {
		t.Errorf("nfs root mount = %q", nfs.Root.Mount.Point)
	}
	pg := proc(t, snap, 500)
	if pg.Cwd.Mount.Point != "/data" || pg.Cwd.Dev != unix.Mkdev(8, 17) {
		t.Errorf("pid 500 cwd resolved in its own namespace: got %+v", pg.Cwd.Mount)
	}
}

func TestScanOnlyPIDs(t *testing.T) {
	snap, err := Scan("testdata/proc", Options{PIDs: []int{300, 600, 99999}})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Procs) != 1 || snap.Procs[0].PID != 300 {
		t.Fatalf("scan of 300, 600 (vanished), 99999 (absent) = %d processes", len(snap.Procs))
	}
}

func TestScanMissingRoot(t *testing.T) {
	_, err := Scan(t.TempDir()+"/none", Options{})
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("scan of a missing root: %v, want ENOENT", err)
	}
}

func TestParseFDInfo(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FDInfo
	}{
		{"pos:\t0\nflags:\t0102001\nmnt_id:\t63\nino:\t3\n", FDInfo{Pos: 0, Flags: 0o102001, MntID: 63, Ino: 3, HasFlags: true, HasMntID: true, HasIno: true}},
		{"pos:\t12\nflags:\t02\nmnt_id:\t15\neventfd-count:  0\n", FDInfo{Pos: 12, Flags: 2, MntID: 15, HasFlags: true, HasMntID: true}},
		{"pos:\tx\nflags:\t09\n", FDInfo{}},
		{"", FDInfo{}},
	} {
		if got := ParseFDInfo([]byte(tc.in)); got != tc.want {
			t.Errorf("ParseFDInfo(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestAccess(t *testing.T) {
	for _, tc := range []struct {
		flags uint32
		want  byte
	}{{0, 'r'}, {0o100000, 'r'}, {1, 'w'}, {0o2001, 'w'}, {2, 'u'}, {0o10000000, ' '}} {
		if got := Access(tc.flags); got != tc.want {
			t.Errorf("Access(%o) = %q, want %q", tc.flags, got, tc.want)
		}
	}
	if Writable(0) || !Writable(1) || !Writable(2) {
		t.Error("Writable: read-only counted as writable or the reverse")
	}
}

func TestParseMapsLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mapping
		ok   bool
	}{
		{"563904034000-563904036000 r--p 00000000 fd:00 5                          /tmp/m/sl (deleted)",
			Mapping{Start: 0x563904034000, End: 0x563904036000, Perms: "r--p", Major: 0xfd, Minor: 0, Inode: 5, Path: "/tmp/m/sl", Deleted: true}, true},
		{"7f00-7f10 rw-s 00001000 00:01 1234 /dev/zero (deleted)",
			Mapping{Start: 0x7f00, End: 0x7f10, Offset: 0x1000, Perms: "rw-s", Major: 0, Minor: 1, Inode: 1234, Path: "/dev/zero", Deleted: true}, true},
		{"7f00-7f10 r-xp 00000000 08:02 99 /lib/a b.so", Mapping{Start: 0x7f00, End: 0x7f10, Perms: "r-xp", Major: 8, Minor: 2, Inode: 99, Path: "/lib/a b.so"}, true},
		{`7f00-7f10 r-xp 00000000 08:02 99 /new\012line`, Mapping{Start: 0x7f00, End: 0x7f10, Perms: "r-xp", Major: 8, Minor: 2, Inode: 99, Path: "/new\nline"}, true},
		{"7ffd0-7ffe0 rw-p 00000000 00:00 0                          [stack]", Mapping{Start: 0x7ffd0, End: 0x7ffe0, Perms: "rw-p", Path: "[stack]"}, true},
		{"7f00-7f10 rw-p 00000000 00:00 0", Mapping{Start: 0x7f00, End: 0x7f10, Perms: "rw-p"}, true},
		{"7f00 rw-p 00000000 00:00 0", Mapping{}, false},
		{"7f00-7f10 rw-p 00000000 0000 0", Mapping{}, false},
		{"", Mapping{}, false},
	} {
		got, ok := ParseMapsLine([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseMapsLine(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseUnix(t *testing.T) {
	in := "Num       RefCount Protocol Flags    Type St Inode Path\n" +
		"000000009c42feb8: 00000002 00000000 00010000 0001 01 10832 /tmp/lx/m/s.sock\n" +
		"0000000000000000: 00000003 00000000 00000000 0002 03 2002\n" +
		"0000000000000000: 00000002 00000000 00010000 0005 01 2003 @/org/kernel/udev/udevd\n" +
		"0000000000000000: 00000002 00000000 00010000 0001 01 3003 rel with space.sock\n" +
		"c1a2b3c4: 00000002 00000000 00000000 0001 03 3004\n" + // a 32-bit kernel's address
		"0x00000000000000001: 00000002 00000000 00000000 0001 03 3005\n" + // no such address: skipped
		"ffffffffffffffff: 00000002 00000000 00000000 0001 03 3006\n"
	got := ParseUnix([]byte(in))
	want := []UnixSocket{
		{Addr: 0x9c42feb8, AddrDigits: 16, Inode: 10832, Type: 1, State: 1, Flags: 0x10000, Path: "/tmp/lx/m/s.sock"},
		{AddrDigits: 16, Inode: 2002, Type: 2, State: 3},
		{AddrDigits: 16, Inode: 2003, Type: 5, State: 1, Flags: 0x10000, Path: "@/org/kernel/udev/udevd"},
		{AddrDigits: 16, Inode: 3003, Type: 1, State: 1, Flags: 0x10000, Path: "rel with space.sock"},
		{Addr: 0xc1a2b3c4, AddrDigits: 8, Inode: 3004, Type: 1, State: 3},
		{Addr: 1<<64 - 1, AddrDigits: 16, Inode: 3006, Type: 1, State: 3},
	}
	if len(got) != len(want) {
		t.Fatalf("ParseUnix = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !got[0].Bound() || got[1].Bound() || got[2].Bound() || got[0].TypeName() != "STREAM" || got[2].TypeName() != "SEQPACKET" {
		t.Error("Bound/TypeName wrong")
	}
}

func TestParseStatus(t *testing.T) {
	comm, uid := parseStatus([]byte("Name:\tmy\\nproc\nUmask:\t0022\nUid:\t1000\t33\t33\t33\nGid:\t0\n"))
	if comm != "my\nproc" || uid != 33 {
		t.Errorf("parseStatus = %q, %d; want \"my\\nproc\", 33", comm, uid)
	}
	if _, uid := parseStatus([]byte("Name:\tx\n")); uid != -1 {
		t.Errorf("no Uid line: uid %d, want -1", uid)
	}
}

func FuzzParseFDInfo(f *testing.F) {
	f.Add([]byte("pos:\t0\nflags:\t0102001\nmnt_id:\t63\nino:\t3\n"))
	f.Add([]byte("flags:\t077777777777\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fi := ParseFDInfo(b)
		if !fi.HasMntID && fi.MntID != 0 || fi.Pos < 0 || fi.MntID < 0 {
			t.Fatalf("inconsistent %+v", fi)
		}
		_ = FlagNames(fi.Flags)
	})
}

func FuzzParseMapsLine(f *testing.F) {
	f.Add([]byte("563904034000-563904036000 r--p 00000000 fd:00 5      /tmp/m/sl (deleted)"))
	f.Add([]byte("7ffd0-7ffe0 rw-p 00000000 00:00 0  [stack]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := ParseMapsLine(b)
		if !ok && m != (Mapping{}) {
			t.Fatalf("failed parse returned %+v", m)
		}
		if ok && len(m.Perms) != 4 {
			t.Fatalf("perms %q", m.Perms)
		}
	})
}

func FuzzParseUnixLine(f *testing.F) {
	f.Add([]byte("000000009c42feb8: 00000002 00000000 00010000 0001 01 10832 /tmp/s.sock"))
	f.Add([]byte("Num       RefCount Protocol Flags    Type St Inode Path"))
	f.Add([]byte("c1a2b3c4: 00000002 00000000 00000000 0002 01 7 @abstract\x00name"))
	f.Add([]byte("ffffffffffffffff: 00000003 00000000 00000000 0001 03 693608 s.sock"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, ok := ParseUnixLine(b)
		if !ok && s != (UnixSocket{}) {
			t.Fatalf("failed parse returned %+v", s)
		}
		_ = s.TypeName()
		if ok && (s.AddrDigits == 0 || s.AddrDigits > 16 || s.AddrDigits < 16 && s.Addr>>(4*s.AddrDigits) != 0) {
			t.Fatalf("address %#x does not fit %d digits", s.Addr, s.AddrDigits)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("Name:\tsshd\nUid:\t0\t0\t0\t0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, uid := parseStatus(b); uid < -1 {
			t.Fatalf("uid %d", uid)
		}
	})
}
