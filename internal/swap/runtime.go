package swap

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"

	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountops"
	"github.com/rootswap/rootswap/internal/procscan"
)

// Runtime is what the steps use to touch the machine. It is not saved in
// the journal; a new session builds a fresh one.
type Runtime struct {
	// ProcRoot is where procfs is right now. Between the pivot and the
	// move of the submounts it is /mnt/oldroot/proc: /proc then names the
	// new root's empty directory. The pivot and move steps update it.
	ProcRoot string
	SysRoot  string
	Out      io.Writer // progress for the admin (the engine's log)
	Mounter  mountops.Mounter
	Swap     Swapper // nil: the kernel's swapon(2)/swapoff(2)
	Init     initsys.System
	// Command runs a program and returns its combined output.
	Command func(ctx context.Context, name string, args ...string) ([]byte, error)
	// Self is the engine's pid and the pids it must never stop or
	// restart (the admin's session that started run).
	Self    int
	Session map[int]bool
	// Now is the clock.
	Now func() time.Time
	// Report is the preflight the steps were planned from.
	Report *Report
	// Confirmed is polled by the confirm wait: true when the admin
	// confirmed, an error when a rollback was asked for.
	Confirmed func() (bool, error)
	// Journal, when set, receives the wait record of the confirm step.
	Journal *journal.Journal
	// NoBPF makes every process scan read /proc (Options.NoBPF).
	NoBPF bool
	// ScanHolders, when set, replaces the process scan that finds the
	// holders of a filesystem (tests hand a fake).
	ScanHolders func(dev uint64) ([]Holder, error)
	// Sleep waits between polls; nil waits for real. Tests advance a
	// fake clock instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Kill signals a process; nil signals for real (tests hand a fake
	// that edits their /proc).
	Kill func(pid int, sig syscall.Signal) error
	// Relabel, when set, replaces fstools.RelabelOldRoot in relabel-old
	// (tests hand a fake).
	Relabel fstools.RelabelFunc
	// Fault, when set, is passed points inside steps (FaultEnv): the
	// root tests hang the engine there to kill it mid-way.
	Fault func(point string) error
}

// sleep waits d, or less when ctx ends.
func (rt *Runtime) sleep(ctx context.Context, d time.Duration) error {
	if rt.Sleep != nil {
		return rt.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Scan reads what the processes hold of the filesystem dev: the swap
// only ever asks about one, so the kernel's walks (when they run) skip
// every other file, and the engine works the same when they cannot run.
func (rt *Runtime) Scan(dev uint64) (*procscan.Snapshot, error) {
	return procscan.Scan(rt.ProcRoot, procscan.Options{Devs: []uint64{dev}, NoBPF: rt.NoBPF})
}

func (rt *Runtime) logf(format string, args ...any) {
	if rt.Out != nil {
		fmt.Fprintf(rt.Out, format+"\n", args...)
	}
}

// RealCommand runs programs for real.
func RealCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
