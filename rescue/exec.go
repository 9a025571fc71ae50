package rescue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/rootswap/rootswap/internal/cli"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
)

// command is one rescue command (ls, mount, ...).
type command struct {
	usage string // "usage: ls [-lad] [FILE]..."
	run   func(c *call) error
}

// helpCommand and killCommand are what `help` and `kill` become (see
// callHandler); messages still say "kill".
const (
	helpCommand = "rescue-help"
	killCommand = "rescue-kill"
)

// commandTable lists the rescue commands. A function, not a variable, so
// no state is shared between shells.
func commandTable() map[string]command {
	m := map[string]command{}
	for _, group := range []map[string]command{fsCommands(), textCommands(), mountCommands(), procCommands(), powerCommands()} {
		for name, c := range group {
			m[name] = c
		}
	}
	return m
}

// execMiddleware dispatches a command name, in order, to an applet of the
// table, a rescue command, or a program found in PATH (next).
func (s *shell) execMiddleware(next interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return func(ctx context.Context, args []string) error {
		hc := interp.HandlerCtx(ctx)
		name := args[0]
		if name == "rootswap" {
			return s.runRootswap(ctx, hc, args[1:])
		}
		if a, ok := cli.Lookup(s.env.Applets, name); ok {
			return s.runApplet(ctx, hc, a, args[1:])
		}
		if name == helpCommand {
			s.help(hc.Stdout)
			return nil
		}
		if name == killCommand {
			name = "kill"
		}
		if cmd, ok := s.commands[name]; ok {
			return s.runCommand(ctx, hc, name, cmd, args[1:])
		}
		if _, err := interp.LookPathDir(hc.Dir, hc.Env, name); err != nil {
			if strings.Contains(name, "/") {
				fmt.Fprintf(hc.Stderr, "sh: %s: %s\n", name, errText(err))
			} else {
				fmt.Fprintf(hc.Stderr, "sh: %s: command not found (help lists the built-in ones)\n", name)
			}
			return interp.ExitStatus(127)
		}
		return next(ctx, args)
	}
}

// runRootswap is `rootswap APPLET ARGS` inside the shell: the applet
// in-process, the way the procedure spells the commands.
func (s *shell) runRootswap(ctx context.Context, hc interp.HandlerContext, args []string) error {
	if len(args) == 0 || args[0] == "--list" {
		for _, a := range s.env.Applets {
			fmt.Fprintln(hc.Stdout, a.Name)
		}
		return nil
	}
	a, ok := cli.Lookup(s.env.Applets, args[0])
	if !ok {
		fmt.Fprintf(hc.Stderr, "rootswap: unknown applet %q (rootswap --list shows them)\n", args[0])
		return interp.ExitStatus(2)
	}
	return s.runApplet(ctx, hc, a, args[1:])
}

// runApplet runs an applet in-process with the interpreter's current
// streams and environment.
func (s *shell) runApplet(ctx context.Context, hc interp.HandlerContext, a cli.Applet, args []string) error {
	env := *s.env
	env.Stdin = stdinOf(hc)
	env.Stdout = hc.Stdout
	env.Stderr = hc.Stderr
	env.Getenv = func(key string) string {
		if v := hc.Env.Get(key); v.Exported {
			return v.String()
		}
		return ""
	}
	// Applets resolve relative paths against the process's directory;
	// when the shell is the process, follow its cd.
	if wd, err := os.Getwd(); s.opts.Chdir && err == nil && hc.Dir != "" && wd != hc.Dir {
		if err := os.Chdir(hc.Dir); err != nil {
			fmt.Fprintf(hc.Stderr, "%s: cd %s: %s\n", a.Name, hc.Dir, errText(err))
			return interp.ExitStatus(1)
		}
	}
	if code := cli.Run(ctx, &env, a, args); code != 0 {
		return interp.ExitStatus(uint8(code))
	}
	return nil
}

// stdinOf gives a command the interpreter's stdin, or an empty one.
func stdinOf(hc interp.HandlerContext) io.Reader {
	if hc.Stdin == nil {
		return strings.NewReader("")
	}
	return hc.Stdin
}

