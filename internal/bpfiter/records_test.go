package bpfiter

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// segmentBytes is a path segment as the programs write it: d_path's
// return (length with the NUL, or -errno; 0 for no path), then the path.
func segmentBytes(path string, ret int32) []byte {
	if ret == 0 && path != "" {
		ret = int32(len(path) + 1)
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(ret))
	if ret > 0 {
		b = append(b, path...)
		b = append(b, 0)
	}
	return b
}

func taskRecord(pid uint32, comm string, exeIno uint64) []byte {
	b := make([]byte, taskHeader)
	le := binary.LittleEndian
	le.PutUint32(b[taskPID:], pid)
	le.PutUint32(b[taskEUID:], 1000)
	copy(b[taskComm:taskComm+16], comm)
	le.PutUint32(b[taskMntNS:], 4026531841)
	le.PutUint32(b[taskNetNS:], 4026531840)
	le.PutUint32(b[taskMagic:], taskMagicValue)
	le.PutUint64(b[taskStart:], 123456789)
	le.PutUint32(b[taskCwdDev:], 254<<20|2)
	le.PutUint32(b[taskRootDev:], 254<<20|2)
	if exeIno != 0 {
		le.PutUint64(b[taskExeIno:], exeIno)
		le.PutUint32(b[taskExeDev:], 8<<20|1)
	}
	return b
}

