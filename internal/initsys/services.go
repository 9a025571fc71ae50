package initsys

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
)

// A process may belong to something that is not PID 1's own service but
// runs under it: a container (whose daemon is a service of PID 1), or a
// runit or s6 supervision tree (started by PID 1, by a script, or being
// PID 1 itself in a container). Every System asks serviceOf, which looks
// at those first and falls back to the system's own answer.

// Lookup answers ServiceOf for many processes in one pass: each init
// script, pidfile and /proc entry it needs is read once. It is good for
// one pass (plan's over every holder of /); take a new one after
// services were stopped or restarted.
type Lookup interface {
	ServiceOf(pid int) (Service, bool)
}

// NewLookup is sys's Lookup for one pass over many processes; a System
// without one of its own (a test's fake) answers each question itself.
func NewLookup(sys System) Lookup {
	if s, ok := sys.(interface{ lookup() Lookup }); ok {
		return s.lookup()
	}
	return sys
}

// Resolve is the service svc names, as ServiceOf reports it: a service
// asked for by bare name ("dropbear") or rebuilt from the journal is, on
// busybox, the rcS script that runs it (S50dropbear). Elsewhere, and
// when nothing else matches, it is svc itself.
func Resolve(sys System, svc Service) Service {
	if r, ok := sys.(interface{ resolve(Service) Service }); ok {
		return r.resolve(svc)
	}
	return svc
}

type serviceLookup func(pid int) (Service, bool)

func (f serviceLookup) ServiceOf(pid int) (Service, bool) { return f(pid) }

// serviceOf is the service pid belongs to:
//
//  1. a container's process (below containerd-shim or conmon): the
//     service of the daemon that runs the container (containers.go);
//  2. a process supervised by runsv or s6-supervise: that service
//     directory (supervise.go); runsv, runsvdir, s6-supervise and
//     s6-svscan themselves: the service that started the tree;
//  3. a DHCP client ifup started (ifupdown.go), a service of its own
//     even where PID 1 files it under networking's;
//  4. own: what PID 1's service manager says.
//
// dockerd itself is reported with LiveRestore set when it has it on.
func (l *lookup) serviceOf(pid int, own func(int) (Service, bool)) (Service, bool) {
	if own == nil {
		own = func(int) (Service, bool) { return Service{}, false }
	}
	if svc, ok := l.containerService(pid, own); ok {
		return svc, true
	}
	if svc, ok := l.supervisedService(pid, own); ok {
		return svc, true
	}
	if svc, ok := l.ifupdownClient(pid); ok {
		return svc, true
	}
	svc, ok := own(pid)
	if ok && l.comm(pid) == "dockerd" {
		if lr, why := l.c.LiveRestore(pid); lr {
			svc.LiveRestore = true
			if svc.Why != "" {
				svc.Why += "; "
			}
			svc.Why += "the docker daemon, with live-restore (" + why + ")"
		}
	}
	return svc, ok
}

// comm is /proc/PID/comm, "" when unreadable.
func (c Config) comm(pid int) string {
	b, err := os.ReadFile(c.proc(strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// zombie reports whether pid has exited and waits to be reaped.
func (c Config) zombie(pid int) bool {
	b, err := os.ReadFile(c.proc(strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	_, z, _ := parseStat(b)
	return z
}

// pids lists the processes under ProcRoot.
func (c Config) pids() []int {
	ents, err := os.ReadDir(c.proc())
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			out = append(out, pid)
		}
	}
	return out
}

// supervisedAction runs action ("stop", "start", "restart") for a runit
// or s6 service; handled is false when svc is neither, so the caller's
// own manager acts.
//
// A supervision tree (svc.Tree) is taken down and started again as a
// whole (treeAction). A service whose supervisor works in another root's
// copy of its directory (after a pivot) is started or restarted by
// restarting its tree from this root, then through the new supervisor.
func (c Config) supervisedAction(ctx context.Context, sys System, svc Service, action string) (handled bool, err error) {
	if svc.Tree.Kind != "" {
		return true, c.treeAction(ctx, sys, svc, action)
	}
	kind := c.supervisionKind(svc)
	if kind == "" {
		return false, nil
	}
	if err := checkRestartable(svc); err != nil {
		return true, err
	}
	dir := path.Clean(svc.Name)
	if sup, ok := c.supervisorOf(kind, dir); ok && action != "stop" {
		if cwd, other := c.onOtherRoot(sup, dir); other {
			tree, _ := NewLookup(sys).ServiceOf(sup)
			if tree.Tree.Kind == "" || !tree.Restartable {
				return true, fmt.Errorf("cannot %s %s: its %s works in %s, another root's copy; %s; by hand: %s: %w",
					action, dir, c.comm(sup), cwd, tree.Why, tree.Manual, ErrNotRestartable)
			}
			if err := c.treeAction(ctx, sys, tree, "restart"); err != nil {
				return true, err
			}
			if _, ok := c.waitSupervisor(ctx, kind, dir, respawnWait); !ok {
				return true, fmt.Errorf("%s: no %s for it after restarting %s from this root", dir, c.comm(sup), tree.Tree.What())
			}
			if action == "restart" {
				return true, nil // the new tree started it
			}
		}
	}
	argv := superviseCommand(kind, svc.Name, action)
	_, err = c.run(ctx, argv[0], argv[1:]...)
	return true, err
}

// supervisedRunning is Running for a runit or s6 service, and for a
// tree: whether a scanner (supervisor) of its directory runs.
func (c Config) supervisedRunning(ctx context.Context, svc Service) (handled, running bool, err error) {
	if svc.Tree.Kind != "" {
		return true, c.treeRunning(svc.Tree), nil
	}
	kind := c.supervisionKind(svc)
	if kind == "" {
		return false, false, nil
	}
	running, err = c.superviseRunning(ctx, kind, svc.Name)
	return true, running, err
}
