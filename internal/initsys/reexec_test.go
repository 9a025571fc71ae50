package initsys

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestInitRequestLayout(t *testing.T) {
	got := InitRequest('u', 5)
	if len(got) != 384 {
		t.Fatalf("len = %d, want 384 (sizeof struct init_request)", len(got))
	}
	// The fields written out by hand, in the host's byte order.
	want := make([]byte, 384)
	for i, v := range []uint32{0x03091969, 1, 'u', 5} {
		binary.NativeEndian.PutUint32(want[4*i:], v)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("InitRequest('u', 5) =\n% x\nwant\n% x", got[:32], want[:32])
	}
	// On the little-endian machines rootswap runs on, the bytes are these.
	var probe [2]byte
	binary.NativeEndian.PutUint16(probe[:], 1)
	if probe[0] == 1 {
		head := []byte{0x69, 0x19, 0x09, 0x03, 1, 0, 0, 0, 'u', 0, 0, 0, 5, 0, 0, 0}
		if !bytes.Equal(got[:16], head) {
			t.Errorf("head = % x, want % x", got[:16], head)
		}
	}
	if !bytes.Equal(got[16:], make([]byte, 368)) {
		t.Errorf("the 368-byte union is not zero")
	}
}

// openReader opens the read end of a FIFO without blocking, the way init
// holds its FIFO open.
func openReader(t *testing.T, p string) *os.File {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), p)
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := f.Read(buf)
	if err != nil {
		t.Fatalf("reading the FIFO: %v", err)
	}
	return buf[:n]
}

func TestSysVReexecWritesInitctl(t *testing.T) {
	for _, fifo := range []string{"run/initctl", "dev/initctl"} {
		t.Run(fifo, func(t *testing.T) {
			tr := newTree(t)
			tr.process(1, 0, "init", "/sbin/init", "init [2]")
			r := openReader(t, tr.fifo(fifo))
			run := &fakeRunner{}
			sys, err := tr.config(run.run).Detect(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := sys.Reexec(context.Background()); err != nil {
				t.Fatalf("Reexec: %v", err)
			}
			if got, want := readAll(t, r), InitRequest('u', 5); !bytes.Equal(got, want) {
				t.Errorf("init read % x..., want % x...", got[:16], want[:16])
			}
			if got := run.got(); len(got) != 0 {
				t.Errorf("Reexec ran %q; the request is written natively", got)
			}
		})
	}
}

func TestSysVReexecNobodyListening(t *testing.T) {
	tr := newTree(t)
	tr.fifo("run/initctl")
	sys := &SysV{cfg: tr.config(nil), FIFO: "/run/initctl"}
	err := sys.Reexec(context.Background())
	if !errors.Is(err, unix.ENXIO) || !strings.Contains(err.Error(), "init is not listening") {
		t.Errorf("Reexec with no reader = %v, want ENXIO saying init is not listening", err)
	}
}

func TestSysVReexecRefusesRegularFile(t *testing.T) {
	tr := newTree(t)
	p := tr.file("run/initctl", "not a fifo")
	sys := &SysV{cfg: tr.config(nil)}
	err := sys.Reexec(context.Background())
	if err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Errorf("Reexec with a regular /run/initctl = %v, want a not-a-FIFO error", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "not a fifo" {
		t.Errorf("/run/initctl was written: %q", b)
	}
}

func TestOpenRCInitReexec(t *testing.T) {
	tr := newTree(t)
	tr.process(1, 0, "openrc-init", "/sbin/openrc-init", "/sbin/init")
	r := openReader(t, tr.fifo("run/openrc/init.ctl"))
	sys, err := tr.config(nil).Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.Reexec(context.Background()); err != nil {
		t.Fatalf("Reexec: %v", err)
	}
	if got := string(readAll(t, r)); got != "reexec" {
		t.Errorf("openrc-init read %q, want %q", got, "reexec")
	}
}

func TestCheckPID1(t *testing.T) {
	tr := newTree(t)
	oldInit := tr.write(filepath.Dir(tr.root), "oldroot/usr/lib/systemd/systemd", "old systemd")
	newInit := tr.file("usr/lib/systemd/systemd", "new systemd")
	tr.symlink(tr.root, "sbin/init", "../usr/lib/systemd/systemd")
	tr.process(1, 0, "systemd", oldInit, "/sbin/init", "splash")

	st, err := CheckPID1(tr.proc, tr.root)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current {
		t.Fatalf("before re-exec: Current = true (%s), want false", st.Summary())
	}
	if st.ExeText != oldInit || !strings.Contains(st.Summary(), "not an init binary of this root") {
		t.Errorf("before re-exec: %s", st.Summary())
	}

	// The old binary's path resolving fine is not enough: it is the link
	// text, and the old root's file.
	tr.symlink(tr.proc, "1/exe", newInit)
	st, err = CheckPID1(tr.proc, tr.root)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Current || st.Path != "/sbin/init" {
		t.Errorf("after re-exec: Current %v Path %q (%s), want true /sbin/init", st.Current, st.Path, st.Summary())
	}
}

func TestCheckPID1Deleted(t *testing.T) {
	// A replaced binary: PID 1 still runs the unlinked inode; the path
	// now holds a new file. That is not current.
	tr := newTree(t)
	p := tr.file("sbin/init", "old")
	keep := filepath.Join(filepath.Dir(tr.root), "unlinked-init")
	if err := os.Link(p, keep); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	tr.file("sbin/init", "new")
	tr.process(1, 0, "init", keep, "init [2]")
	st, err := CheckPID1(tr.proc, tr.root)
	if err != nil {
		t.Fatal(err)
	}
	if st.Current {
		t.Errorf("PID 1 on the replaced binary: Current = true, want false (%s)", st.Summary())
	}
}
