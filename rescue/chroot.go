package rescue

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/rootswap/rootswap/internal/cli"
	"mvdan.cc/sh/v3/expand"
)

// defaultPath is searched inside DIR when the shell has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// chroot runs a command in a child whose root is DIR (the shell itself
// keeps its root). A command not found in DIR but known to this shell
// runs as this binary through DIR/proc/self/exe, so `chroot /mnt ls`
// works on a root with no /bin as long as proc is mounted there.
func chroot(c *call) error {
	_, operands, err := getopt(c.args, "", "", true)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing DIR")
	}
	dir := c.path(operands[0])
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("%s: %s", operands[0], errText(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", operands[0])
	}
	path, argv, err := chrootCommand(c, dir, operands[1:])
	if err != nil {
		c.failf("%v", err)
		return exitStatus(127)
	}
	cmd := exec.CommandContext(c.ctx, path)
	cmd.Args = argv
	cmd.Dir = "/" // inside the new root: the kernel chroots before chdir
	cmd.Env = exported(c.vars)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.stdin, c.stdout, c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitStatus(uint8(128 + int(ws.Signal())))
		}
		return exitStatus(uint8(ee.ExitCode()))
	}
	if err != nil {
		return fmt.Errorf("run %s in %s: %w", path, operands[0], err)
	}
	return nil
}

// chrootCommand finds what to execute inside dir: the named program in
// dir's PATH, else this binary for a command the rescue shell knows.
func chrootCommand(c *call, dir string, args []string) (string, []string, error) {
	self := "/proc/self/exe"
	haveSelf := exists(filepath.Join(dir, self))
	if len(args) == 0 {
		if exists(filepath.Join(dir, "/bin/sh")) {
			return "/bin/sh", []string{"/bin/sh"}, nil
		}
		if haveSelf {
			return self, []string{"sh"}, nil
		}
		return "", nil, fmt.Errorf("%s has no /bin/sh and no proc to run this shell from (mount -t proc proc %s/proc)", dir, dir)
	}
	name := args[0]
	if strings.Contains(name, "/") {
		if !exists(filepath.Join(dir, name)) {
			return "", nil, fmt.Errorf("%s: not found in %s", name, dir)
		}
		return name, args, nil
	}
	search := c.getenv("PATH")
	if search == "" {
		search = defaultPath
	}
	for _, p := range filepath.SplitList(search) {
		if !filepath.IsAbs(p) {
			continue
		}
		candidate := filepath.Join(p, name)
		if fi, err := os.Stat(filepath.Join(dir, candidate)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return candidate, args, nil
		}
	}
	_, known := c.sh.commands[name]
	if _, ok := cli.Lookup(c.env.Applets, name); ok || known || name == "rootswap" {
		if !haveSelf {
			return "", nil, fmt.Errorf("%s: not in %s's PATH, and no proc there to run it from this binary (mount -t proc proc %s/proc)", name, dir, dir)
		}
		// sh -c '"$0" "$@"' NAME ARGS: the rescue shell dispatches NAME.
		return self, append([]string{"sh", "-c", `"$0" "$@"`}, args...), nil
	}
	return "", nil, fmt.Errorf("%s: not found in %s (PATH=%s)", name, dir, search)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// exported lists the shell's exported variables for a child process.
func exported(env expand.Environ) []string {
	var list []string
	if env == nil {
		return list
	}
	env.Each(func(name string, vr expand.Variable) bool {
		if vr.Exported && vr.IsSet() {
			list = append(list, name+"="+vr.String())
		}
		return true
	})
	return list
}
