package lifeline

import (
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/procscan"
)

// SessionConn is the admin's own SSH connection: from SSH_CONNECTION,
// else (sudo drops it) the TCP socket of an sshd among the caller's
// ancestors (pids). nil when neither is found (a console). Its local
// address is where the lifeline listens by default (not every address,
// where anyone who can reach the host finds it).
func SessionConn(procRoot string, getenv func(string) string, pids map[int]bool) *Conn {
	if f := strings.Fields(getenv("SSH_CONNECTION")); len(f) == 4 {
		a, err1 := netip.ParseAddr(f[0])
		l, err2 := netip.ParseAddr(f[2])
		port, err3 := strconv.ParseUint(f[3], 10, 16)
		if err1 == nil && err2 == nil && err3 == nil {
			return &Conn{a.Unmap().String(), l.Unmap().String(), int(port)}
		}
	}
	for pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		// sshd-session: OpenSSH 9.8 and later run a session under that name.
		if c := strings.TrimSpace(string(comm)); c != "sshd" && c != "sshd-session" {
			continue
		}
		if c := sshdConn(dir); c != nil {
			return c
		}
	}
	return nil
}

// sshdConn is the established TCP connection held by the process at dir
// (/proc/PID).
func sshdConn(dir string) *Conn {
	fds, _ := os.ReadDir(filepath.Join(dir, "fd"))
	inodes := map[uint64]bool{}
	for _, fd := range fds {
		l, _ := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if n, ok := strings.CutPrefix(l, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(n, "]"), 10, 64); err == nil {
				inodes[ino] = true
			}
		}
	}
	for _, v6 := range []bool{false, true} {
		name := "net/tcp"
		if v6 {
			name += "6"
		}
		b, _ := os.ReadFile(filepath.Join(dir, name))
		for _, s := range procscan.ParseInet(b, procscan.ProtoTCP, v6) {
			if inodes[s.Inode] && s.State == 1 { // TCP_ESTABLISHED
				return &Conn{s.Remote.Addr().Unmap().String(), s.Local.Addr().Unmap().String(), int(s.Local.Port())}
			}
		}
	}
	return nil
}
