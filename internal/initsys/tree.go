package initsys

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// A runit or s6 supervision tree is started once, from one root: runsvdir
// (s6-svscan) changes into its scan directory, each runsv (s6-supervise)
// into its service directory, and runs ./run from there. After a pivot
// their working directories are still the old root's (they read
// /mnt/oldroot/etc/service/nginx), so `sv restart` brings a service back
// from the old root, and the old root is never released. What an admin
// does is restart the tree itself from the new root: take it down
// through its scanner (runsvdir's SIGHUP, s6-svscanctl -t: every service
// stops and every supervisor exits) and let whatever started it start it
// again: the service of PID 1 that runs it (runit.service, an init.d
// script), or PID 1 itself when it respawns it (Debian's inittab line
// "SV:123456:respawn:/etc/runit/2", runit's stage 2).

// Tree is a supervision tree taken as one service.
type Tree struct {
	Kind    string // RunitService or S6Service
	Top     int    // the scanner, or a supervisor that has none
	Scanner bool   // Top is runsvdir or s6-svscan
	Dir     string // the scan directory, or the lone supervisor's service directory
	// What starts it again once it is down: a service of PID 1
	// (Starter, of kind StarterKind), or PID 1 by itself (Respawn says
	// how).
	Starter     string
	StarterKind string
	Respawn     string
}

// What names the tree as ps shows it: "runsvdir /etc/service".
func (t Tree) What() string {
	if t.Scanner {
		if t.Kind == RunitService {
			return "runsvdir " + t.Dir
		}
		return "s6-svscan " + t.Dir
	}
	if t.Kind == RunitService {
		return "runsv " + t.Dir
	}
	return "s6-supervise " + t.Dir
}

// DownCommand takes the tree down: every service stops, every supervisor
// exits. runsvdir sends SIGTERM to each runsv on SIGHUP (runsv then
// stops its service and exits) and exits 111; s6-svscanctl -t brings
// the services down and lets the loggers drain.
func (t Tree) DownCommand() []string {
	switch {
	case t.Scanner && t.Kind == RunitService:
		return []string{"kill", "-HUP", strconv.Itoa(t.Top)}
	case t.Scanner:
		return []string{"s6-svscanctl", "-t", t.Dir}
	case t.Kind == RunitService:
		return []string{"sv", "exit", t.Dir}
	}
	return []string{"s6-svc", "-dx", t.Dir}
}

// treeDownWait bounds the wait for the old tree to go: sv waits 7 s for
// a service to stop, and runsv stops them all at once.
const treeDownWait = 15 * time.Second

// respawnWait bounds the wait for PID 1 to start the tree again
// (runsvdir's own rescan is every 5 s; init respawns at once).
const respawnWait = 10 * time.Second

// isTreeProcess: comm is a scanner or supervisor.
func isTreeProcess(comm string) bool {
	_, sup := supervisors[comm]
	_, scan := scanners[comm]
	return sup || scan
}

// tree is the supervision tree pid (a scanner or supervisor) is part of:
// the topmost scanner or supervisor among it and its parents.
func (l *lookup) tree(pid int) Tree {
	top := pid
	for _, p := range l.ancestry(pid) {
		if isTreeProcess(l.comm(p)) {
			top = p
		}
	}
	if ppid, ok := l.ppid(top); ok && ppid == 1 && isTreeProcess(l.comm(1)) {
		top = 1 // a container's PID 1 (ancestry stops below PID 1)
	}
	comm := l.comm(top)
	t := Tree{Top: top}
	if kind, ok := scanners[comm]; ok {
		t.Kind, t.Scanner = kind, true
		t.Dir, _ = l.c.scanDir(top)
	} else {
		t.Kind = supervisors[comm]
		t.Dir, _ = l.c.serviceDir(top)
	}
	return t
}

// treeService is the tree pid is part of as a service: restartable when
// a service of PID 1 started it or PID 1 respawns it, else named with
// what the admin can do by hand.
func (l *lookup) treeService(pid int, own func(int) (Service, bool)) (Service, bool) {
	t := l.tree(pid)
	what := t.What()
	head := "supervision tree (" + what + ", pid " + strconv.Itoa(t.Top) + ")"
	down := strings.Join(t.DownCommand(), " ")
	if t.Top == 1 {
		return Service{Name: what, Kind: t.Kind, Tree: t,
			Why:    head + " is PID 1: its services keep the root it started from until PID 1 itself restarts (the container)",
			Manual: "restart the container from its host (its PID 1, " + what + ", keeps the old root)"}, true
	}
	starter, ok := own(t.Top)
	if ok && starter.Restartable && starter.Tree.Kind == "" {
		t.Starter, t.StarterKind = starter.Name, starter.Kind
		svc := starter
		svc.Tree = t
		svc.Why = head + " started by " + starter.Name + ": restarting it takes the tree down (" + down +
			") and starts " + starter.Name + " again, which brings every service of the tree back from the current root"
		if starter.Why != "" {
			svc.Why += "; " + starter.Why
		}
		svc.Manual = down + "; " + startCommand(starter)
		return svc, true
	}
	if respawn := l.respawner(t); respawn != "" {
		t.Respawn = respawn
		return Service{Name: what, Kind: t.Kind, Restartable: true, Tree: t,
			Why:    head + " respawned by " + respawn + ": taking it down (" + down + ") makes PID 1 start it again from its current root",
			Manual: down + "   # PID 1 starts it again"}, true
	}
	why := head + " that no service manager started and PID 1 does not respawn"
	if ok {
		why += " (" + starter.String() + ")"
	}
	return Service{Name: what, Kind: t.Kind, Tree: t, Why: why + ": it is not restarted for you",
		Manual: down + "; then start " + strings.Join(l.identity(t.Top).argv, " ") + " again, as it was started"}, true
}

