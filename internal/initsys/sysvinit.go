package initsys

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// SysV is sysvinit as PID 1 with /etc/init.d scripts as services.
type SysV struct {
	cfg  Config
	pid1 PID1
	// FIFO is the control FIFO Detect found ("/run/initctl" or
	// "/dev/initctl"); empty if none was there.
	FIFO string
}

func (s *SysV) Kind() Kind { return KindSysvinit }

func (s *SysV) Describe() string { return "sysvinit (re-exec: " + s.ReexecMethod() + ")" }

func (s *SysV) ReexecMethod() string {
	if s.FIFO == "" {
		return "telinit u, but neither /run/initctl nor /dev/initctl is a FIFO: init is not listening"
	}
	return "telinit u through " + s.FIFO
}

// Reexec writes `telinit u` (the init_request for runlevel 'u') to init's
// FIFO: /run/initctl, else /dev/initctl. sysvinit then execs /sbin/init of
// its current root with its state passed along, keeping PID 1.
func (s *SysV) Reexec(ctx context.Context) error {
	req := InitRequest('u', telinitSleeptime)
	var errs []error
	for _, p := range []string{"/run/initctl", "/dev/initctl"} {
		err := writeFIFO(s.cfg.path(p), req)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("sending telinit u to init: %w", errors.Join(errs...))
}

// ServiceOf finds the /etc/init.d script that owns pid or its nearest
// parent, by the pidfile or program the script's text names or by a
// pidfile named after it (see scriptService), after containers and
// runit/s6 trees (see serviceOf).
func (s *SysV) ServiceOf(pid int) (Service, bool) { return s.lookup().ServiceOf(pid) }

func (s *SysV) lookup() Lookup {
	l := s.cfg.newLookup()
	return serviceLookup(func(pid int) (Service, bool) {
		return l.serviceOf(pid, func(p int) (Service, bool) { return l.scriptService(p, InitDScript) })
	})
}

func (s *SysV) script(ctx context.Context, svc Service, action string) error {
	if ok, err := s.cfg.supervisedAction(ctx, s, svc, action); ok {
		return err
	}
	if err := checkRestartable(svc); err != nil {
		return err
	}
	if strings.Contains(svc.Name, "/") {
		return fmt.Errorf("init script name %q has a slash", svc.Name)
	}
	_, err := s.cfg.run(ctx, "/etc/init.d/"+svc.Name, action)
	return err
}

// Stop, Start and Restart run /etc/init.d/NAME directly, with the clean
// environment service(8) would give it.
func (s *SysV) Stop(ctx context.Context, svc Service) error  { return s.script(ctx, svc, "stop") }
func (s *SysV) Start(ctx context.Context, svc Service) error { return s.script(ctx, svc, "start") }
func (s *SysV) Restart(ctx context.Context, svc Service) error {
	return s.script(ctx, svc, "restart")
}

// Running runs `/etc/init.d/NAME status` and reads the LSB exit status:
// 0 running; 1, 2, 3 not running (dead with pidfile, dead with lock, stopped).
func (s *SysV) Running(ctx context.Context, svc Service) (bool, error) {
	if ok, running, err := s.cfg.supervisedRunning(ctx, svc); ok {
		return running, err
	}
	_, err := s.cfg.run(ctx, "/etc/init.d/"+svc.Name, "status")
	switch exitCode(err) {
	case -1:
		if err == nil {
			return true, nil
		}
		return false, err
	case 1, 2, 3:
		return false, nil
	default:
		return false, err
	}
}

// OpenRC is OpenRC's services, with sysvinit (OnOpenRCInit false) or
// openrc-init (true) as PID 1.
type OpenRC struct {
	SysV
	OnOpenRCInit bool
}

// openRCInitFIFO is where openrc-init reads its commands (RC_SVCDIR/init.ctl).
const openRCInitFIFO = "/run/openrc/init.ctl"

func (o *OpenRC) Kind() Kind {
	if o.OnOpenRCInit {
		return KindOpenRCInit
	}
	return KindOpenRC
}

func (o *OpenRC) Describe() string {
	pid1 := "sysvinit"
	if o.OnOpenRCInit {
		pid1 = "openrc-init"
	}
	return "OpenRC on " + pid1 + " (re-exec: " + o.ReexecMethod() + ")"
}

func (o *OpenRC) ReexecMethod() string {
	if o.OnOpenRCInit {
		return "openrc-shutdown --reexec, written to " + openRCInitFIFO
	}
	return o.SysV.ReexecMethod()
}

// Reexec: on sysvinit as telinit u; on openrc-init the word "reexec"
// written to its FIFO, which is all `openrc-shutdown --reexec` does:
// openrc-init then execs itself by name ("reexec" as argument) through
// PATH in its current root, skipping the boot runlevels.
func (o *OpenRC) Reexec(ctx context.Context) error {
	if !o.OnOpenRCInit {
		return o.SysV.Reexec(ctx)
	}
	if err := writeFIFO(o.cfg.path(openRCInitFIFO), []byte("reexec")); err != nil {
		return fmt.Errorf("asking openrc-init to re-execute: %w", err)
	}
	return nil
}

// ServiceOf looks, after containers and runit/s6 trees (see serviceOf),
// at a supervise-daemon parent, then at OpenRC's start-stop-daemon
// records, then at the pidfile= and command= of the scripts and at
// pidfiles named after them (see scriptService).
func (o *OpenRC) ServiceOf(pid int) (Service, bool) { return o.lookup().ServiceOf(pid) }

func (o *OpenRC) lookup() Lookup {
	l := o.cfg.newLookup()
	return serviceLookup(func(pid int) (Service, bool) {
		return l.serviceOf(pid, func(p int) (Service, bool) { return o.ownServiceIn(l, p) })
	})
}

func (o *OpenRC) ownServiceIn(l *lookup, pid int) (Service, bool) {
	if svc, ok := l.superviseDaemonService(pid); ok {
		return svc, true
	}
	if svc, ok := l.openRCService(pid); ok {
		return svc, true
	}
	return l.scriptService(pid, OpenRCService)
}

// rcService runs rc-service NAME ACTION. Note that OpenRC stops (and on
// restart restarts) the services that need NAME along with it.
func (o *OpenRC) rcService(ctx context.Context, svc Service, action string) error {
	if ok, err := o.cfg.supervisedAction(ctx, o, svc, action); ok {
		return err
	}
	if err := checkRestartable(svc); err != nil {
		return err
	}
	_, err := o.cfg.run(ctx, "rc-service", svc.Name, action)
	return err
}

func (o *OpenRC) Stop(ctx context.Context, svc Service) error  { return o.rcService(ctx, svc, "stop") }
func (o *OpenRC) Start(ctx context.Context, svc Service) error { return o.rcService(ctx, svc, "start") }
func (o *OpenRC) Restart(ctx context.Context, svc Service) error {
	return o.rcService(ctx, svc, "restart")
}

// Running reads rc-service's status exit code: 0 started, 4 stopping and
// 8 starting still have processes; 3 stopped, 16 inactive, 32 crashed do
// not.
func (o *OpenRC) Running(ctx context.Context, svc Service) (bool, error) {
	if ok, running, err := o.cfg.supervisedRunning(ctx, svc); ok {
		return running, err
	}
	_, err := o.cfg.run(ctx, "rc-service", svc.Name, "status")
	switch exitCode(err) {
	case -1:
		if err == nil {
			return true, nil
		}
		return false, err
	case 4, 8:
		return true, nil
	case 3, 16, 32:
		return false, nil
	default:
		return false, err
	}
}
