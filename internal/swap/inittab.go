package swap

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RespawnCommands are the process fields of /etc/inittab's respawn lines
// (sysvinit and busybox init): the gettys init brings back when killed.
func RespawnCommands(root string) map[string]bool {
	out := map[string]bool{}
	b, err := os.ReadFile(filepath.Join(root, "etc/inittab"))
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, ":", 4)
		if len(f) == 4 && f[2] == "respawn" {
			out[strings.Join(strings.Fields(f[3]), " ")] = true
		}
	}
	return out
}

// cmdline is /proc/PID/cmdline with spaces between the arguments.
func cmdline(procRoot string, pid int) string {
	b, _ := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline"))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