// help lists what the shell can run without any program on disk.
func (s *shell) help(w io.Writer) {
	fmt.Fprintf(w, "rescue shell: every command below runs inside this process, so it works with an empty PATH.\n\n")
	fmt.Fprintf(w, "applets (also as rootswap APPLET):\n")
	for _, a := range s.env.Applets {
		fmt.Fprintf(w, "  %-16s %s\n", a.Name, a.Summary)
	}
	fmt.Fprintf(w, "\ncommands (NAME -h for options):\n")
	var names []string
	for n := range s.commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %s\n", strings.TrimPrefix(firstLine(s.commands[n].usage), "usage: "))
	}
	fmt.Fprintf(w, "\nshell builtins: cd pwd echo printf read test [ exit export set unset alias type source eval trap ...\n")
	fmt.Fprintf(w, "other names are looked up in PATH.\n")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// call is one invocation of a rescue command.
type call struct {
	ctx    context.Context
	name   string
	args   []string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	dir    string // the shell's working directory
	vars   expand.Environ
	env    *cli.Env
	sh     *shell
	failed bool
}

// errUsage is returned by a command for bad invocations; the message is
// printed with the usage line and the status is 2.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usagef(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

func (s *shell) runCommand(ctx context.Context, hc interp.HandlerContext, name string, cmd command, args []string) error {
	c := &call{
		ctx: ctx, name: name, args: args,
		stdin: stdinOf(hc), stdout: hc.Stdout, stderr: hc.Stderr,
		dir: hc.Dir, vars: hc.Env, env: s.env, sh: s,
	}
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--help" { // -h is an option of df and free
			fmt.Fprint(c.stdout, cmd.usage)
			return nil
		}
	}
	err := cmd.run(c)
	var ue errUsage
	var code interp.ExitStatus
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "%s: %s\n%s\n", name, ue.msg, firstLine(cmd.usage))
		return interp.ExitStatus(2)
	case errors.As(err, &code):
		return code
	case err != nil:
		fmt.Fprintf(c.stderr, "%s: %s\n", name, errText(err))
		return interp.ExitStatus(1)
	case c.failed:
		return interp.ExitStatus(1)
	}
	return nil
}

// path resolves an operand against the shell's working directory.
func (c *call) path(p string) string {
	if filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

// getenv reads a shell variable.
func (c *call) getenv(key string) string {
	if c.vars == nil {
		return ""
	}
	return c.vars.Get(key).String()
}

// fail reports a problem with one operand and carries on with the rest;
// the command then exits 1.
func (c *call) fail(operand string, err error) {
	fmt.Fprintf(c.stderr, "%s: %s: %s\n", c.name, operand, errText(err))
	c.failed = true
}

// failf reports a problem in words and marks the command failed.
func (c *call) failf(format string, args ...any) {
	fmt.Fprintf(c.stderr, "%s: %s\n", c.name, fmt.Sprintf(format, args...))
	c.failed = true
}

// errText is err without the Go wrapping that repeats the operand: the
// errno's own words ("no such file or directory") where there is one.
func errText(err error) string {
	var pe *os.PathError
	var le *os.LinkError
	var se *os.SyscallError
	switch {
	case errors.As(err, &pe) && pe.Err != nil:
		return errText(pe.Err)
	case errors.As(err, &le) && le.Err != nil:
		return errText(le.Err)
	case errors.As(err, &se) && se.Err != nil:
		return errText(se.Err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && err == error(errno) {
		return errno.Error()
	}
	return err.Error()
}

// opts is the result of getopt: which single-letter options were given
// and the values of those that take one.
type opts struct {
	set  map[byte]bool
	vals map[byte]string
}

func (o opts) has(c byte) bool { return o.set[c] }

// getopt parses POSIX short options: letters in flags are switches,
// letters in valued take an argument (-t ext4 or -text4). Options may
// be grouped (-rf) and, GNU style, follow operands unless stopAtOperand;
// "--" ends them. A lone "-" is an operand.
func getopt(args []string, flags, valued string, stopAtOperand bool) (opts, []string, error) {
	o := opts{set: map[byte]bool{}, vals: map[byte]string{}}
	var operands []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return o, append(operands, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			if stopAtOperand {
				return o, append(operands, args[i:]...), nil
			}
			operands = append(operands, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			ch := a[j]
			switch {
			case strings.IndexByte(flags, ch) >= 0:
				o.set[ch] = true
			case strings.IndexByte(valued, ch) >= 0:
				o.set[ch] = true
				if j+1 < len(a) {
					o.vals[ch] = a[j+1:]
				} else if i+1 < len(args) {
					i++
					o.vals[ch] = args[i]
				} else {
					return o, nil, usagef("option -%c needs a value", ch)
				}
				j = len(a)
			default:
				return o, nil, usagef("unknown option -%c", ch)
			}
		}
	}
	return o, operands, nil
}

// exitStatus ends a command with a specific status and no message.
func exitStatus(n uint8) error { return interp.ExitStatus(n) }
