// Package telinitu is the telinit-u applet: re-execute PID 1 in place so
// that it runs the init binary of the current root and lets go of the old
// one, then check that it did.
package telinitu

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/initsys"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "re-execute PID 1 in place (systemd, sysvinit, OpenRC)"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap telinit-u [--timeout 30s]
Re-execute PID 1 in place, then wait until /proc/1/exe is an init binary
of the current root (same device and inode as /sbin/init,
/usr/lib/systemd/systemd, ... seen from here), polling every 100ms.
  systemd       systemctl daemon-reexec
  sysvinit      telinit u: the request is written to /run/initctl
                (else /dev/initctl) by rootswap itself
  openrc-init   "reexec" written to /run/openrc/init.ctl (openrc-shutdown --reexec)
  busybox init  refused: it cannot re-execute without killing every process
Exit status 0 when PID 1 runs from this root, 1 otherwise.

  --timeout D   how long to wait for PID 1 to come back (default 30s)
`

// pollInterval is how often /proc/1/exe is checked after the request.
const pollInterval = 100 * time.Millisecond

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "telinit-u")
	timeout := cli.DurationFlag(fs, "timeout", 30*time.Second)
	operands, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(operands) > 0 {
		return cli.UsageError("unexpected operand %q", operands[0])
	}
	if *timeout <= 0 {
		return cli.UsageError("--timeout must be positive, not %v", *timeout)
	}
	cfg := initsys.Config{ProcRoot: env.ProcRoot, Root: "/"}
	return reexec(ctx, env, cfg, *timeout, pollInterval)
}

// reexec detects PID 1, says what it will do, asks PID 1 to re-execute and
// polls until PID 1 runs from cfg.Root or timeout passes.
func reexec(ctx context.Context, env *cli.Env, cfg initsys.Config, timeout, poll time.Duration) error {
	sys, err := cfg.Detect(ctx)
	if err != nil {
		return err
	}
	switch sys.Kind() {
	case initsys.KindBusybox:
		return errors.New(initsys.BusyboxNoReexec)
	case initsys.KindUnknown:
		return fmt.Errorf("cannot re-execute PID 1: %s", sys.Describe())
	}
	before, err := initsys.CheckPID1(cfg.ProcRoot, cfg.Root)
	if err != nil {
		return err
	}
	env.Printf("PID 1: %s\n", sys.Describe())
	env.Printf("before: %s\n", before.Summary())
	if before.Current {
		env.Printf("note: PID 1 already runs this root's init; the check below cannot tell whether it re-executed\n")
	}
	env.Printf("re-executing PID 1: %s\n", sys.ReexecMethod())

	now := env.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	deadline := time.Now().Add(timeout)
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := sys.Reexec(rctx); err != nil {
		return fmt.Errorf("re-executing PID 1 (%s): %w", sys.ReexecMethod(), err)
	}

	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	var last initsys.PID1State
	for {
		// While PID 1 execs, /proc/1/exe may briefly fail to stat: keep
		// polling, and report the last error only at the deadline.
		st, err := initsys.CheckPID1(cfg.ProcRoot, cfg.Root)
		if err == nil && st.Current {
			env.Printf("after %.1fs: %s\n", now().Sub(start).Seconds(), st.Summary())
			return nil
		}
		if err == nil {
			last = st
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rctx.Done():
			if err != nil {
				return fmt.Errorf("PID 1 did not come back within %v: %w", timeout, err)
			}
			return fmt.Errorf("the re-exec request was delivered but after %v %s; the old root stays busy until PID 1 re-executes (try again, or reboot)",
				timeout, last.Summary())
		case <-ticker.C:
		}
	}
}
