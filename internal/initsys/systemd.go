package initsys

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Systemd is systemd as PID 1. Services are units; commands go through
// systemctl, which talks to PID 1 over its private socket in /run.
type Systemd struct {
	cfg     Config
	pid1    PID1
	Version string // "252", "" when systemctl --version did not say
	// sockets caches SocketsOf per unit: asked once, before the stop,
	// so the start after the pivot runs no query in the writers' outage.
	sockets map[string][]string
}

func (s *Systemd) Kind() Kind { return KindSystemd }

func (s *Systemd) Describe() string {
	name := "systemd"
	if s.Version != "" {
		name += " " + s.Version
	}
	return name + " (re-exec: " + s.ReexecMethod() + ")"
}

func (s *Systemd) ReexecMethod() string { return "systemctl daemon-reexec" }

// Reexec serializes PID 1's state and execs the systemd binary of PID 1's
// current root; systemctl returns when the new manager is back.
func (s *Systemd) Reexec(ctx context.Context) error {
	_, err := s.cfg.run(ctx, "systemctl", "daemon-reexec")
	return err
}

// ServiceOf reads /proc/PID/cgroup and maps the systemd hierarchy's path
// to its unit (see UnitOfCgroup), after containers and runit/s6 trees
// (see serviceOf).
func (s *Systemd) ServiceOf(pid int) (Service, bool) { return s.lookup().ServiceOf(pid) }

func (s *Systemd) lookup() Lookup {
	l := s.cfg.newLookup()
	return serviceLookup(func(pid int) (Service, bool) { return l.serviceOf(pid, s.unitOf) })
}

