package initsys

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"strings"
)

// PID1 is what /proc says about PID 1. Nothing here follows the exe link:
// its text is enough to name the binary, and stat'ing through it would
// touch the old root.
type PID1 struct {
	ExeText string   // readlink /proc/1/exe, " (deleted)" kept; "" if unreadable
	ExeErr  error    // why ExeText is empty
	Comm    string   // /proc/1/comm
	Argv    []string // /proc/1/cmdline
}

// Exe is the link text without the " (deleted)" the kernel appends when
// the binary was unlinked or replaced.
func (p PID1) Exe() string { return strings.TrimSuffix(p.ExeText, " (deleted)") }

// Argv0 is the name PID 1 was started as ("/sbin/init"), "" if unknown.
func (p PID1) Argv0() string {
	if len(p.Argv) == 0 {
		return ""
	}
	return p.Argv[0]
}

// ReadPID1 reads PID 1's exe link text, comm and cmdline under procRoot.
func ReadPID1(procRoot string) (PID1, error) {
	c := Config{ProcRoot: procRoot}
	var p PID1
	comm, err := os.ReadFile(c.proc("1", "comm"))
	if err != nil {
		return p, fmt.Errorf("reading PID 1's name: %w", err)
	}
	p.Comm = strings.TrimSpace(string(comm))
	p.ExeText, p.ExeErr = os.Readlink(c.proc("1", "exe"))
	if cmdline, err := os.ReadFile(c.proc("1", "cmdline")); err == nil {
		for _, a := range bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0}) {
			if len(a) > 0 {
				p.Argv = append(p.Argv, string(a))
			}
		}
	}
	return p, nil
}

// Detect decides which init system runs as PID 1 on the live system
// (procRoot is usually "/proc"); see Config.Detect.
func Detect(procRoot string) (System, error) {
	return Config{ProcRoot: procRoot}.Detect(context.Background())
}

// Detect decides which init system runs as PID 1, from the names PID 1
// goes by (exe link text, comm, argv[0]) and the traces each init leaves
// under Root:
//
//	systemd      exe ".../systemd" or comm "systemd" (/run/systemd/system confirms)
//	openrc-init  exe or comm "openrc-init"
//	busybox      exe link text ends in "busybox", or PID 1 is "init",
//	             Root/sbin/init is a symlink to busybox and no initctl FIFO exists
//	sysvinit     PID 1 is "init" otherwise; /run/initctl or /dev/initctl is its FIFO
//	openrc       sysvinit plus /run/openrc, /lib/rc or /lib64/rc
//
// Anything else (a container's PID 1, runit, s6) is KindUnknown, which
// cannot be re-executed and manages only the runit/s6 services it finds. The only command Detect
// runs is `systemctl --version`, for the version systemd's Describe shows.
func (c Config) Detect(ctx context.Context) (System, error) {
	p, err := ReadPID1(c.ProcRoot)
	if err != nil {
		return nil, err
	}
	if c.cache == nil {
		c.cache = newCache()
	}
	exe := path.Base(p.Exe())
	if p.Exe() == "" {
		exe = ""
	}
	argv0 := path.Base(p.Argv0())
	initctl := c.initctl()
	switch {
	case exe == "systemd" || p.Comm == "systemd":
		s := &Systemd{cfg: c, pid1: p}
		if out, err := c.run(ctx, "systemctl", "--version"); err == nil {
			s.Version = systemdVersion(out)
		}
		return s, nil
	case exe == "openrc-init" || p.Comm == "openrc-init":
		return &OpenRC{SysV: SysV{cfg: c, pid1: p}, OnOpenRCInit: true}, nil
	case exe == "busybox" || (exe == "" && argv0 == "busybox"):
		return &Busybox{cfg: c, pid1: p, Why: "PID 1's exe is " + p.ExeText}, nil
	case exe == "init" || p.Comm == "init" || argv0 == "init":
		if target, err := os.Readlink(c.path("/sbin/init")); err == nil &&
			path.Base(target) == "busybox" && initctl == "" && exe != "init" {
			return &Busybox{cfg: c, pid1: p, Why: "/sbin/init is a link to " + target + " and there is no initctl FIFO"}, nil
		}
		sv := SysV{cfg: c, pid1: p, FIFO: initctl}
		if c.openRCPresent() {
			return &OpenRC{SysV: sv}, nil
		}
		return &sv, nil
	}
	return &Unknown{cfg: c, pid1: p}, nil
}

