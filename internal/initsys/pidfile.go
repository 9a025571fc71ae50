package initsys

import (
	"bufio"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// Finding the service of a process without a service manager that tracks
// processes (sysvinit, OpenRC without cgroups, busybox rcS) is best
// effort: daemons started by start-stop-daemon write their main PID to a
// pidfile, which the script's text names (initd.go) and whose name
// usually, but not always, is the script's. Workers forked by the daemon
// are found through their parents.

// scriptAliases are the init scripts, space-separated, that write the
// pidfile name n on the distributions rootswap meets (Debian first, then
// Gentoo/Alpine). Candidates are tried in order; the first script that
// exists wins. A switch of strings, not a map of slices built at init.
func scriptAliases(n string) string {
	switch n {
	case "sshd":
		return "ssh sshd"
	case "crond":
		return "cron cronie vixie-cron crond dcron"
	case "rsyslogd":
		return "rsyslog rsyslogd"
	case "syslogd":
		return "sysklogd syslog rsyslog syslog-ng busybox-syslogd syslogd"
	case "klogd":
		return "klogd sysklogd busybox-klogd"
	case "ntpd":
		return "ntp ntpsec ntpd openntpd"
	case "named":
		return "named bind9"
	case "httpd":
		return "apache2 httpd"
	case "mysqld":
		return "mariadb mysql mysqld"
	case "exim":
		return "exim4 exim"
	case "smartd":
		return "smartmontools smartd"
	}
	return ""
}

// ancestry is pid followed by its parents, up to (not including) PID 1.
func (c Config) ancestry(pid int) []int { return ancestry(pid, c.ppid) }

// ancestry is pid followed by its parents as ppid tells them, up to (not
// including) PID 1; at most 64, should a table loop.
func ancestry(pid int, ppid func(int) (int, bool)) []int {
	var chain []int
	for pid > 1 && len(chain) < 64 {
		chain = append(chain, pid)
		parent, ok := ppid(pid)
		if !ok {
			break
		}
		pid = parent
	}
	return chain
}

// ppid reads the parent from /proc/PID/stat.
func (c Config) ppid(pid int) (int, bool) {
	b, err := os.ReadFile(c.proc(strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	ppid, _, ok := parseStat(b)
	return ppid, ok
}

// pidfiles lists the pidfiles under Root: /run/*.pid, /run/*/*.pid,
// /run/*/pid (dbus), and the same under /var/run when it is a directory of
// its own rather than the usual link to /run (an absolute link would
// leave Root).
func (c Config) pidfiles() []string {
	var files []string
	for _, dir := range []string{"/run", "/var/run"} {
		fi, err := os.Lstat(c.path(dir))
		if err != nil || !fi.IsDir() {
			continue
		}
		for _, pat := range []string{"*.pid", "*/*.pid", "*/pid"} {
			m, _ := filepath.Glob(filepath.Join(c.path(dir), pat))
			files = append(files, m...)
		}
	}
	return files
}

// readPidfile returns the first number in a pidfile.
func readPidfile(p string) (int, bool) {
	b, err := os.ReadFile(p)
	if err != nil || len(b) > 4096 {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	pid, err := strconv.Atoi(f[0])
	return pid, err == nil && pid > 0
}

// scriptCandidates are the init script names a pidfile may belong to:
// its stem ("sshd" of sshd.pid), then its directory's name
// ("postgresql" of /run/postgresql/15-main.pid), each followed by its
// aliases.
func scriptCandidates(pidfile string) []string {
	stem := strings.TrimSuffix(path.Base(pidfile), ".pid")
	names := []string{stem}
	if dir := path.Base(path.Dir(pidfile)); dir != "run" {
		names = append(names, dir)
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		for _, c := range append([]string{n}, strings.Fields(scriptAliases(n))...) {
			if c != "" && c != "pid" && !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// script returns the first candidate with an /etc/init.d script under Root.
func (c Config) script(candidates []string) (string, bool) {
	for _, n := range candidates {
		if fi, err := os.Stat(c.path("/etc/init.d/" + n)); err == nil && fi.Mode().IsRegular() {
			return n, true
		}
	}
	return "", false
}

// scriptService finds the init script that owns pid, walking from pid up
// through its parents; for each process, in this order:
//
//  1. a pidfile holding it whose path a script's text names;
//  2. a pidfile holding it with a script named after it (sshd.pid: ssh);
//  3. a script whose text names the program it runs.
//
// A pidfile that leads to no script is still reported, as not
// restartable, when nothing else claims the process, so the admin sees it.
func (l *lookup) scriptService(pid int, kind string) (Service, bool) {
	c, scripts, byPID := l.c, l.initScripts(), l.pidfiles()
	var unowned *Service
	for _, p := range l.ancestry(pid) {
		prefix := ""
		if p != pid {
			prefix = "parent " + strconv.Itoa(p) + " "
		}
		for _, f := range byPID[p] {
			shown := c.rel(f)
			via := shown + " holds " + strconv.Itoa(p)
			if p != pid {
				via = "parent " + strconv.Itoa(p) + " is in " + shown
			}
			if name, ok := scriptFor(scripts, shown); ok {
				return Service{Name: name, Kind: kind, Restartable: true, Why: via + ", named by /etc/init.d/" + name}, true
			}
			cands := scriptCandidates(shown)
			if name, ok := c.script(cands); ok {
				return Service{Name: name, Kind: kind, Restartable: true, Why: via + ", script /etc/init.d/" + name}, true
			}
			if unowned == nil {
				unowned = &Service{Name: cands[0], Kind: kind,
					Why: via + " but no /etc/init.d script names it or is named " + strings.Join(cands, ", ")}
			}
		}
		if !l.underRoot(p) {
			continue
		}
		if name, prog, ok := scriptRunning(scripts, l.identity(p)); ok {
			return Service{Name: name, Kind: kind, Restartable: true,
				Why: prefix + "runs " + prog + ", started by /etc/init.d/" + name}, true
		}
	}
	if unowned != nil {
		return *unowned, true
	}
	return Service{}, false
}

// openRCService finds pid or a parent in OpenRC's start-stop-daemon
// records (see openRCRecords).
func (l *lookup) openRCService(pid int) (Service, bool) {
	chain := l.ancestry(pid)
	for _, rec := range l.openRCRecords() {
		for _, p := range chain {
			if l.c.recordMatches(rec.fields, p) {
				why := "start-stop-daemon record " + rec.path
				if p != pid {
					why = "parent " + strconv.Itoa(p) + " is in " + why
				}
				return Service{Name: rec.service, Kind: OpenRCService, Restartable: true, Why: why}, true
			}
		}
	}
	return Service{}, false
}

// openRCRecord is one start-stop-daemon record of OpenRC: one directory
// per service under RC_SVCDIR/daemons, one file per daemon holding
// "exec=", "argv_0=", "pidfile=" lines.
type openRCRecord struct {
	service string
	path    string // as the live system spells it
	fields  map[string]string
}

func (c Config) openRCRecords() []openRCRecord {
	var out []openRCRecord
	for _, svcdir := range []string{"/run/openrc", "/lib/rc/init.d", "/lib64/rc/init.d"} {
		records, _ := filepath.Glob(filepath.Join(c.path(svcdir), "daemons", "*", "*"))
		for _, rec := range records {
			name := filepath.Base(filepath.Dir(rec))
			out = append(out, openRCRecord{service: name, path: svcdir + "/daemons/" + name + "/" + filepath.Base(rec), fields: readRecord(rec)})
		}
	}
	return out
}

func readRecord(p string) map[string]string {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m
}

// recordMatches: by the record's pidfile when it has one; else by the
// process's exe link text ending in the record's exec= path (after a pivot
// the text gains the old root's mount point in front).
func (c Config) recordMatches(rec map[string]string, pid int) bool {
	if pf := rec["pidfile"]; pf != "" {
		p, ok := readPidfile(c.path(pf))
		return ok && p == pid
	}
	exec := rec["exec"]
	if exec == "" {
		return false
	}
	text, err := os.Readlink(c.proc(strconv.Itoa(pid), "exe"))
	if err != nil {
		return false
	}
	text = strings.TrimSuffix(text, " (deleted)")
	return text == exec || strings.HasSuffix(text, exec) && strings.HasPrefix(exec, "/")
}

// rel turns a path under Root back into the path the live system knows.
func (c Config) rel(p string) string {
	if c.Root == "" || c.Root == "/" {
		return p
	}
	return "/" + strings.TrimPrefix(strings.TrimPrefix(p, filepath.Clean(c.Root)), "/")
}

// underRoot reports whether the process sees Root as its root: the
// scripts of a root start programs in it, so a process of the same name
// in a chroot or container of its own is not theirs. A process whose root
// link cannot be read (a fixture) counts as under Root.
func (c Config) underRoot(pid int) bool {
	t, err := os.Readlink(c.proc(strconv.Itoa(pid), "root"))
	if err != nil {
		return true
	}
	want := c.Root
	if want == "" {
		want = "/"
	}
	return filepath.Clean(t) == filepath.Clean(want)
}

// superviseDaemonService: OpenRC scripts with supervisor=supervise-daemon
// run their daemon as a child of `supervise-daemon NAME --start ...`,
// NAME being the service. The supervisor itself belongs to the service
// too: rc-service NAME stop ends both.
func (l *lookup) superviseDaemonService(pid int) (Service, bool) {
	for _, p := range l.ancestry(pid) {
		if l.comm(p) != "supervise-daemon" {
			continue
		}
		argv := l.identity(p).argv
		if len(argv) < 2 || argv[1] == "" || strings.HasPrefix(argv[1], "-") || strings.Contains(argv[1], "/") {
			return Service{}, false
		}
		why := "supervise-daemon " + argv[1] + " (pid " + strconv.Itoa(p) + ")"
		if p != pid {
			why = "child of " + why
		}
		return Service{Name: argv[1], Kind: OpenRCService, Restartable: true, Why: why}, true
	}
	return Service{}, false
}
