package bpfiter

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestFilesAgreeWithProc starts a process holding every kind of
// descriptor lsof cares about, on a tmpfs of a private mount namespace,
// and checks that each iterator record says what /proc/PID/fd (readlink,
// stat) and /proc/PID/fdinfo say about it.
func TestFilesAgreeWithProc(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.InMountNS(t, func() {
		dir := t.TempDir()
		if err := unix.Mount("bpfiter", dir, "tmpfs", 0, "size=8m"); err != nil {
			t.Fatal(err)
		}
		open := func(name string, flag int) *os.File {
			f, err := os.OpenFile(filepath.Join(dir, name), flag|os.O_CREATE, 0o640)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			return f
		}
		rw := open("rw", os.O_RDWR)
		rw.WriteString("hello, world")
		rw.Seek(5, 0) // the offset travels with the open file description
		appendOnly := open("log", os.O_WRONLY|os.O_APPEND)
		appendOnly.WriteString("line\n")
		deleted := open("gone", os.O_RDWR)
		os.Remove(deleted.Name())
		long := dir
		for len(long) < pathMax+40 {
			long = filepath.Join(long, strings.Repeat("d", 60))
		}
		if err := os.MkdirAll(long, 0o755); err != nil {
			t.Fatal(err)
		}
		longFile := open(strings.TrimPrefix(filepath.Join(long, "deep"), dir+"/"), os.O_RDONLY)
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		defer pw.Close()
		l, err := net.Listen("unix", filepath.Join(dir, "sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		sock, err := l.(*net.UnixListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer sock.Close()

		cmd := exec.Command("sleep", "1000")
		cmd.ExtraFiles = []*os.File{rw, appendOnly, deleted, longFile, pr, sock}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		pid := cmd.Process.Pid
		waitExec(t, pid)

		k, err := Open()
		if err != nil {
			t.Skipf("no BPF iterators here (procscan's root test compares the /proc path): %v", err)
		}
		k.VerifierLog = true
		files, err := k.Files(nil)
		var refused *RefusedError
		if errors.As(err, &refused) {
			t.Skipf("this kernel refuses the files program (procscan's root test compares the /proc path): %v", err)
		}
		if err != nil {
			t.Fatalf("Files: %v", err)
		}
		var mine []File
		for _, f := range files {
			if f.PID == pid {
				mine = append(mine, f)
			}
		}
		fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
		entries, err := os.ReadDir(fdDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) != len(entries) {
			t.Fatalf("iterator: %d descriptors of %d, /proc: %d", len(mine), pid, len(entries))
		}
		sawTooLong := false
		for _, f := range mine {
			num := strconv.Itoa(f.FD)
			link, err := os.Readlink(fdDir + "/" + num)
			if err != nil {
				t.Fatal(err)
			}
			if f.NameTooLong {
				sawTooLong = true
				if len(link) < pathMax {
					t.Errorf("fd %d: name %q fits the record, but came back too long", f.FD, link)
				}
			} else if f.Name != link {
				t.Errorf("fd %d: name %q, readlink says %q", f.FD, f.Name, link)
			}
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + num)
			if err != nil {
				t.Fatal(err)
			}
			info := parseFDInfo(t, b)
			if f.Pos != info.Pos || f.MntID != info.MntID || f.Ino != info.Ino {
				t.Errorf("fd %d (%s): pos/mnt_id/ino %d/%d/%d, fdinfo says %d/%d/%d", f.FD, link, f.Pos, f.MntID, f.Ino, info.Pos, info.MntID, info.Ino)
			}
			if f.Flags&^unix.O_CLOEXEC != info.Flags&^unix.O_CLOEXEC {
				t.Errorf("fd %d (%s): flags %o, fdinfo says %o", f.FD, link, f.Flags, info.Flags)
			}
			var st unix.Stat_t
			if err := unix.Stat(fdDir+"/"+num, &st); err != nil {
				t.Fatal(err)
			}
			if f.Dev != st.Dev || f.Ino != st.Ino || f.Size != st.Size || f.Mode != st.Mode || uint64(f.Nlink) != uint64(st.Nlink) {
				t.Errorf("fd %d (%s): dev %d ino %d size %d mode %o nlink %d; stat says %d %d %d %o %d",
					f.FD, link, f.Dev, f.Ino, f.Size, f.Mode, f.Nlink, st.Dev, st.Ino, st.Size, st.Mode, st.Nlink)
			}
		}
		if !sawTooLong {
			t.Errorf("the descriptor of the %d-byte path did not come back as too long", len(longFile.Name()))
		}
		// Narrowed to the tmpfs: its files and the sockets, nothing else
		// (the pipe and sleep's /dev/null stdin are left out).
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		narrowed, err := k.Files([]uint64{st.Dev})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range narrowed {
			if f.PID == pid {
				got = append(got, f.Name)
			}
		}
		var want []string
		for _, f := range mine {
			if f.Dev == st.Dev || f.Mode&unix.S_IFMT == unix.S_IFSOCK {
				want = append(want, f.Name)
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(want) != 5 {
			t.Errorf("narrowed to %s: got %q, want %q (5)", dir, got, want)
		}
		for _, want := range []string{dir + "/rw", dir + "/log", dir + "/gone (deleted)", "pipe:[", "socket:["} {
			found := false
			for _, f := range mine {
				found = found || strings.HasPrefix(f.Name, want)
			}
			if !found {
				t.Errorf("no descriptor named %q", want)
			}
		}
	})
}

// waitExec waits until pid has exec'd (its fds are then the final ones).
func waitExec(t *testing.T, pid int) {
	t.Helper()
	for range 200 {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
		if bytes.Equal(bytes.TrimSpace(b), []byte("sleep")) {
			return
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
	t.Fatalf("process %d did not exec sleep", pid)
}

type fdinfo struct {
	Pos   int64
	Flags uint32
	MntID int
	Ino   uint64
}

// parseFDInfo reads the four fields the iterator reports (procscan has
// the real parser; importing it here would be a cycle).
func parseFDInfo(t *testing.T, b []byte) fdinfo {
	var fi fdinfo
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		base := 10
		if k == "flags" {
			base = 8
		}
		n, err := strconv.ParseUint(v, base, 64)
		if err != nil {
			continue
		}
		switch k {
		case "pos":
			fi.Pos = int64(n)
		case "flags":
			fi.Flags = uint32(n)
		case "mnt_id":
			fi.MntID = int(n)
		case "ino":
			fi.Ino = n
		}
	}
	return fi
}