// initctl is the sysvinit control FIFO under Root ("/run/initctl" for
// sysvinit >= 2.89, "/dev/initctl" before), "" if there is none.
func (c Config) initctl() string {
	for _, p := range []string{"/run/initctl", "/dev/initctl"} {
		if isFIFO(c.path(p)) {
			return p
		}
	}
	return ""
}

func (c Config) openRCPresent() bool {
	for _, p := range []string{"/run/openrc", "/lib/rc", "/lib64/rc"} {
		if exists(c.path(p)) {
			return true
		}
	}
	return false
}

// systemdVersion takes "252" from `systemctl --version`'s first line,
// "systemd 252 (252.39-1~deb12u1)".
func systemdVersion(out []byte) string {
	line, _, _ := strings.Cut(string(out), "\n")
	f := strings.Fields(line)
	if len(f) >= 2 && f[0] == "systemd" {
		return f[1]
	}
	return ""
}

// Unknown is a PID 1 this package does not know: it cannot be re-executed
// or asked about services.
type Unknown struct {
	cfg  Config
	pid1 PID1
}

func (u *Unknown) Kind() Kind { return KindUnknown }

func (u *Unknown) name() string {
	name := fmt.Sprintf("%q", u.pid1.Comm)
	switch {
	case u.pid1.ExeText != "":
		name += " (" + u.pid1.ExeText + ")"
	case u.pid1.Argv0() != "":
		name += " (started as " + u.pid1.Argv0() + ")"
	}
	return name
}

func (u *Unknown) Describe() string {
	return "unknown init " + u.name() + " (" + u.ReexecMethod() + ")"
}

func (u *Unknown) ReexecMethod() string {
	return "no re-exec: PID 1 is not systemd, sysvinit, openrc-init or busybox init"
}

func (u *Unknown) Reexec(ctx context.Context) error {
	return fmt.Errorf("PID 1 is %s, not an init rootswap knows how to re-execute: %w", u.name(), ErrNoReexec)
}

// ServiceOf finds only what runs under PID 1 without being its service:
// containers and runit/s6 trees (a container whose PID 1 is runsvdir or
// s6-svscan).
func (u *Unknown) ServiceOf(pid int) (Service, bool) { return u.lookup().ServiceOf(pid) }

func (u *Unknown) lookup() Lookup {
	l := u.cfg.newLookup()
	return serviceLookup(func(pid int) (Service, bool) { return l.serviceOf(pid, nil) })
}

func (u *Unknown) noManager() error {
	return fmt.Errorf("PID 1 is %s, which rootswap cannot ask to stop or start services: %w", u.name(), ErrNoServiceManager)
}

func (u *Unknown) act(ctx context.Context, svc Service, action string) error {
	if ok, err := u.cfg.supervisedAction(ctx, u, svc, action); ok {
		return err
	}
	return u.noManager()
}

func (u *Unknown) Stop(ctx context.Context, svc Service) error    { return u.act(ctx, svc, "stop") }
func (u *Unknown) Start(ctx context.Context, svc Service) error   { return u.act(ctx, svc, "start") }
func (u *Unknown) Restart(ctx context.Context, svc Service) error { return u.act(ctx, svc, "restart") }
func (u *Unknown) Running(ctx context.Context, svc Service) (bool, error) {
	if ok, running, err := u.cfg.supervisedRunning(ctx, svc); ok {
		return running, err
	}
	return false, u.noManager()
}
