package fstools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Runner runs the distribution's filesystem tools, their output (and
// progress: e2fsck -C0, resize2fs -p) passed straight through.
type Runner struct {
	Stdout, Stderr io.Writer
	// Getenv reads PATH, where the tools are looked up; nil means
	// os.Getenv. The tools run with that same PATH (xfs_admin is a
	// script that calls xfs_db).
	Getenv func(string) string
	// Echo, when set, is told each command line before it runs.
	Echo io.Writer
}

// Package names the Debian package that ships tool ("" if unknown), for
// the "not found" error and the swap's preflight.
func Package(tool string) string {
	switch tool {
	case "e2fsck", "resize2fs", "tune2fs", "dumpe2fs":
		return "e2fsprogs"
	case "xfs_repair", "xfs_growfs", "xfs_admin", "xfs_db":
		return "xfsprogs"
	case "btrfs", "btrfstune":
		return "btrfs-progs"
	}
	return ""
}

// defaultPath is used when PATH is empty: the tools live in sbin, which
// a minimal environment (an SSH command, a rescue shell) may lack.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// MissingToolError says a tool is not installed and which package has it.
type MissingToolError struct {
	Tool, Package, Path string
}

func (e *MissingToolError) Error() string {
	if e.Package == "" {
		return fmt.Sprintf("%s not found in PATH (%s)", e.Tool, e.Path)
	}
	return fmt.Sprintf("%s not found in PATH (%s): install %s", e.Tool, e.Path, e.Package)
}

// ToolError is a tool that ran and exited non-zero (or was killed).
type ToolError struct {
	Args    []string // the command line
	Code    int      // exit status; -1 when killed by a signal
	Meaning string   // the exit status in words
	// Fixed is true when the status means "problems were found and
	// corrected; the filesystem is consistent now" (e2fsck 1 and 2,
	// xfs_repair -e 4): callers that only need a clean filesystem go on.
	Fixed bool
	Err   error // the *exec.ExitError
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("%s: exit status %d: %s", strings.Join(e.Args, " "), e.Code, e.Meaning)
}

func (e *ToolError) Unwrap() error { return e.Err }

// ExitStatus is the exit status carried by err: 0 for nil, the tool's
// status for a *ToolError, -1 otherwise (the tool did not run).
func ExitStatus(err error) int {
	var te *ToolError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &te):
		return te.Code
	}
	return -1
}

func (r Runner) path() string {
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if p := getenv("PATH"); p != "" {
		return p
	}
	return defaultPath
}

// LookPath finds tool in the runner's PATH, or says which package to
// install.
func (r Runner) LookPath(tool string) (string, error) {
	path := r.path()
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, tool)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &MissingToolError{Tool: tool, Package: Package(tool), Path: path}
}

// Require looks the tools up without running them, so that a missing one
// is reported before anything was done.
func (r Runner) Require(tools ...string) error {
	var errs []error
	for _, t := range tools {
		if _, err := r.LookPath(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// meaningFunc explains an exit status and says whether it means "fixed".
type meaningFunc func(code int) (meaning string, fixed bool)

// run runs tool with args. On cancellation the tool gets SIGINT first
// (e2fsck and xfs_repair stop cleanly on it), SIGKILL 30 s later.
func (r Runner) run(ctx context.Context, explain meaningFunc, tool string, args ...string) error {
	bin, err := r.LookPath(tool)
	if err != nil {
		return err
	}
	argv := append([]string{tool}, args...)
	if r.Echo != nil {
		fmt.Fprintf(r.Echo, "+ %s\n", strings.Join(argv, " "))
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Args = argv
	cmd.Stdout, cmd.Stderr = r.Stdout, r.Stderr
	cmd.Env = append(os.Environ(), "PATH="+r.path())
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			return fmt.Errorf("running %s: %w", tool, err)
		}
		return nil
	}
	te := &ToolError{Args: argv, Code: ee.ExitCode(), Err: ee}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		te.Meaning = "killed by signal " + ws.Signal().String()
	} else {
		te.Meaning, te.Fixed = explain(te.Code)
	}
	if ctx.Err() != nil {
		te.Meaning += " (interrupted: " + ctx.Err().Error() + ")"
	}
	return te
}

// failed is the meaning of a tool whose only documented failure status
// is "not zero".
func failed(code int) (string, bool) {
	return "failed (its messages above say why)", false
}
