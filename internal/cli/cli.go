// Package cli holds what every applet shares: the environment it runs in,
// the applet descriptor, and the errors the dispatcher maps to exit codes.
//
// It lives apart from applets/ so that the rescue shell can be handed the
// applet table without importing the registry (which lists the shell itself).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Env is everything an applet may touch of the outside world that tests
// want to replace: the standard streams, the /proc and /sys roots, a clock.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// ProcRoot is where procfs is read from ("/proc" on a live system;
	// a fixture tree in tests).
	ProcRoot string
	// SysRoot is where sysfs is read from ("/sys" on a live system).
	SysRoot string

	// Now is the clock; journal timestamps and progress use it.
	Now func() time.Time

	// Getenv reads the environment (os.Getenv on a live system).
	Getenv func(string) string

	// Self is the path of the running rootswap binary (what run copies
	// into tmpfs). Empty means os.Executable().
	Self string

	// Applets is the applet table, handed down so that applets which run
	// other applets (the rescue shell, the orchestrator) need not import
	// the registry.
	Applets []Applet
}

// OSEnv is the Env of a real process.
func OSEnv() *Env {
	return &Env{
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		ProcRoot: "/proc",
		SysRoot:  "/sys",
		Now:      time.Now,
		Getenv:   os.Getenv,
	}
}

// Proc joins path elements under the /proc root.
func (e *Env) Proc(elem ...string) string {
	return e.ProcRoot + "/" + strings.Join(elem, "/")
}

// Sys joins path elements under the /sys root.
func (e *Env) Sys(elem ...string) string {
	return e.SysRoot + "/" + strings.Join(elem, "/")
}

// Printf writes to the applet's stdout.
func (e *Env) Printf(format string, args ...any) {
	fmt.Fprintf(e.Stdout, format, args...)
}

// Errorf writes to the applet's stderr.
func (e *Env) Errorf(format string, args ...any) {
	fmt.Fprintf(e.Stderr, format, args...)
}

// Applet is one entry of the command table.
type Applet struct {
	Name    string
	Aliases []string // other names it answers to as a symlink ("rescue" for sh)
	Summary string   // one line, for --help and README
	Usage   string   // the usage line(s) and option text, printed by -h
	Main    func(ctx context.Context, env *Env, args []string) error
}

// ErrUsage marks bad invocations; the dispatcher exits 2 and prints usage.
var ErrUsage = errors.New("usage")

// UsageError returns an error wrapping ErrUsage with a one-line reason.
func UsageError(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrUsage)
}

// ExitCode is an error that carries a specific exit status and no further
// message: the applet has already said what it had to say (plan's 3,
// status's 4).
type ExitCode int

func (c ExitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// ErrHelp is returned when -h/--help was asked for; usage was printed and
// the dispatcher exits 0.
var ErrHelp = flag.ErrHelp

// FlagSet makes a flag set that reports to stderr and never exits, so an
// applet can run in-process inside the rescue shell.
func FlagSet(env *Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the dispatcher prints usage text itself
	return fs
}

// Parse parses args with fs, allowing flags after operands the way GNU
// tools do ("lsof / -p 1"); "--" ends option parsing. It returns the
// operands and turns flag errors into usage errors.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, ErrHelp
			}
			return nil, fmt.Errorf("%v: %w", err, ErrUsage)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return operands, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(operands, rest...), nil
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
}

// Run runs one applet with args (not including its name) and maps its
// error to an exit status: 0 ok or help, 2 usage, ExitCode as given,
// 1 otherwise with "rootswap NAME: reason" on stderr.
func Run(ctx context.Context, env *Env, a Applet, args []string) int {
	err := a.Main(ctx, env, args)
	var code ExitCode
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrHelp):
		fmt.Fprint(env.Stdout, a.Usage)
		return 0
	case errors.Is(err, ErrUsage):
		msg := strings.TrimSuffix(err.Error(), ": "+ErrUsage.Error())
		fmt.Fprintf(env.Stderr, "rootswap %s: %s\n", a.Name, msg)
		fmt.Fprintf(env.Stderr, "%s", firstLine(a.Usage))
		return 2
	case errors.As(err, &code):
		return int(code)
	default:
		fmt.Fprintf(env.Stderr, "rootswap %s: %v\n", a.Name, err)
		return 1
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i+1]
	}
	return s + "\n"
}

// StringList is a repeatable string flag (--stop a --stop b).
type StringList []string

func (l *StringList) String() string     { return strings.Join(*l, ",") }
func (l *StringList) Set(s string) error { *l = append(*l, s); return nil }

// Lookup finds an applet by name or alias.
func Lookup(table []Applet, name string) (Applet, bool) {
	for _, a := range table {
		if a.Name == name {
			return a, true
		}
		for _, alias := range a.Aliases {
			if alias == name {
				return a, true
			}
		}
	}
	return Applet{}, false
}
