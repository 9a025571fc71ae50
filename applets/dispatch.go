package applets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rootswap/rootswap/internal/cli"
)

// Version is stamped at link time (-X github.com/rootswap/rootswap/applets.Version=...).
var Version = "dev"

// Main dispatches argv the busybox way: by the name the binary was invoked
// as, else by its first argument. It returns the exit status.
func Main(argv []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := cli.OSEnv()
	env.Applets = Table()
	return Dispatch(ctx, env, argv)
}

// Dispatch is Main with the environment given (tests, the rescue shell).
func Dispatch(ctx context.Context, env *cli.Env, argv []string) int {
	if env.Applets == nil {
		env.Applets = Table()
	}
	name := ""
	if len(argv) > 0 {
		name = filepath.Base(argv[0])
	}
	if a, ok := Lookup(env.Applets, name); ok {
		return cli.Run(ctx, env, a, argv[1:])
	}
	args := argv
	if len(args) > 0 {
		args = args[1:]
	}
	if len(args) == 0 {
		help(env)
		return 2
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) > 1 {
			if a, ok := Lookup(env.Applets, args[1]); ok {
				fmt.Fprint(env.Stdout, a.Usage)
				return 0
			}
		}
		help(env)
		return 0
	case "--version", "version":
		fmt.Fprintf(env.Stdout, "rootswap %s\n", Version)
		return 0
	case "--list":
		for _, a := range env.Applets {
			fmt.Fprintln(env.Stdout, a.Name)
		}
		return 0
	case "--install":
		return install(env, args[1:])
	}
	a, ok := Lookup(env.Applets, args[0])
	if !ok {
		fmt.Fprintf(env.Stderr, "rootswap: unknown applet %q (rootswap --list shows them)\n", args[0])
		return 2
	}
	return cli.Run(ctx, env, a, args[1:])
}

// Lookup finds an applet by name or alias.
func Lookup(table []cli.Applet, name string) (cli.Applet, bool) { return cli.Lookup(table, name) }

func help(env *cli.Env) {
	fmt.Fprintf(env.Stdout, "rootswap %s: replace the root filesystem of a running Linux host.\n\n", Version)
	fmt.Fprintf(env.Stdout, "usage: rootswap APPLET [ARGS]...   or   APPLET [ARGS]... through a symlink\n")
	fmt.Fprintf(env.Stdout, "       rootswap --list | --version | --install DIR [--force]\n\napplets:\n")
	width := 0
	for _, a := range env.Applets {
		width = max(width, len(a.Name))
	}
	for _, a := range env.Applets {
		fmt.Fprintf(env.Stdout, "  %-*s  %s\n", width, a.Name, a.Summary)
	}
	fmt.Fprintf(env.Stdout, "\nrootswap APPLET -h shows an applet's options.\n")
}

// install makes DIR/NAME -> rootswap for every applet name and alias. It
// is idempotent and never replaces a file that is not already a link to
// this binary unless --force.
func install(env *cli.Env, args []string) int {
	force := false
	var dir string
	for _, a := range args {
		switch {
		case a == "--force" || a == "-f":
			force = true
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(env.Stderr, "rootswap --install: unknown option %s\nusage: rootswap --install DIR [--force]\n", a)
			return 2
		case dir == "":
			dir = a
		default:
			fmt.Fprintf(env.Stderr, "rootswap --install: one DIR only\nusage: rootswap --install DIR [--force]\n")
			return 2
		}
	}
	if dir == "" {
		fmt.Fprintf(env.Stderr, "rootswap --install: DIR missing\nusage: rootswap --install DIR [--force]\n")
		return 2
	}
	self := env.Self
	if self == "" {
		var err error
		if self, err = os.Executable(); err != nil {
			fmt.Fprintf(env.Stderr, "rootswap --install: %v\n", err)
			return 1
		}
	}
	self, err := filepath.Abs(self)
	if err != nil {
		fmt.Fprintf(env.Stderr, "rootswap --install: %v\n", err)
		return 1
	}
	if err := installLinks(env, dir, self, force); err != nil {
		fmt.Fprintf(env.Stderr, "rootswap --install: %v\n", err)
		return 1
	}
	return 0
}

func installLinks(env *cli.Env, dir, self string, force bool) error {
	if fi, err := os.Stat(dir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	var names []string
	for _, a := range env.Applets {
		names = append(names, a.Name)
		names = append(names, a.Aliases...)
	}
	// Check every name first so that a refusal changes nothing.
	var replace []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		target, err := os.Readlink(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err == nil && target == self:
		case force:
			replace = append(replace, p)
		case err == nil:
			return fmt.Errorf("%s is a link to %s, not to %s (--force replaces it)", p, target, self)
		default:
			return fmt.Errorf("%s exists and is not a link to %s (--force replaces it)", p, self)
		}
	}
	for _, p := range replace {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	made := 0
	for _, n := range names {
		p := filepath.Join(dir, n)
		if target, err := os.Readlink(p); err == nil && target == self {
			continue
		}
		if err := os.Symlink(self, p); err != nil {
			return err
		}
		made++
	}
	fmt.Fprintf(env.Stdout, "%d links in %s to %s (%d new)\n", len(names), dir, self, made)
	return nil
}
