package lifeline

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/procscan"
)

// SessionAddr is the local address the admin's own SSH session came in
// on, where the lifeline listens by default (not every address, where
// anyone who can reach the host finds it): the third field of
// SSH_CONNECTION, else (sudo drops it) the TCP socket of an sshd among
// the caller's ancestors (pids). "" when neither is found (a console).
func SessionAddr(procRoot string, getenv func(string) string, pids map[int]bool) string {
	if f := strings.Fields(getenv("SSH_CONNECTION")); len(f) == 4 && net.ParseIP(f[2]) != nil {
		return f[2]
	}
	for pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		// sshd-session: OpenSSH 9.8 and later run a session under that name.
		if c := strings.TrimSpace(string(comm)); c != "sshd" && c != "sshd-session" {
			continue
		}
		if a := sshdLocalAddr(dir); a != "" {
			return a
		}
	}
	return ""
}

// sshdLocalAddr is the local address of an established TCP connection
// held by the process at dir (/proc/PID).
func sshdLocalAddr(dir string) string {
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
				return s.Local.Addr().Unmap().String()
			}
		}
	}
	return ""
}
