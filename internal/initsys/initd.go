package initsys

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// An init script owns a process when its text names the process's
// pidfile or its executable (see ScriptFacts). This is what finds
// Buildroot's S01syslogd behind /var/run/syslogd.pid, or an S50webui
// whose pidfile is /var/run/lighttpd.pid: the script's name says nothing
// reliable, its text does.

// notServiceScripts are /etc/init.d entries that are not one service:
// the rc drivers and helpers that run or stop the others.
var notServiceScripts = map[string]bool{
	"rcS": true, "rcK": true, "rc": true, "rc.local": true, "functions": true, "README": true,
	"skeleton": true, "sendsigs": true, "killprocs": true, "umountfs": true, "umountroot": true,
	"halt": true, "reboot": true, "single": true, "killall": true,
}

// initScript is one /etc/init.d script and what its text names.
type initScript struct {
	Name  string
	Facts ScriptFacts
}

// maxScriptSize bounds what is read of a script: a larger file is not a
// shell script.
const maxScriptSize = 256 << 10

// isRCNumbered: "S50nginx", "K20nginx".
func isRCNumbered(n string) bool {
	return len(n) > 3 && (n[0] == 'S' || n[0] == 'K') && n[1] >= '0' && n[1] <= '9' && n[2] >= '0' && n[2] <= '9'
}

// rcName is the service name inside an rc script name: "nginx" of "S50nginx".
func rcName(n string) string {
	if isRCNumbered(n) {
		return n[3:]
	}
	return n
}

// procIdentity is what is matched against the executables a script
// names: the exe link text and the command line.
type procIdentity struct {
	exe  string // exe link text without " (deleted)"
	argv []string
}

func (c Config) identity(pid int) procIdentity {
	var id procIdentity
	if t, err := os.Readlink(c.proc(strconv.Itoa(pid), "exe")); err == nil {
		id.exe = strings.TrimSuffix(t, " (deleted)")
	}
	if b, err := os.ReadFile(c.proc(strconv.Itoa(pid), "cmdline")); err == nil {
		for _, a := range bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0}) {
			id.argv = append(id.argv, string(a))
		}
	}
	return id
}

// runs reports whether the process runs program (an absolute path):
//
//   - its exe link text is program, or ends in it after a pivot
//     ("/mnt/oldroot/usr/sbin/crond");
//   - its argv[0] is program (busybox applets: the exe is /bin/busybox,
//     argv[0] the /usr/sbin/crond start-stop-daemon -x ran), or is
//     program's base name when started through PATH;
//   - its rewritten title names program as a word
//     ("nginx: master process /usr/sbin/nginx -g daemon on;").
func (id procIdentity) runs(program string) bool {
	if id.exe != "" && (id.exe == program || strings.HasSuffix(id.exe, program)) {
		return true
	}
	if len(id.argv) == 0 || id.argv[0] == "" {
		return false
	}
	a0 := id.argv[0]
	if a0 == program || !strings.Contains(a0, "/") && a0 == path.Base(program) {
		return true
	}
	if len(id.argv) == 1 && strings.Contains(a0, " ") {
		for _, f := range strings.Fields(a0) {
			if f == program {
				return true
			}
		}
	}
	return false
}

// scriptFor finds the script whose text names pidfile (as the live system
// spells it); when several do, the one named after the pidfile wins.
func scriptFor(scripts []initScript, pidfile string) (string, bool) {
	var named []string
	for _, s := range scripts {
		for _, p := range s.Facts.Pidfiles {
			if p == pidfile {
				named = append(named, s.Name)
				break
			}
		}
	}
	if len(named) == 0 {
		return "", false
	}
	cands := scriptCandidates(pidfile)
	for _, c := range cands {
		for _, n := range named {
			if n == c || rcName(n) == c {
				return n, true
			}
		}
	}
	return named[0], true
}

// scriptRunning finds the first script naming a program the process runs.
func scriptRunning(scripts []initScript, id procIdentity) (string, string, bool) {
	for _, s := range scripts {
		for _, x := range s.Facts.Executables {
			if id.runs(x) {
				return s.Name, x, true
			}
		}
	}
	return "", "", false
}

// scriptPidfiles are the pidfiles the scripts name that the /run globs
// miss (/var/run/nginx/nginx.pid, /tmp/x.pid).
func scriptPidfiles(scripts []initScript) []string {
	var out []string
	for _, s := range scripts {
		out = append(out, s.Facts.Pidfiles...)
	}
	return out
}

// scriptNamed resolves a service name to its /etc/init.d script: the
// script itself, or the S??name script rcS runs ("nginx" is S50nginx).
func (c Config) scriptNamed(name string) (string, bool) {
	if name == "" || strings.Contains(name, "/") {
		return "", false
	}
	if fi, err := os.Stat(c.path("/etc/init.d/" + name)); err == nil && fi.Mode().IsRegular() {
		return name, true
	}
	m, _ := filepath.Glob(filepath.Join(c.path("/etc/init.d"), "S[0-9][0-9]"+name))
	sort.Strings(m)
	for _, p := range m {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return filepath.Base(p), true
		}
	}
	return "", false
}
