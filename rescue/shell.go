// Package rescue is the rescue shell: a POSIX-ish shell (the mvdan.cc/sh
// interpreter) whose commands are the rootswap applets and a set of basic
// tools (ls, cp, mount, ps, ...) that all run in-process, so it keeps
// working when neither root filesystem has a usable /bin.
//
// The shell is handed the applet table (cli.Env.Applets) instead of
// importing the registry: the registry lists the shell itself.
package rescue

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rootswap/rootswap/internal/cli"
	"golang.org/x/sys/unix"
	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// Options tune the shell for its caller.
type Options struct {
	// Prompt returns the interactive prompt; nil means "rescue# ". The
	// lifeline uses it to show the confirm countdown.
	Prompt func() string

	// Interactive forces the interactive loop (line editor, history,
	// prompt) even when stdin is not a terminal, e.g. an SSH channel.
	Interactive bool

	// Environ is the shell's initial environment ("K=V"); nil means
	// os.Environ().
	Environ []string

	// Dir is the initial working directory; empty means the process's.
	Dir string

	// Chdir makes the process follow the shell's cd before each applet, so
	// that applets resolve relative paths like the shell does. Only for a
	// shell that is the whole process (the sh applet); the chdir is
	// process-wide.
	Chdir bool

	// reboot stands in for reboot(2) in tests, which must not restart the
	// machine they run on.
	reboot func(cmd int) error
}

const defaultPrompt = "rescue# "

// shell is one running rescue shell.
type shell struct {
	env      *cli.Env
	opts     Options
	commands map[string]command
	reboot   func(cmd int) error
}

// Run runs the shell with args (not including the applet name):
//
//	-c CMD [NAME [ARG]...]   run CMD ($0 is NAME)
//	SCRIPT [ARG]...          run the file SCRIPT
//	(nothing)                interactive when stdin is a terminal, else read the script from stdin
//
// -e, -u, -x and -o NAME are passed to the interpreter like set does. A
// non-zero exit status comes back as cli.ExitCode.
func Run(ctx context.Context, env *cli.Env, opts Options, args []string) error {
	fs := cli.FlagSet(env, "sh")
	command := fs.String("c", "", "run `CMD` and exit")
	errexit := fs.Bool("e", false, "exit when a command fails")
	nounset := fs.Bool("u", false, "treat unset variables as an error")
	xtrace := fs.Bool("x", false, "print commands before running them")
	interactive := fs.Bool("i", false, "interactive even when stdin is not a terminal")
	// The shell's own options end at the first operand: what follows
	// belongs to the script (sh script.sh -x), so no cli.Parse here.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			return cli.ErrHelp
		}
		return cli.UsageError("%v", err)
	}
	hasC := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "c" {
			hasC = true
		}
	})
	operands := fs.Args()

	var params []string
	for _, o := range []struct {
		on   bool
		flag string
	}{{*errexit, "-e"}, {*nounset, "-u"}, {*xtrace, "-x"}} {
		if o.on {
			params = append(params, o.flag)
		}
	}

	s := &shell{env: env, opts: opts, reboot: opts.reboot}
	if s.reboot == nil {
		s.reboot = unix.Reboot
	}
	s.commands = commandTable()

	switch {
	case hasC:
		name := "sh"
		if len(operands) > 0 {
			name, operands = operands[0], operands[1:]
		}
		file, err := syntax.NewParser().Parse(strings.NewReader(*command), name)
		if err != nil {
			fmt.Fprintf(env.Stderr, "sh: %v\n", err)
			return cli.ExitCode(2)
		}
		return s.runFile(ctx, file, append(params, append([]string{"--"}, operands...)...))
	case len(operands) > 0:
		f, err := os.Open(s.abs(operands[0]))
		if err != nil {
			fmt.Fprintf(env.Stderr, "sh: %s: %s\n", operands[0], errText(err))
			return cli.ExitCode(127)
		}
		defer f.Close()
		file, err := syntax.NewParser().Parse(f, operands[0])
		if err != nil {
			fmt.Fprintf(env.Stderr, "sh: %v\n", err)
			return cli.ExitCode(2)
		}
		return s.runFile(ctx, file, append(params, append([]string{"--"}, operands[1:]...)...))
	case *interactive || opts.Interactive || isTerminal(env.Stdin):
		return s.interactive(ctx, params)
	default:
		// A script on stdin: read it whole, then run it with no stdin
		// left for the commands (sh < script).
		file, err := syntax.NewParser().Parse(env.Stdin, "sh")
		if err != nil {
			fmt.Fprintf(env.Stderr, "sh: %v\n", err)
			return cli.ExitCode(2)
		}
		return s.runFile(ctx, file, params)
	}
}

// abs resolves p against the shell's starting directory.
func (s *shell) abs(p string) string {
	if strings.HasPrefix(p, "/") || s.opts.Dir == "" {
		return p
	}
	return s.opts.Dir + "/" + p
}

// newRunner builds an interpreter wired to the applets and commands.
func (s *shell) newRunner(stdin io.Reader, params []string, interactive bool) (*interp.Runner, error) {
	environ := s.opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	ropts := []interp.RunnerOption{
		interp.StdIO(stdin, s.env.Stdout, s.env.Stderr),
		interp.Env(expand.ListEnviron(environ...)),
		interp.ExecHandlers(s.execMiddleware),
		interp.CallHandler(s.callHandler),
		interp.Interactive(interactive),
	}
	if s.opts.Dir != "" {
		ropts = append(ropts, interp.Dir(s.opts.Dir))
	}
	if len(params) > 0 {
		ropts = append(ropts, interp.Params(params...))
	}
	return interp.New(ropts...)
}

// runFile runs a whole script and turns its status into the applet's.
func (s *shell) runFile(ctx context.Context, file *syntax.File, params []string) error {
	r, err := s.newRunner(s.env.Stdin, params, false)
	if err != nil {
		return err
	}
	return exitError(r.Run(ctx, file))
}

// exitError maps the interpreter's result to the applet's: an exit
// status becomes cli.ExitCode, anything else is a real error.
func exitError(err error) error {
	if err == nil {
		return nil
	}
	if status, ok := interp.IsExitStatus(err); ok {
		if status == 0 {
			return nil
		}
		return cli.ExitCode(int(status))
	}
	return err
}

// callHandler routes two names the interpreter would keep for itself: a
// bare `help` lists this shell's commands and applets, and `kill` (a
// builtin the interpreter does not implement) becomes the rescue kill.
func (s *shell) callHandler(ctx context.Context, args []string) ([]string, error) {
	switch {
	case len(args) == 1 && args[0] == "help":
		return []string{helpCommand}, nil
	case args[0] == "kill":
		return append([]string{killCommand}, args[1:]...), nil
	}
	return args, nil
}

// isTerminal reports whether r is a terminal (a file whose termios can
// be read).
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok || f == nil {
		return false
	}
	// Fd puts the file in blocking mode; only do that to a character device.
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