func TestReadTasks(t *testing.T) {
	var stream []byte
	stream = append(stream, taskRecord(1, "init", 6570)...)
	stream = append(stream, taskRecord(2, "kthreadd", 0)...)
	stream = append(stream, taskRecord(300, "fifteen-chars-x", 99)...)
	got, err := readTasks(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	root := unix.Mkdev(254, 2)
	want := []Task{
		{PID: 1, EUID: 1000, Comm: "init", MountNS: 4026531841, NetNS: 4026531840, Start: 123456789, CwdDev: root, RootDev: root, ExeDev: unix.Mkdev(8, 1), ExeIno: 6570},
		{PID: 2, EUID: 1000, Comm: "kthreadd", MountNS: 4026531841, NetNS: 4026531840, Start: 123456789, CwdDev: root, RootDev: root},
		{PID: 300, EUID: 1000, Comm: "fifteen-chars-x", MountNS: 4026531841, NetNS: 4026531840, Start: 123456789, CwdDev: root, RootDev: root, ExeDev: unix.Mkdev(8, 1), ExeIno: 99},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d tasks, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("task %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
	bad := append([]byte(nil), stream...)
	bad[taskMagic] ^= 0xff
	for name, b := range map[string][]byte{
		"cut header": stream[:taskHeader-1],
		"cut record": stream[:2*taskHeader+5],
		"bad magic":  bad,
	} {
		if _, err := readTasks(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func mapRecord(pid uint32, start, end uint64, flags uint64, path []byte) []byte {
	b := make([]byte, mapHeader)
	le := binary.LittleEndian
	le.PutUint32(b[mapPID:], pid)
	le.PutUint32(b[mapMntID:], 29)
	le.PutUint64(b[mapStart:], start)
	le.PutUint64(b[mapEnd:], end)
	le.PutUint64(b[mapPgoff:], 3)
	le.PutUint64(b[mapFlags:], flags)
	le.PutUint64(b[mapIno:], 777)
	le.PutUint64(b[mapSize:], 1<<20)
	le.PutUint32(b[mapDev:], 254<<20|1)
	le.PutUint32(b[mapMode:], unix.S_IFREG|0o755)
	le.PutUint32(b[mapNlink:], 1)
	le.PutUint32(b[mapMagic:], mapMagicValue)
	return append(b, path...)
}

func TestReadMaps(t *testing.T) {
	busy := mapRecord(43, 0, 0, 0, segmentBytes("", -1))
	binary.LittleEndian.PutUint32(busy[mapMagic:], mapBusyMagicValue)
	stream := append(mapRecord(42, 0x1000, 0x3000, 0x5, segmentBytes("/usr/lib/libc.so.6", 0)),
		mapRecord(42, 0x5000, 0x6000, 0x3, segmentBytes("", -36))...)
	stream = append(stream, busy...)
	got, err := readMaps(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	want := []Map{
		{PID: 42, Start: 0x1000, End: 0x3000, Pgoff: 3, Flags: 0x5, MntID: 29, Dev: unix.Mkdev(254, 1), Ino: 777,
			Mode: unix.S_IFREG | 0o755, Size: 1 << 20, Nlink: 1, Path: "/usr/lib/libc.so.6"},
		{PID: 42, Start: 0x5000, End: 0x6000, Pgoff: 3, Flags: 0x3, MntID: 29, Dev: unix.Mkdev(254, 1), Ino: 777,
			Mode: unix.S_IFREG | 0o755, Size: 1 << 20, Nlink: 1, NoPath: true},
		{PID: 43, Busy: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d maps, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("map %d:\ngot  %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if _, err := readMaps(bytes.NewReader(stream[:mapHeader+2])); err == nil {
		t.Error("cut record: no error")
	}
}

func TestProgramsAssemble(t *testing.T) {
	// Every jump lands inside the program and every program ends in exit,
	// with and without a device filter: what the verifier checks first.
	for _, devs := range [][]uint64{nil, {unix.Mkdev(8, 1), unix.Mkdev(4095, 1<<20-1)}} {
		for name, build := range map[string]func(b *builder){
			"filter": func(b *builder) {
				b.devFilter(devs, true, "out")
				b.text("wanted: r0 = 1\nout: r0 = 0\nexit")
			},
			"probe": func(b *builder) {
				b.text("*(u32 *)(r10 -100) = probe_chain(r7, 8, 16, 24)\nexit")
			},
		} {
			b := newBuilder(synthetic(), nil)
			build(b)
			prog, err := b.assemble()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			n := len(prog) / 8
			for i := 0; i < n; i++ {
				code := prog[8*i]
				cls := code & 0x07
				if (cls == clsJMP || cls == clsJMP32) && code&0xf0 != jmpCALL && code&0xf0 != jmpEXIT {
					off := int(int16(binary.LittleEndian.Uint16(prog[8*i+2:])))
					if to := i + 1 + off; to < 0 || to >= n {
						t.Errorf("%s: instruction %d jumps to %d of %d", name, i, to, n)
					}
				}
			}
			if prog[len(prog)-8] != clsJMP|jmpEXIT {
				t.Errorf("%s: does not end in exit", name)
			}
		}
	}
	// A device filter compares 32-bit kernel dev_t values: major 4095
	// needs the full word, so the comparison is JMP32.
	b := newBuilder(synthetic(), nil)
	b.devFilter([]uint64{unix.Mkdev(4095, 5)}, false, "out")
	if f := b.prog; f[0].code != clsJMP32|jmpJEQ|srcK || uint32(f[0].imm) != 4095<<20|5 {
		t.Errorf("filter: got code %#x imm %#x", f[0].code, uint32(f[0].imm))
	}
}

func FuzzReadTasks(f *testing.F) {
	f.Add(taskRecord(1, "init", 6570))
	f.Fuzz(func(t *testing.T, b []byte) {
		tasks, err := readTasks(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, k := range tasks {
			if len(k.Comm) > 16 || k.ExeIno == 0 && k.ExeDev != 0 {
				t.Fatalf("bad task %+v", k)
			}
		}
	})
}

func FuzzReadMaps(f *testing.F) {
	f.Add(mapRecord(42, 0x1000, 0x3000, 0x5, segmentBytes("/usr/lib/libc.so.6", 0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		maps, err := readMaps(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, m := range maps {
			if len(m.Path) >= pathMax || m.NoPath && m.Path != "" {
				t.Fatalf("bad map %+v", m)
			}
		}
	})
}
