package swap

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/lifeline"
	"github.com/rootswap/rootswap/internal/mountops"
)

// DefaultOptions fills in the places and the defaults of the flags.
func DefaultOptions(target string) Options {
	return Options{
		Target: target, NewRoot: DefaultNewRoot, PutOld: DefaultPutOld, EngineDir: DefaultEngineDir,
		ConfirmTimeout: DefaultConfirmTimeout, ReleaseTimeout: DefaultReleaseTimeout, MaxRounds: DefaultMaxRounds,
		Lifeline: Lifeline{Port: lifeline.DefaultPort},
		Check:    CheckAuto,
	}
}

// NewRuntime is the live system's runtime.
func NewRuntime(ctx context.Context, procRoot, sysRoot string, out io.Writer) (*Runtime, error) {
	sys, err := initsys.Config{ProcRoot: procRoot}.Detect(ctx)
	if err != nil {
		return nil, err
	}
	return &Runtime{
		ProcRoot: procRoot,
		SysRoot:  sysRoot,
		Out:      out,
		Mounter:  mountops.System{},
		Init:     sys,
		Command:  RealCommand,
		Self:     os.Getpid(),
		Session:  map[int]bool{},
		Now:      time.Now,
	}, nil
}

// Plan runs the preflight and builds the steps; the same call, with the
// same Options, serves plan (which prints them) and run (which executes
// them): a swap plan refuses is a swap run refuses.
func Plan(ctx context.Context, rt *Runtime, opts Options) (*Report, []Step, *State, error) {
	rt.NoBPF = opts.NoBPF
	r, err := Preflight(ctx, rt, opts, opts.Force, rt.Self)
	if err != nil {
		return nil, nil, nil, err
	}
	r.Lifeline = checkLifeline(ctx, r, opts.Lifeline)
	for pid := range Ancestors(rt.ProcRoot, rt.Self) {
		rt.Session[pid] = true
	}
	rt.Report = r
	s := &State{Opts: opts, OldRoot: r.Root.Mount, InitKind: r.InitKind}
	s.Opts.Mkfs = r.Mkfs // the type --copy files alone meant
	return r, Steps(rt), s, nil
}
