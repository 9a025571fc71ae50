// Package run is the run applet: the swap itself. The foreground checks,
// asks, copies rootswap into a tmpfs and starts the engine from there,
// then follows its journal; the engine (run --engine DIR) does the steps
// in its own session, so a dropped SSH connection stops nothing.
package run

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rootswap/rootswap/internal/caplog"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/swap"
	"golang.org/x/sys/unix"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "swap / onto DEV: copy, pivot, move mounts, restart, roll back on failure"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap run --to DEV [--backup FILE.zst] [--stop SVC]... [--keep SVC]... [--kill] [--no-bpf] [--force] [--yes] [--confirm-timeout D] [--release-timeout D]

Swaps / onto DEV while the host runs: stops what writes to /, remounts it
read-only, copies it (used blocks, verified), checks and grows the copy,
pivots into it, moves every submount back, restarts sshd, udev, init,
gettys and every service still on the old root, and releases the old
root. Any failure before the release puts the old root back.
` + "`rootswap plan`" + ` with the same flags shows what this will do, and refuses
whatever run refuses.
  --yes                 do not ask before starting
` + swap.FlagsUsage

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "run")
	flags := swap.AddFlags(fs)
	yes := fs.Bool("yes", false, "")
	engine := fs.String("engine", "", "")
	rest, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.UsageError("unexpected argument %q", rest[0])
	}
	if *engine != "" {
		return runEngine(ctx, env, *engine)
	}
	opts, err := flags.Options(env)
	if err != nil {
		return err
	}
	return foreground(ctx, env, opts, *yes)
}

// engineConfig is what the foreground hands the engine.
type engineConfig struct {
	Opts       swap.Options `json:"opts"`
	Foreground int          `json:"foreground"`
	// Session is the foreground and its ancestors (the admin's shell and
	// sshd session): confirm refuses to come from them.
	Session []int `json:"session"`
}

func sessionPIDs(procRoot string) []int {
	var out []int
	for pid := range swap.Ancestors(procRoot, os.Getpid()) {
		out = append(out, pid)
	}
	return out
}

func foreground(ctx context.Context, env *cli.Env, opts swap.Options, yes bool) error {
	rt, err := swap.NewRuntime(ctx, env.ProcRoot, env.SysRoot, env.Stderr)
	if err != nil {
		return err
	}
	// The very preflight plan runs, lifeline keys included.
	report, steps, state, err := swap.Plan(ctx, rt, opts)
	if err != nil {
		return err
	}
	report.Print(env.Stdout, steps, state)
	if len(report.Blockers) > 0 {
		return cli.ExitCode(3)
	}
	fmt.Fprintf(env.Stdout, "\nThis overwrites %s (%s) and replaces / of this running host.\n", opts.Target, report.Target.Name)
	if !yes {
		fmt.Fprintf(env.Stdout, "Type yes to start: ")
		line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return fmt.Errorf("not confirmed; nothing was changed")
		}
	}
	dir := opts.EngineDir
	bin, err := swap.PrepareEngineDir(dir, swap.SelfExecutable(env.ProcRoot), report.MemNeeded)
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(engineConfig{Opts: opts, Foreground: os.Getpid(), Session: sessionPIDs(env.ProcRoot)})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600); err != nil {
		return err
	}
	j, err := journal.Create(swap.JournalPath(dir), env.Now)
	if err != nil {
		return err
	}
	j.Close()
	logPath := filepath.Join(dir, "engine.log")
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	// Opened before the engine starts: these descriptors keep working
	// while the paths change meaning across the pivot.
	logR, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer logR.Close()
	jR, err := os.Open(swap.JournalPath(dir))
	if err != nil {
		return err
	}
	defer jR.Close()

	argv := []string{bin, "run", "--engine", dir}
	if report.InitKind == string(initsys.KindSystemd) {
		// Its own scope: restarting ssh.service must not kill the engine.
		argv = append(initsys.EngineWrapper(), argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the engine %v: %w", argv, err)
	}
	logFile.Close()
	fmt.Fprintf(env.Stdout, "engine started (pid %d) from %s; journal %s\n", cmd.Process.Pid, bin, swap.JournalPath(dir))
	fmt.Fprintf(env.Stdout, "Ctrl-C or a dropped SSH session detaches only this view; `rootswap status` follows it from any session.\n\n")
	go cmd.Wait() // reap it if it ends while we follow

	s := swap.Follow(ctx, logR, jR, env.ProcRoot, env.Stdout)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintf(env.Stdout, "\ndetached; the engine goes on. rootswap status shows where it is.\n")
		return cli.ExitCode(4)
	case s.Phase == journal.Succeeded:
		fmt.Fprintf(env.Stdout, "\nsucceeded: / is %s\nnext: %s\n", opts.Target, swap.NextFinish)
		return nil
	case s.Phase == journal.RolledBack:
		return fmt.Errorf("rolled back: %s; / is the old root again, read-write, services restarted", s.Err)
	case s.Phase == journal.Failed:
		return fmt.Errorf("failed in %s: %s (rootswap status)", s.Step, s.Err)
	case s.Phase == journal.WaitingConfirm:
		fmt.Fprintf(env.Stdout, "\nthe new root runs. Log in AGAIN (new SSH session) and run `rootswap confirm`; without it the swap rolls back at %s.\n",
			s.Deadline.Local().Format(time.TimeOnly))
		return cli.ExitCode(4)
	default:
		fmt.Fprintf(env.Stdout, "\nthe pivot is done and sshd runs from the new root. This session still runs the old sshd and shell, which hold the old root.\n")
		if opts.ConfirmTimeout > 0 {
			fmt.Fprintf(env.Stdout, "Log in AGAIN (a new SSH session proves logins work) and run `rootswap confirm` within %s, else the swap rolls back by itself.\n", opts.ConfirmTimeout)
		}
		fmt.Fprintf(env.Stdout, "Then log out of this session: the engine releases the old root once it is gone (rootswap status).\nnext, once rootswap status says succeeded: "+swap.NextFinish+"\n")
		return nil
	}
}

func runEngine(ctx context.Context, env *cli.Env, dir string) error {
	// Descriptors inherited from the admin's shell (without close-on-exec)
	// could sit on the old root and keep it busy forever: drop them all.
	unix.CloseRange(3, ^uint(0), 0)
	// Signals that end the admin's session must not end the swap.
	signalIgnore()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return err
	}
	var cfg engineConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return err
	}
	if err := os.Chdir(dir); err != nil {
		return err
	}
	env = engineLog(env, dir)
	j, err := journal.OpenAppend(swap.JournalPath(dir), env.Now)
	if err != nil {
		return err
	}
	defer j.Close()
	if kmsg, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		defer kmsg.Close()
		j.MirrorTo(kmsg)
	}
	rt, err := swap.NewRuntime(context.WithoutCancel(ctx), env.ProcRoot, env.SysRoot, env.Stdout)
	if err != nil {
		return err
	}
	rt.Journal = j
	for pid := range swap.Ancestors(env.ProcRoot, cfg.Foreground) {
		rt.Session[pid] = true
	}
	jpath := swap.JournalPath(dir)
	rt.Confirmed = func() (bool, error) { return swap.ConfirmState(jpath) }
	for _, n := range swap.ProtectEngine(env.ProcRoot) {
		j.Add(journal.Record{Kind: journal.KindNote, Describe: n})
	}
	eng := &swap.Engine{Journal: j, Log: func(f string, a ...any) { fmt.Fprintf(env.Stdout, f+"\n", a...) }}
	eng.Inject = swap.InjectFromEnv(env.Getenv(swap.FaultEnv), func(n string) {
		j.Add(journal.Record{Kind: journal.KindNote, Describe: n})
	})
	eng.Journaled(rt, eng.Inject)
	rt.Fault = eng.Inject
	closeLifeline := func() {}
	if !cfg.Opts.Lifeline.Off {
		// Before the first step: the way back in must exist before anything
		// can go wrong.
		ll, err := startLifeline(context.WithoutCancel(ctx), env, cfg.Opts.Lifeline, j, jpath)
		if err != nil {
			j.Add(journal.Record{Kind: journal.KindDone, Result: string(journal.Failed), Err: "lifeline: " + err.Error()})
			return err
		}
		var once sync.Once
		closeLifeline = func() { once.Do(func() { ll.Close() }) }
		defer closeLifeline()
	}
	report, steps, state, err := swap.Plan(ctx, rt, cfg.Opts)
	if err != nil {
		j.Add(journal.Record{Kind: journal.KindDone, Result: string(journal.Failed), Err: "preflight: " + err.Error()})
		return err
	}
	if len(report.Blockers) > 0 {
		msg := report.Blockers[0].Problem
		j.Add(journal.Record{Kind: journal.KindDone, Result: string(journal.Failed), Err: "preflight (engine): " + msg})
		return fmt.Errorf("preflight: %s", msg)
	}
	res := eng.Run(context.WithoutCancel(ctx), steps, state)
	// The run is over (status says so from here): nothing is left that
	// the way back in would be needed for.
	closeLifeline()
	if err := swap.ArchiveJournal(swap.ArchiveDir, swap.JournalPath(dir), env.Now()); err != nil {
		fmt.Fprintf(env.Stdout, "journal not archived: %v\n", err)
	}
	fmt.Fprintf(env.Stdout, "result: %s\n", res.Phase)
	return nil
}

// engineLogShare is the part of the engine's tmpfs its log may hold.
const engineLogShare = 8

// engineLog is env writing to engine.log (the engine's stdout and
// stderr) within an eighth of the tmpfs, so that the journal beside it
// always has room.
func engineLog(env *cli.Env, dir string) *cli.Env {
	f, ok := env.Stdout.(*os.File)
	if !ok {
		return env
	}
	w := caplog.New(f, caplog.Share(dir, engineLogShare))
	e := *env
	e.Stdout, e.Stderr = w, w
	return &e
}

func signalIgnore() {
	for _, s := range []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE} {
		signalIgnoreOne(s)
	}
}
