package bpfiter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"
)

// record builds one record as the program writes it.
func record(pid, tid, fd uint32, name string, ret int32) []byte {
	b := make([]byte, recHeader)
	le := binary.LittleEndian
	le.PutUint32(b[recPID:], pid)
	le.PutUint32(b[recTID:], tid)
	le.PutUint32(b[recFD:], fd)
	le.PutUint32(b[recFlags:], unix.O_WRONLY|unix.O_APPEND)
	le.PutUint32(b[recMntID:], 42)
	le.PutUint64(b[recIno:], 1234)
	le.PutUint64(b[recSize:], 5)
	le.PutUint64(b[recPos:], 3)
	le.PutUint32(b[recDev:], 8<<20|17) // the kernel's 8:17
	le.PutUint32(b[recMode:], unix.S_IFREG|0o644)
	le.PutUint32(b[recNlink:], 1)
	le.PutUint32(b[recMagic:], magic)
	if ret == 0 {
		ret = int32(len(name) + 1)
	}
	le.PutUint32(b[recPathRet:], uint32(ret))
	if ret > 0 {
		b = append(b, name...)
		b = append(b, 0)
	}
	return b
}

func TestReadFiles(t *testing.T) {
	var stream []byte
	stream = append(stream, record(10, 10, 3, "/var/log/syslog", 0)...)
	stream = append(stream, record(10, 11, 3, "/thread/own/table", 0)...) // a thread's own file table
	stream = append(stream, record(10, 10, 4, "/var/log/syslog", 0)...)
	stream = append(stream, record(12, 12, 0, "", -36)...) // ENAMETOOLONG
	stream = append(stream, record(12, 12, 1, "socket:[777]", 0)...)
	// One byte at a time: records split across reads must reassemble.
	got, err := readFiles(iotest.OneByteReader(bytes.NewReader(stream)))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		pid, fd int
		name    string
		tooLong bool
	}{{10, 3, "/var/log/syslog", false}, {10, 4, "/var/log/syslog", false}, {12, 0, "", true}, {12, 1, "socket:[777]", false}}
	if len(got) != len(want) {
		t.Fatalf("got %d files %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.PID != w.pid || g.FD != w.fd || g.Name != w.name || g.NameTooLong != w.tooLong {
			t.Errorf("file %d: got pid %d fd %d name %q tooLong %v, want %+v", i, g.PID, g.FD, g.Name, g.NameTooLong, w)
		}
	}
	f := got[0]
	if f.Dev != unix.Mkdev(8, 17) || f.MntID != 42 || f.Ino != 1234 || f.Pos != 3 || f.Size != 5 ||
		f.Flags != unix.O_WRONLY|unix.O_APPEND || f.Mode != unix.S_IFREG|0o644 || f.Nlink != 1 {
		t.Errorf("fields: got %+v", f)
	}
}

func TestReadFilesErrors(t *testing.T) {
	good := record(1, 1, 0, "/dev/null", 0)
	bad := append([]byte(nil), good...)
	bad[recMagic] ^= 0xff
	for name, stream := range map[string][]byte{
		"bad magic":      bad,
		"truncated path": good[:len(good)-2],
		"short header":   good[:recHeader-1],
	} {
		if _, err := readFiles(bytes.NewReader(stream)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	readErr := errors.New("boom")
	if _, err := readFiles(iotest.ErrReader(readErr)); !errors.Is(err, readErr) {
		t.Errorf("read error: got %v, want it wrapped", err)
	}
	if got, err := readFiles(bytes.NewReader(nil)); err != nil || len(got) != 0 {
		t.Errorf("empty stream: got %v, %v", got, err)
	}
}

func TestAsm(t *testing.T) {
	b := newBuilder(nil, nil)
	b.text("if r1 == 0 goto out\nr0 = 1\nout: r0 = 0\nexit")
	prog, err := b.assemble()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x15, 0x01, 1, 0, 0, 0, 0, 0, // if r1 == 0 goto +1
		0xb7, 0x00, 0, 0, 1, 0, 0, 0, // r0 = 1
		0xb7, 0x00, 0, 0, 0, 0, 0, 0, // r0 = 0
		0x95, 0, 0, 0, 0, 0, 0, 0, // exit
	}
	if !bytes.Equal(prog, want) {
		t.Errorf("got % x\nwant % x", prog, want)
	}
	if _, err := asm([]insn{{code: clsJMP | jmpJA, target: "nowhere"}}); err == nil {
		t.Error("jump to a missing label: no error")
	}
	// Register fields: dst in the low nibble, src in the high one.
	p, _ := asm([]insn{{code: clsSTX | modeMEM | sizeDW, dst: fp, src: r3, off: -8}})
	if p[0] != 0x7b || p[1] != 0x3a {
		t.Errorf("stx: got % x", p[:2])
	}
}

func FuzzReadFiles(f *testing.F) {
	f.Add(append(record(1, 1, 0, "/a", 0), record(2, 2, 5, "pipe:[9]", 0)...))
	f.Add(record(3, 3, 1, "", -36))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := readFiles(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, f := range files {
			if f.PID == 0 || len(f.Name) >= pathMax {
				t.Fatalf("bad file %+v", f)
			}
		}
	})
}
