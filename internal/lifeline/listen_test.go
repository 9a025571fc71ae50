package lifeline

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// fakeProc writes /proc/PID with comm, fd links and net/tcp{,6} tables.
func fakeProc(t *testing.T, root string, pid, comm string, fds []string, tcp, tcp6 string) {
	t.Helper()
	dir := filepath.Join(root, pid)
	for _, d := range []string{"fd", "net"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "net/tcp"), []byte(tcp), 0o644)
	os.WriteFile(filepath.Join(dir, "net/tcp6"), []byte(tcp6), 0o644)
	for i, target := range fds {
		if err := os.Symlink(target, filepath.Join(dir, "fd", string(rune('3'+i)))); err != nil {
			t.Fatal(err)
		}
	}
}

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

func TestSessionConn(t *testing.T) {
	proc := t.TempDir()
	// bash (100) under the session's sshd (90) under the listening sshd (1).
	fakeProc(t, proc, "100", "bash", []string{"/dev/pts/0", "socket:[555]"}, tcpHeader, "")
	fakeProc(t, proc, "90", "sshd", []string{"/dev/null", "socket:[777]", "socket:[778]"},
		tcpHeader+
			"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 700 1 0000000000000000 100 0 0 10 0\n"+
			"   1: 0500000A:0016 0900000A:D431 01 00000000:00000000 02:0004F6A8 00000000     0        0 777 4 0000000000000000 20 4 1 10 -1\n",
		"")
	fakeProc(t, proc, "80", "sshd-session", []string{"socket:[888]"}, tcpHeader,
		tcpHeader+"   0: B80D0120000000000000000001000000:0016 B80D0120000000000000000002000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 888 1 0000000000000000 20 4 30 10 -1\n")
	none := func(string) string { return "" }
	for _, tc := range []struct {
		name   string
		getenv func(string) string
		pids   []int
		want   *Conn
	}{
		{"SSH_CONNECTION", func(k string) string {
			if k == "SSH_CONNECTION" {
				return "192.0.2.9 54321 198.51.100.7 22"
			}
			return ""
		}, []int{100, 90}, &Conn{"192.0.2.9", "198.51.100.7", 22}},
		{"sshd's socket (sudo dropped SSH_CONNECTION)", none, []int{100, 90}, &Conn{"10.0.0.9", "10.0.0.5", 22}},
		{"OpenSSH 9.8's sshd-session, IPv6", none, []int{100, 80}, &Conn{"2001:db8::2", "2001:db8::1", 22}},
		{"a console", none, []int{100}, nil},
		{"garbage SSH_CONNECTION", func(string) string { return "x y z w" }, []int{100}, nil},
	} {
		pids := map[int]bool{}
		for _, p := range tc.pids {
			pids[p] = true
		}
		if got := SessionConn(proc, tc.getenv, pids); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
