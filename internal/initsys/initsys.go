// Package initsys puts one interface over the init systems a server may
// run as PID 1 (systemd, sysvinit, OpenRC on sysvinit or on openrc-init,
// busybox init with its rcS scripts): which one it is, how to re-execute
// it in place so it lets go of the old root, which service a process
// belongs to, and how to stop, start and restart that service. Services
// that run under PID 1's own (runit and s6 supervision trees, containers
// of docker, containerd and podman) are found and driven the same way.
//
// Everything it reads lives under two injectable roots (Config.ProcRoot and
// Config.Root) and every command it runs goes through Config.Run, so tests
// drive it with fixture trees and a fake runner that records argv.
package initsys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Kind names an init system.
type Kind string

// The init systems Detect tells apart.
const (
	KindSystemd    Kind = "systemd"
	KindSysvinit   Kind = "sysvinit"
	KindOpenRC     Kind = "openrc"      // OpenRC services, sysvinit as PID 1
	KindOpenRCInit Kind = "openrc-init" // OpenRC services, openrc-init as PID 1
	KindBusybox    Kind = "busybox"
	KindUnknown    Kind = "unknown"
)

// Service kinds (Service.Kind).
const (
	ServiceUnit   = "service" // a systemd .service
	SocketUnit    = "socket"  // a systemd .socket
	ScopeUnit     = "scope"   // a systemd .scope: a login session, a container; not restartable
	InitDScript   = "init.d"  // an /etc/init.d script: sysvinit/LSB, or busybox rcS's S??name
	OpenRCService = "openrc"  // an OpenRC service (/etc/init.d script run by rc-service)
	InittabEntry  = "inittab" // a busybox init respawn line
)

// Service is what a process belongs to, as the init system sees it.
type Service struct {
	Name        string // "ssh.service", "ssh" (init.d / OpenRC script name), an inittab line
	Kind        string // one of the Service kinds above
	Restartable bool   // Stop/Start/Restart make sense for it
	Why         string // how it was found, or why it is not restartable
	// LiveRestore: the service is dockerd (or runs containers under it)
	// with live-restore on, so stopping or restarting it leaves its
	// containers running on the root they started from (see Caveat).
	LiveRestore bool
	// Tree: the service is a runit or s6 supervision tree, stopped and
	// started as a whole (tree.go).
	Tree Tree
	// Manual is what the admin runs to restart it by hand, when rootswap
	// cannot or did not ("" when the service manager's restart is it).
	Manual string
	// PID and StopSignal: a CommandLine service is process PID, stopped
	// with StopSignal and started again by its command line.
	PID        int
	StopSignal syscall.Signal
}

func (s Service) String() string {
	if s.Why == "" {
		return s.Name
	}
	return s.Name + " (" + s.Why + ")"
}

// System is the init system running as PID 1.
type System interface {
	Kind() Kind
	// Describe is the one line plan prints:
	// "systemd 252 (re-exec: systemctl daemon-reexec)".
	Describe() string
	// ReexecMethod says how Reexec re-executes PID 1, or why it cannot.
	ReexecMethod() string
	// Reexec asks PID 1 to re-execute itself in place (same PID, fresh
	// binary from its current root). It returns once the request is
	// delivered; whether PID 1 followed is for CheckPID1 to tell.
	Reexec(ctx context.Context) error
	// ServiceOf finds the service process pid belongs to.
	ServiceOf(pid int) (Service, bool)
	Stop(ctx context.Context, svc Service) error
	Start(ctx context.Context, svc Service) error
	Restart(ctx context.Context, svc Service) error
	// Running reports whether the service has processes now.
	Running(ctx context.Context, svc Service) (bool, error)
}

var (
	// ErrNoReexec: this PID 1 cannot be re-executed in place.
	ErrNoReexec = errors.New("init cannot be re-executed in place")
	// ErrNoServiceManager: there is no service manager to stop/start through.
	ErrNoServiceManager = errors.New("no service manager")
	// ErrNotRestartable: the service is of a kind that is not stopped or
	// restarted (a login session scope, PID 1's own scope).
	ErrNotRestartable = errors.New("not a restartable service")
)

// Runner runs a command and returns its combined output. A non-zero exit
// must come back as an error with an ExitCode() int method (as
// *exec.ExitError has), so callers can read LSB status codes.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// cleanEnv is the environment commands run with: like service(8), init
// scripts and systemctl see a fixed PATH and the C locale, not whatever
// the engine inherited, and their output stays parseable.
var cleanEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C", "LC_ALL=C", "TERM=dumb", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0",
}

// ExecRunner runs commands for real with a clean environment and no stdin.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = cleanEnv
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, &CommandError{Argv: append([]string{name}, args...), Output: out, Err: err}
	}
	return out, nil
}

// CommandError is a failed command: what ran, what it said, how it ended.
type CommandError struct {
	Argv   []string
	Output []byte
	Err    error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	if out := bytes.TrimSpace(e.Output); len(out) > 0 {
		msg += ": " + lastLine(string(out))
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// ExitCode is the command's exit status, -1 if it did not exit normally.
func (e *CommandError) ExitCode() int {
	var c interface{ ExitCode() int }
	if errors.As(e.Err, &c) {
		return c.ExitCode()
	}
	return -1
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// exitCode returns the exit status carried by err, or -1.
func exitCode(err error) int {
	var c interface{ ExitCode() int }
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return -1
}

// Config says where Detect and the Systems look and how they run commands.
type Config struct {
	// ProcRoot is where procfs is read ("/proc" when empty).
	ProcRoot string
	// Root prefixes every other path read: /run, /var/run, /etc, /lib,
	// /sbin, /dev ("" or "/" on a live system, a fixture tree in tests).
	// Commands always run with the real paths (/etc/init.d/NAME), since
	// they run in the process's own root.
	Root string
	// Run runs commands (ExecRunner when nil).
	Run Runner

	// cache keeps the parsed init scripts between lookups (index.go);
	// Detect sets it, a Config without one reads them every time.
	cache *cache
}

func (c Config) proc(elem ...string) string {
	p := c.ProcRoot
	if p == "" {
		p = "/proc"
	}
	return filepath.Join(append([]string{p}, elem...)...)
}

func (c Config) path(p string) string { return filepath.Join(c.Root, p) }

func (c Config) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if c.Run == nil {
		return ExecRunner(ctx, name, args...)
	}
	return c.Run(ctx, name, args...)
}

// isFIFO reports whether p is a named pipe, without following a symlink.
func isFIFO(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
