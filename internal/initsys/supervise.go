package initsys

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// runit and s6 supervise each service from a directory of its own
// (/etc/service/nginx, /run/service/nginx): runsv DIR or s6-supervise DIR
// runs DIR/run and restarts it, runsvdir or s6-svscan starts one
// supervisor per directory of a scan directory. They run under any PID 1
// (runit under sysvinit, s6 in a container) or as PID 1's stage 2. A
// process is theirs when one of its ancestors is runsv or s6-supervise.

// Service kinds of the supervision suites (Service.Kind).
const (
	RunitService = "runit" // a runit service directory, driven by sv
	S6Service    = "s6"    // an s6 service directory, driven by s6-svc
)

// supervisors maps the comm of a per-service supervisor to its suite, and
// scanners the comm of the process that starts the supervisors.
var (
	supervisors = map[string]string{"runsv": RunitService, "s6-supervise": S6Service}
	scanners    = map[string]string{"runsvdir": RunitService, "s6-svscan": S6Service}
)

// s6WaitMillis bounds how long s6-svc waits for a service to go down or
// come up (sv waits 7 s by default).
const s6WaitMillis = "10000"

// superviseCommand is the argv that performs action on the service
// directory dir.
func superviseCommand(kind, dir, action string) []string {
	if kind == RunitService {
		return []string{"sv", action, dir}
	}
	switch action {
	case "stop":
		// -wd: return once the service is down, as sv stop does.
		return []string{"s6-svc", "-wd", "-T", s6WaitMillis, "-d", dir}
	case "start":
		return []string{"s6-svc", "-wu", "-T", s6WaitMillis, "-u", dir}
	default:
		// -r: SIGTERM, and the supervisor starts it again.
		return []string{"s6-svc", "-wr", "-T", s6WaitMillis, "-r", dir}
	}
}

