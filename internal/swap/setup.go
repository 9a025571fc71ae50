package swap

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/mountops"
)

// DefaultOptions fills in the places.
func DefaultOptions(target string) Options {
	return Options{Target: target, NewRoot: DefaultNewRoot, PutOld: DefaultPutOld, EngineDir: DefaultEngineDir}
}

// NewRuntime is the live system's runtime.
func NewRuntime(ctx context.Context, procRoot, sysRoot string, out io.Writer) (*Runtime, error) {
	sys, err := initsys.Config{ProcRoot: procRoot}.Detect(ctx)
	if err != nil {
		return nil, err
	}
	return &Runtime{
		ProcRoot:    procRoot,
		SysRoot:     sysRoot,
		Out:         out,
		Mounter:     mountops.System{},
		Init:        sys,
		Command:     RealCommand,
		Self:        os.Getpid(),
		Session:     map[int]bool{},
		Now:         time.Now,
		ReleaseWait: 5 * time.Minute,
	}, nil
}

// Plan runs the preflight and builds the steps; the same call serves plan
// (which prints them) and run (which executes them).
func Plan(ctx context.Context, rt *Runtime, opts Options, force bool) (*Report, []Step, *State, error) {
	rt.NoBPF = opts.NoBPF
	r, err := Preflight(ctx, rt, opts, force, rt.Self)
	if err != nil {
		return nil, nil, nil, err
	}
	for pid := range Ancestors(rt.ProcRoot, rt.Self) {
		rt.Session[pid] = true
	}
	rt.Report = r
	s := &State{Opts: opts, OldRoot: r.Root.Mount, InitKind: r.InitKind}
	return r, Steps(rt), s, nil
}