func (s *Systemd) unitOf(pid int) (Service, bool) {
	data, err := os.ReadFile(s.cfg.proc(strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return Service{}, false
	}
	p, ok := SystemdCgroup(data)
	if !ok {
		return Service{}, false
	}
	return UnitOfCgroup(p)
}

// SocketsOf lists the .socket units that start unit on demand
// (`systemctl show -p TriggeredBy --value UNIT`, systemd >= 230).
// Stopping only the service while such a socket listens is undone by the
// next connection, which starts the service again from whatever root
// PID 1 then has.
func (s *Systemd) SocketsOf(ctx context.Context, unit string) ([]string, error) {
	out, err := s.cfg.run(ctx, "systemctl", "show", "-p", "TriggeredBy", "--value", unit)
	if err != nil {
		return nil, fmt.Errorf("finding the sockets that start %s: %w", unit, err)
	}
	var socks []string
	for _, f := range strings.Fields(string(out)) {
		if strings.HasSuffix(f, ".socket") {
			socks = append(socks, f)
		}
	}
	return socks, nil
}

func checkRestartable(svc Service) error {
	if svc.Name == "" {
		return fmt.Errorf("no service named: %w", ErrNotRestartable)
	}
	if !svc.Restartable || svc.Kind == CommandLine {
		return fmt.Errorf("%s: %s: %w", svc.Name, svc.Why, ErrNotRestartable)
	}
	return nil
}

// unitsWithSockets is the service plus the sockets that trigger it, in one
// systemctl call so they form one transaction.
func (s *Systemd) unitsWithSockets(ctx context.Context, svc Service) ([]string, error) {
	if svc.Kind != ServiceUnit {
		return []string{svc.Name}, nil
	}
	socks, ok := s.sockets[svc.Name]
	if !ok {
		var err error
		if socks, err = s.SocketsOf(ctx, svc.Name); err != nil {
			return nil, err
		}
		if s.sockets == nil {
			s.sockets = map[string][]string{}
		}
		s.sockets[svc.Name] = socks
	}
	return append(socks[:len(socks):len(socks)], svc.Name), nil
}

// Stop stops the unit and the sockets that would start it again.
func (s *Systemd) Stop(ctx context.Context, svc Service) error {
	if ok, err := s.cfg.supervisedAction(ctx, s, svc, "stop"); ok {
		return err
	}
	if err := checkRestartable(svc); err != nil {
		return err
	}
	units, err := s.unitsWithSockets(ctx, svc)
	if err != nil {
		return err
	}
	_, err = s.cfg.run(ctx, "systemctl", append([]string{"stop"}, units...)...)
	return err
}

// Start starts the unit and the sockets Stop stopped with it.
func (s *Systemd) Start(ctx context.Context, svc Service) error {
	if ok, err := s.cfg.supervisedAction(ctx, s, svc, "start"); ok {
		return err
	}
	if err := checkRestartable(svc); err != nil {
		return err
	}
	units, err := s.unitsWithSockets(ctx, svc)
	if err != nil {
		return err
	}
	_, err = s.cfg.run(ctx, "systemctl", append([]string{"start"}, units...)...)
	return err
}

// Restart restarts the unit alone: its sockets are held open by PID 1 and
// carry over.
func (s *Systemd) Restart(ctx context.Context, svc Service) error {
	if ok, err := s.cfg.supervisedAction(ctx, s, svc, "restart"); ok {
		return err
	}
	if err := checkRestartable(svc); err != nil {
		return err
	}
	_, err := s.cfg.run(ctx, "systemctl", "restart", svc.Name)
	return err
}

// Running asks `systemctl is-active`; it exits non-zero for every state
// but active, so the state word decides, not the status.
func (s *Systemd) Running(ctx context.Context, svc Service) (bool, error) {
	if ok, running, err := s.cfg.supervisedRunning(ctx, svc); ok {
		return running, err
	}
	out, err := s.cfg.run(ctx, "systemctl", "is-active", svc.Name)
	switch state := strings.TrimSpace(string(out)); state {
	case "active", "reloading", "activating", "deactivating", "refreshing":
		return true, nil
	case "inactive", "failed", "maintenance", "unknown":
		return false, nil
	default:
		if err == nil {
			err = fmt.Errorf("systemctl is-active %s: unexpected state %q", svc.Name, state)
		}
		return false, err
	}
}

// JournaldRelinquish makes journald stop writing to /var/log/journal and
// log to /run/log/journal instead, so it holds no writable file on the
// root being made read-only (`journalctl --relinquish-var`, systemd >= 243).
func JournaldRelinquish(ctx context.Context, run Runner) error {
	if run == nil {
		run = ExecRunner
	}
	if _, err := run(ctx, "journalctl", "--relinquish-var"); err != nil {
		return fmt.Errorf("moving journald off /var (systemd >= 243 needed): %w", err)
	}
	return nil
}

// JournaldFlush makes journald go back to /var/log/journal (on the new
// root) and move what it kept in /run there (`journalctl --flush`).
func JournaldFlush(ctx context.Context, run Runner) error {
	if run == nil {
		run = ExecRunner
	}
	if _, err := run(ctx, "journalctl", "--flush"); err != nil {
		return fmt.Errorf("moving journald back to /var: %w", err)
	}
	return nil
}

// EngineUnit is the transient scope the swap engine runs in on systemd.
const EngineUnit = "rootswap-engine.scope"

// EngineWrapper is the argv prefix that starts the swap engine in its own
// transient scope (append the engine's argv). systemd-run registers the
// scope, moves itself into it and then execs the engine, so nothing of the
// root stays running.
//
// Why: Debian's ssh.service has KillMode=process, and without pam_systemd
// every SSH session, and anything started from one (even setsid'ed), sits
// in ssh.service's cgroup. The engine restarts ssh.service and stops
// services by cgroup; in its own scope neither touches it, and ServiceOf
// on the engine answers "transient scope", never "ssh.service".
// --collect unloads the scope even if the engine fails, so the next run
// can take the same name.
func EngineWrapper() []string {
	return []string{
		"systemd-run", "--scope", "--quiet", "--collect",
		"--unit=" + EngineUnit,
		"--description=rootswap engine (root filesystem swap)",
		"--",
	}
}