// superviseRunning asks the suite whether the service is up:
// `sv status DIR` prints "run: DIR: (pid 42) 7s" ("down:", "finish:",
// "fail:" otherwise); `s6-svstat -o up DIR` prints "true" or "false".
func (c Config) superviseRunning(ctx context.Context, kind, dir string) (bool, error) {
	if kind == RunitService {
		out, err := c.run(ctx, "sv", "status", dir)
		s := strings.TrimSpace(string(out))
		switch {
		case strings.HasPrefix(s, "run:"), strings.HasPrefix(s, "finish:"):
			return true, nil
		case strings.HasPrefix(s, "down:"):
			return false, nil
		}
		if err == nil {
			err = fmt.Errorf("sv status %s: unexpected answer %q", dir, lastLine(s))
		}
		return false, err
	}
	out, err := c.run(ctx, "s6-svstat", "-o", "up", dir)
	switch strings.TrimSpace(string(out)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if err == nil {
		err = fmt.Errorf("s6-svstat -o up %s: unexpected answer %q", dir, lastLine(string(out)))
	}
	return false, err
}

// supervisionKind is the suite of svc: its Kind when set, else (a service
// rebuilt from its name alone) the suite of a supervisor that runs for
// the directory it names.
func (c Config) supervisionKind(svc Service) string {
	switch svc.Kind {
	case RunitService, S6Service:
		return svc.Kind
	}
	if !path.IsAbs(svc.Name) {
		return ""
	}
	dir := path.Clean(svc.Name)
	for _, kind := range []string{RunitService, S6Service} {
		if _, ok := c.supervisorOf(kind, dir); ok {
			return kind
		}
	}
	// A tree just restarted may not have started this supervisor yet.
	for _, kind := range []string{RunitService, S6Service} {
		if c.scannerOf(kind, path.Dir(dir)) {
			if _, ok := c.waitSupervisor(context.Background(), kind, dir, respawnWait); ok {
				return kind
			}
		}
	}
	return ""
}

// supervisorOf is the supervisor of kind that runs for dir.
func (c Config) supervisorOf(kind, dir string) (int, bool) {
	for _, pid := range c.pids() {
		if supervisors[c.comm(pid)] != kind {
			continue
		}
		if d, ok := c.serviceDir(pid); ok && d == dir {
			return pid, true
		}
	}
	return 0, false
}

// scannerOf reports whether a scanner of kind scans dir.
func (c Config) scannerOf(kind, dir string) bool {
	for _, pid := range c.pids() {
		if scanners[c.comm(pid)] == kind {
			if d, ok := c.scanDir(pid); ok && d == dir {
				return true
			}
		}
	}
	return false
}

// waitSupervisor waits up to d for a supervisor of kind for dir.
func (c Config) waitSupervisor(ctx context.Context, kind, dir string, d time.Duration) (int, bool) {
	deadline := time.Now().Add(d)
	for {
		if pid, ok := c.supervisorOf(kind, dir); ok {
			return pid, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// treeRunning: a scanner (a lone supervisor) of t's directory runs.
func (c Config) treeRunning(t Tree) bool {
	if t.Scanner {
		return c.scannerOf(t.Kind, t.Dir)
	}
	_, ok := c.supervisorOf(t.Kind, t.Dir)
	return ok
}

// argv reads /proc/PID/cmdline.
func (c Config) argv(pid int) []string { return c.identity(pid).argv }

// serviceDir is the directory the supervisor sup (runsv, s6-supervise)
// runs: its argument, joined to its scanner's scan directory when
// relative (both scanners start supervisors by bare name from inside the
// scan directory). The argv text stays the same across a pivot, unlike
// the cwd link, which gains the old root's mount point.
func (c Config) serviceDir(sup int) (string, bool) {
	argv := c.argv(sup)
	if len(argv) < 2 || argv[1] == "" {
		return c.cwd(sup)
	}
	dir := argv[1]
	if path.IsAbs(dir) {
		return path.Clean(dir), true
	}
	if parent, ok := c.ppid(sup); ok {
		if _, isScanner := scanners[c.comm(parent)]; isScanner {
			if scan, ok := c.scanDir(parent); ok {
				return path.Join(scan, dir), true
			}
		}
	}
	return c.cwd(sup)
}

// scanDir is the scan directory of runsvdir ("runsvdir -P /etc/service
// log: ...": the first argument that is not an option) or s6-svscan (its
// last argument when absolute, else its working directory).
func (c Config) scanDir(pid int) (string, bool) {
	argv := c.argv(pid)
	switch c.comm(pid) {
	case "runsvdir":
		for _, a := range argv[min(1, len(argv)):] {
			if !strings.HasPrefix(a, "-") {
				if path.IsAbs(a) {
					return path.Clean(a), true
				}
				break
			}
		}
	case "s6-svscan":
		if len(argv) > 1 && path.IsAbs(argv[len(argv)-1]) {
			return path.Clean(argv[len(argv)-1]), true
		}
	}
	return c.cwd(pid)
}

func (c Config) cwd(pid int) (string, bool) {
	t, err := os.Readlink(c.proc(strconv.Itoa(pid), "cwd"))
	if err != nil || !path.IsAbs(t) {
		return "", false
	}
	return strings.TrimSuffix(t, " (deleted)"), true
}

// supervisedService: a process below runsv/s6-supervise belongs to that
// service directory, as long as the supervisor works in this root's copy
// of it; one that works in another root's (after a pivot) can only be
// moved by restarting its whole tree, so the process belongs to the
// tree. The supervisors and scanners themselves belong to the tree,
// which is the only way to get them off a root (tree.go).
func (l *lookup) supervisedService(pid int, own func(int) (Service, bool)) (Service, bool) {
	if isTreeProcess(l.comm(pid)) {
		return l.treeService(pid, own)
	}
	chain := l.ancestry(pid)
	for i, p := range chain {
		if i == 0 {
			continue
		}
		kind, ok := supervisors[l.comm(p)]
		if !ok {
			continue
		}
		dir, ok := l.c.serviceDir(p)
		if !ok {
			return Service{}, false
		}
		sup := l.comm(p)
		why := "child of " + sup + " " + dir
		if i > 1 {
			why = "parent " + strconv.Itoa(chain[i-1]) + " is a " + why
		}
		if cwd, other := l.c.onOtherRoot(p, dir); other {
			svc, _ := l.treeService(p, own)
			svc.Why = why + ", which works in another root's copy of it (cwd " + cwd + "): " + svc.Why
			return svc, true
		}
		return Service{Name: dir, Kind: kind, Restartable: true, Why: why}, true
	}
	return Service{}, false
}
