package initsys

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strings"
)

// BusyboxNoReexec is why busybox init is not re-executed, in the words
// telinit-u and plan print.
const BusyboxNoReexec = "busybox init has no re-exec: its only restart (SIGQUIT) kills every process first. " +
	"PID 1 keeps the old root busy until the next reboot; rootswap detaches the old root lazily instead " +
	"(it is read-only by then, nothing is lost)"

// Busybox is busybox init: it runs /etc/inittab and nothing else. Its
// sysinit line usually runs /etc/init.d/rcS, which (Buildroot, many
// embedded systems) starts /etc/init.d/S??name in order with "start";
// rcK stops them in reverse with "stop". Those scripts are the services;
// daemons on respawn lines are restarted by init itself when they die.
type Busybox struct {
	cfg  Config
	pid1 PID1
	Why  string // what Detect saw
}

func (b *Busybox) Kind() Kind { return KindBusybox }

func (b *Busybox) Describe() string { return "busybox init (" + b.ReexecMethod() + ")" }

func (b *Busybox) ReexecMethod() string {
	return "no re-exec: busybox init's only restart (SIGQUIT) kills every process first"
}

func (b *Busybox) Reexec(ctx context.Context) error {
	return fmt.Errorf("%s: %w", BusyboxNoReexec, ErrNoReexec)
}

// ServiceOf finds, after containers and runit/s6 trees (see serviceOf),
// the /etc/inittab line that started pid, then the /etc/init.d script
// whose text names its pidfile or program (see scriptService).
func (b *Busybox) ServiceOf(pid int) (Service, bool) { return b.lookup().ServiceOf(pid) }

func (b *Busybox) lookup() Lookup {
	l := b.cfg.newLookup()
	return serviceLookup(func(pid int) (Service, bool) {
		return l.serviceOf(pid, func(p int) (Service, bool) { return b.ownServiceIn(l, p) })
	})
}

func (b *Busybox) ownServiceIn(l *lookup, pid int) (Service, bool) {
	if svc, ok := b.inittabService(l, pid); ok {
		return svc, true
	}
	return l.scriptService(pid, InitDScript)
}

// inittabService finds the /etc/inittab line that started pid: a child of
// PID 1 whose command line is the line's process field. It is reported,
// not restartable: init restarts respawn lines itself once the process
// is killed.
func (b *Busybox) inittabService(l *lookup, pid int) (Service, bool) {
	if ppid, ok := l.ppid(pid); !ok || ppid != 1 {
		return Service{}, false
	}
	argv := strings.Join(strings.Fields(strings.Join(l.identity(pid).argv, " ")), " ")
	if argv == "" {
		return Service{}, false
	}
	inittab, err := b.cfg.readCached(b.cfg.path("/etc/inittab"))
	if err != nil {
		return Service{}, false
	}
	sc := bufio.NewScanner(bytes.NewReader(inittab))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// id:runlevels:action:process; busybox ignores runlevels.
		parts := strings.SplitN(line, ":", 4)
		if len(parts) != 4 {
			continue
		}
		action, process := parts[2], parts[3]
		// A leading '-' asks for a login shell; init strips it from argv.
		cmd := strings.Join(strings.Fields(strings.TrimPrefix(strings.TrimSpace(process), "-")), " ")
		if cmd == "" || cmd != argv {
			continue
		}
		svc := Service{Name: cmd, Kind: InittabEntry}
		switch action {
		case "respawn", "askfirst":
			svc.Why = "/etc/inittab " + action + " line: kill it and busybox init starts it again, from the root init now sees"
		default:
			svc.Why = "/etc/inittab " + action + " line: busybox init does not start it again"
		}
		return svc, true
	}
	return Service{}, false
}

func (b *Busybox) noManager(svc Service, what string) error {
	return fmt.Errorf("cannot %s %s: busybox init has no service manager for /etc/inittab lines; processes on respawn lines are restarted by init when killed, others must be killed and started again by hand: %w",
		what, svc.Name, ErrNoServiceManager)
}

// script runs /etc/init.d/SCRIPT ACTION as rcS and rcK do; a bare name
// ("nginx") finds its S??nginx.
func (b *Busybox) script(ctx context.Context, svc Service, action string) error {
	if ok, err := b.cfg.supervisedAction(ctx, b, svc, action); ok {
		return err
	}
	if svc.Kind == InittabEntry {
		return b.noManager(svc, action)
	}
	if err := checkRestartable(svc); err != nil {
		return err
	}
	name, ok := b.cfg.scriptNamed(svc.Name)
	if !ok {
		return fmt.Errorf("cannot %s %s: no /etc/init.d/%s or /etc/init.d/S??%s: %w", action, svc.Name, svc.Name, svc.Name, ErrNotRestartable)
	}
	_, err := b.cfg.run(ctx, "/etc/init.d/"+name, action)
	return err
}

func (b *Busybox) resolve(svc Service) Service {
	if svc.Kind != InitDScript {
		return svc
	}
	if name, ok := b.cfg.scriptNamed(svc.Name); ok {
		svc.Name = name
	}
	return svc
}

func (b *Busybox) Stop(ctx context.Context, svc Service) error  { return b.script(ctx, svc, "stop") }
func (b *Busybox) Start(ctx context.Context, svc Service) error { return b.script(ctx, svc, "start") }

// Restart is stop then start: the two actions every rcS script has
// (restart is often missing or just the same two).
func (b *Busybox) Restart(ctx context.Context, svc Service) error {
	if ok, err := b.cfg.supervisedAction(ctx, b, svc, "restart"); ok {
		return err
	}
	if err := b.Stop(ctx, svc); err != nil {
		return err
	}
	return b.Start(ctx, svc)
}

// Running: rcS scripts seldom have a status action, so a script runs
// when some process belongs to it.
func (b *Busybox) Running(ctx context.Context, svc Service) (bool, error) {
	if ok, running, err := b.cfg.supervisedRunning(ctx, svc); ok {
		return running, err
	}
	if svc.Kind == InittabEntry {
		return false, b.noManager(svc, "query")
	}
	name, ok := b.cfg.scriptNamed(svc.Name)
	if !ok {
		return false, nil
	}
	l := b.cfg.newLookup()
	for _, pid := range b.cfg.pids() {
		if pid <= 1 || l.facts(pid).zombie {
			continue // a zombie's pid may still be in the pidfile
		}
		if s, ok := b.ownServiceIn(l, pid); ok && s.Kind == InitDScript && s.Restartable && s.Name == name {
			return true, nil
		}
	}
	return false, nil
}