// respawner says how PID 1 starts the tree again when its top exits: runit
// as PID 1 restarts stage 2 (/etc/runit/2, which execs runsvdir) when it
// exits 111, as runsvdir does on SIGHUP; sysvinit and busybox init
// respawn an /etc/inittab respawn line that runs the scanner, or a
// script that execs it (Debian's "SV:123456:respawn:/etc/runit/2").
func (l *lookup) respawner(t Tree) string {
	if !t.Scanner {
		return ""
	}
	if ppid, ok := l.ppid(t.Top); !ok || ppid != 1 {
		return ""
	}
	if l.comm(1) == "runit" && t.Kind == RunitService {
		return "runit (PID 1), which starts stage 2 (/etc/runit/2) again when it exits"
	}
	inittab, err := l.c.readCached(l.c.path("/etc/inittab"))
	if err != nil {
		return ""
	}
	argv := strings.Join(l.identity(t.Top).argv, " ")
	for _, line := range strings.Split(string(inittab), "\n") {
		line = strings.TrimSpace(line)
		parts := strings.SplitN(line, ":", 4)
		if line == "" || line[0] == '#' || len(parts) != 4 || parts[2] != "respawn" {
			continue
		}
		cmd := strings.TrimSpace(parts[3])
		f := strings.Fields(cmd)
		if len(f) == 0 {
			continue
		}
		prog := path.Base(f[0])
		if cmd == argv || respawnsTree(t.Kind, f[0], prog) {
			return "/etc/inittab line " + line
		}
	}
	return ""
}

// respawnsTree: an inittab command that runs the scanner of kind, or the
// script that starts one.
func respawnsTree(kind, prog, base string) bool {
	if kind == RunitService {
		return base == "runsvdir" || base == "runsvdir-start" || prog == "/etc/runit/2"
	}
	return base == "s6-svscan" || base == "svscanboot" || base == "s6-svscanboot"
}

// startCommand is how the admin starts svc by hand.
func startCommand(svc Service) string {
	switch svc.Kind {
	case ServiceUnit, SocketUnit:
		return "systemctl start " + svc.Name
	case OpenRCService:
		return "rc-service " + svc.Name + " start"
	case InitDScript:
		return "/etc/init.d/" + svc.Name + " start"
	}
	return "start " + svc.Name
}

// onOtherRoot reports whether the supervisor sup of service directory
// dir works in another root's copy of it: its cwd link reads
// /mnt/oldroot/etc/service/nginx after a pivot, while this root's dir
// (links resolved) is /etc/sv/nginx. An unreadable cwd counts as here.
func (c Config) onOtherRoot(sup int, dir string) (cwd string, other bool) {
	cwd, ok := c.cwd(sup)
	if !ok || cwd == dir {
		return "", false
	}
	if real, err := filepath.EvalSymlinks(c.path(dir)); err == nil && c.rel(real) == cwd {
		return "", false
	}
	return cwd, true
}

// treeAction stops, starts or restarts the tree svc stands for. Down
// first, through the scanner, since a starter's own stop often ends only
// the scanner and leaves the supervisors and services running.
func (c Config) treeAction(ctx context.Context, sys System, svc Service, action string) error {
	if err := checkRestartable(svc); err != nil {
		return err
	}
	t := svc.Tree
	starter := Service{Name: t.Starter, Kind: t.StarterKind, Restartable: true}
	switch {
	case action == "start" && t.Starter != "":
		return sys.Start(ctx, starter)
	case action == "start":
		return nil // PID 1 respawns it
	case action == "stop" && t.Starter == "":
		return fmt.Errorf("%s: %s respawns it, so it can be restarted but not stopped: %w", t.What(), t.Respawn, ErrNotRestartable)
	}
	old := c.treePIDs(t)
	argv := t.DownCommand()
	if _, err := c.run(ctx, argv[0], argv[1:]...); err != nil {
		return fmt.Errorf("taking down %s: %w", t.What(), err)
	}
	if left := c.waitGone(ctx, old, treeDownWait); len(left) > 0 {
		return fmt.Errorf("%s: %s still run %s after %s: %s", t.What(), joinPIDs(left), strings.Join(argv, " "), treeDownWait, svc.Manual)
	}
	switch {
	case action == "stop":
		return sys.Stop(ctx, starter)
	case t.Starter != "":
		return sys.Start(ctx, starter)
	}
	if !c.waitScanner(ctx, t, old, respawnWait) {
		return fmt.Errorf("%s: %s did not start it again within %s", t.What(), t.Respawn, respawnWait)
	}
	return nil
}

// treePIDs are the top of t and every scanner and supervisor below it.
func (c Config) treePIDs(t Tree) map[int]bool {
	out := map[int]bool{t.Top: true}
	for _, pid := range c.pids() {
		if !isTreeProcess(c.comm(pid)) {
			continue
		}
		for _, p := range c.ancestry(pid) {
			if p == t.Top {
				out[pid] = true
				break
			}
		}
	}
	return out
}

// waitGone waits until none of pids is alive (or a zombie), for at most
// d, and returns those left.
func (c Config) waitGone(ctx context.Context, pids map[int]bool, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var left []int
		for pid := range pids {
			if exists(c.proc(strconv.Itoa(pid))) && !c.zombie(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			sort.Ints(left)
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitScanner waits for a new scanner of t's scan directory.
func (c Config) waitScanner(ctx context.Context, t Tree, old map[int]bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		for _, pid := range c.pids() {
			if old[pid] || scanners[c.comm(pid)] != t.Kind {
				continue
			}
			if dir, ok := c.scanDir(pid); ok && dir == t.Dir {
				return true
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func joinPIDs(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return "pid " + strings.Join(s, ", ")
}
