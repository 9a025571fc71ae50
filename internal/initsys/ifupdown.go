package initsys

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ifupdown starts a DHCP client for each "iface X inet dhcp" of
// /etc/network/interfaces and leaves it running with no service of its
// own. The networking script (or networking.service) is no way to restart
// it: its stop is ifdown, which releases the lease and takes the address
// down, and the admin's SSH connection with it. So the client is a
// service of its own, restarted by its command line: killed with SIGKILL,
// so that dhclient-script never runs STOP or RELEASE (the address stays
// in the kernel while no client runs), and started again with the same
// command line, which takes up the lease it finds in its lease file.

// CommandLine (Service.Kind): a daemon no init script owns, stopped with
// Service.StopSignal and started again with its own command line.
const CommandLine = "command"

// ifupdownClient is pid's service when it is a dhclient that ifup
// started: its -pf pidfile holds it and its interface is configured with
// the dhcp method in /etc/network/interfaces (or a file it sources).
func (l *lookup) ifupdownClient(pid int) (Service, bool) {
	if l.comm(pid) != "dhclient" {
		return Service{}, false
	}
	argv := l.identity(pid).argv
	pf, iface := "", ""
	for i, a := range argv {
		if a == "-pf" && i+1 < len(argv) {
			pf = argv[i+1]
		}
	}
	if len(argv) > 1 {
		iface = argv[len(argv)-1] // ifupdown names the interface last
	}
	if pf == "" || iface == "" || strings.HasPrefix(iface, "-") {
		return Service{}, false
	}
	if p, ok := readPidfile(l.c.path(pf)); !ok || p != pid {
		return Service{}, false
	}
	where, ok := l.c.dhcpIface(iface, "/etc/network/interfaces", 0)
	if !ok {
		return Service{}, false
	}
	return Service{Name: "dhclient." + iface, Kind: CommandLine, Restartable: true, StopSignal: syscall.SIGKILL, PID: pid,
		Why:    pf + " holds " + strconv.Itoa(pid) + ": ifup's DHCP client for " + iface + " (" + where + "); a SIGTERM may run dhclient-script's STOP, which removes the address",
		Manual: "kill -KILL " + strconv.Itoa(pid) + "; " + strings.Join(argv, " ")}, true
}

// dhcpIface finds "iface IFACE inet dhcp" (or inet6) in the interfaces
// file p and the files it sources, and says where.
func (c Config) dhcpIface(iface, p string, depth int) (string, bool) {
	f, err := os.Open(c.path(p))
	if err != nil || depth > 4 {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		switch {
		case len(w) >= 4 && w[0] == "iface" && w[1] == iface && w[3] == "dhcp":
			return strings.Join(w[:4], " ") + " in " + p, true
		case len(w) == 2 && (w[0] == "source" || w[0] == "source-directory"):
			for _, inc := range c.sourced(w[0], w[1], path.Dir(p)) {
				if where, ok := c.dhcpIface(iface, inc, depth+1); ok {
					return where, true
				}
			}
		}
	}
	return "", false
}

// sourced lists the files a source line names (a glob) or a
// source-directory line's directory holds (names of letters, digits,
// '_' and '-' only, as run-parts takes them). Relative paths are from
// the including file's directory.
func (c Config) sourced(kw, arg, dir string) []string {
	if !path.IsAbs(arg) {
		arg = path.Join(dir, arg)
	}
	var out []string
	if kw == "source" {
		m, _ := filepath.Glob(c.path(arg))
		for _, f := range m {
			out = append(out, c.rel(f))
		}
		return out
	}
	ents, _ := os.ReadDir(c.path(arg))
	for _, e := range ents {
		if strings.Trim(e.Name(), "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
			out = append(out, path.Join(arg, e.Name()))
		}
	}
	return out
}
