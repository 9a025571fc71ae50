// Package status is the status applet: where the current or last swap
// stands, rebuilt from its journal alone.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rootswap/rootswap/internal/bootguard"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/swap"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "state of the current or last swap, from its journal"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap status [--json] [--journal FILE]

The first line is one of: running STEP, waiting-confirm, succeeded,
failed STEP, rolled-back. Then the timeline, a file copy's progress
(ETA), and the two windows; while
release-oldroot waits, what still holds the old root (process, service,
what it holds) and what the engine does about it; if it stopped waiting,
the commands that finish the release by hand.
Exit status: 0 succeeded, 4 running or waiting for confirmation,
1 failed or rolled back. After finish, the last lines say what became of
the first boot of the new root: pending, confirmed, or fallen back to the
old root (with what the boot guard logged in /boot/rootswap).
  --json          the same as one JSON object
  --journal FILE  read this journal instead of the live or archived one
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "status")
	asJSON := fs.Bool("json", false, "")
	path := fs.String("journal", "", "")
	rest, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.UsageError("unexpected argument %q", rest[0])
	}
	// The first boot after finish (the guard, a fall-back to the old
	// root) is told after the swap's own lines, or alone when this root
	// has no journal.
	boot := ""
	if !*asJSON {
		boot = bootguard.Describe(env.ProcRoot, env.SysRoot)
	}
	st, err := swap.CurrentStatus(env.ProcRoot, *path)
	if err != nil {
		fmt.Fprint(env.Stdout, boot)
		return err
	}
	defer fmt.Fprint(env.Stdout, boot)
	*path = st.Path
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(statusJSON(st, env.Now())); err != nil {
			return err
		}
	} else {
		Print(env, st)
	}
	return exitFor(st.Phase)
}

func exitFor(p journal.Phase) error {
	switch p {
	case journal.Succeeded:
		return nil
	case journal.Running, journal.WaitingConfirm, journal.RollingBack:
		return cli.ExitCode(4)
	default:
		return cli.ExitCode(1)
	}
}

// FirstLine is the status word and, where it matters, the step.
func FirstLine(st swap.Status) string {
	switch st.Phase {
	case journal.Running, journal.Failed:
		if st.Step == "" { // failed before any step (the preflight)
			return string(st.Phase)
		}
		return string(st.Phase) + " " + st.Step
	case journal.RollingBack:
		// One of the five words: a rollback in progress is running.
		return "running rollback"
	}
	return string(st.Phase)
}

// Print writes the human status.
func Print(env *cli.Env, st swap.Status) {
	fmt.Fprintln(env.Stdout, FirstLine(st))
	alive := "exited"
	if st.EngineAlive {
		alive = "running"
	}
	fmt.Fprintf(env.Stdout, "journal %s, engine pid %d (%s)\n", st.Path, st.EnginePID, alive)
	if st.Phase == journal.WaitingConfirm && !st.Deadline.IsZero() {
		fmt.Fprintf(env.Stdout, "confirm within %s: run `rootswap confirm` from a NEW ssh login (else it rolls back)\n",
			st.Deadline.Sub(env.Now()).Round(time.Second))
	}
	if st.Err != "" {
		fmt.Fprintf(env.Stdout, "error: %s\n", st.Err)
	}
	for _, s := range st.Steps {
		took, state := "", "running"
		if !s.End.IsZero() {
			took = s.End.Sub(s.Start).Round(time.Millisecond).String()
			state = "ok"
			if s.Err != "" {
				state = "FAILED: " + s.Err
			}
		}
		if s.Undone {
			state += ", undone"
		} else if s.UndoErr != "" {
			state += ", UNDO FAILED: " + s.UndoErr
		}
		fmt.Fprintf(env.Stdout, "  %-16s %9s  %s\n", s.Name, took, state)
	}
	if st.Progress != nil {
		fmt.Fprintf(env.Stdout, "copy %s\n", st.Progress)
	}
	for _, w := range Windows(st) {
		fmt.Fprintf(env.Stdout, "%s: %s\n", w.Name, w.Length.Round(time.Millisecond))
	}
	if len(st.Holders) > 0 {
		fmt.Fprintf(env.Stdout, "the old root is held by:\n")
		for _, h := range st.Holders {
			fmt.Fprintf(env.Stdout, "  %s\n", h)
		}
	}
	if len(st.Finish) > 0 {
		fmt.Fprintf(env.Stdout, "to finish the release by hand:\n")
		for _, c := range st.Finish {
			fmt.Fprintf(env.Stdout, "  %s\n", c)
		}
	}
	for _, n := range st.Notes {
		fmt.Fprintf(env.Stdout, "note: %s\n", n)
	}
	if n := st.Next(); n != "" {
		fmt.Fprintf(env.Stdout, "next: %s\n", n)
	}
}

// Window is a named stretch of the timeline.
type Window struct {
	Name   string        `json:"name"`
	Length time.Duration `json:"ns"`
}

// Windows are the two stretches an admin cares about: how long / was
// read-only for services, and how long no new SSH login was possible.
func Windows(st swap.Status) []Window {
	var out []Window
	if d, ok := st.Window(swap.StepRemountRO, swap.StepStartServices); ok {
		out = append(out, Window{"read-only window (remount-ro to services back)", d})
	}
	if d, ok := st.Window(swap.StepPivot, swap.StepRestartSSHD); ok {
		out = append(out, Window{"pivot to sshd back", d})
	}
	return out
}

func statusJSON(st swap.Status, now time.Time) any {
	type step struct {
		Name     string    `json:"name"`
		Describe string    `json:"describe"`
		Start    time.Time `json:"start"`
		End      time.Time `json:"end"`
		Seconds  float64   `json:"seconds"`
		Err      string    `json:"err,omitempty"`
		Undone   bool      `json:"undone,omitempty"`
		UndoErr  string    `json:"undo_err,omitempty"`
	}
	var steps []step
	for _, s := range st.Steps {
		sec := 0.0
		if !s.End.IsZero() {
			sec = s.End.Sub(s.Start).Seconds()
		}
		steps = append(steps, step{s.Name, s.Describe, s.Start, s.End, sec, s.Err, s.Undone, s.UndoErr})
	}
	holders := st.Holders
	if holders == nil {
		holders = []swap.OldRootHolder{}
	}
	var remaining float64
	if !st.Deadline.IsZero() {
		remaining = st.Deadline.Sub(now).Seconds()
	}
	return map[string]any{
		"status": FirstLine(st), "phase": st.Phase, "step": st.Step, "error": st.Err,
		"engine_pid": st.EnginePID, "engine_alive": st.EngineAlive, "journal": st.Path,
		"started": st.Started, "ended": st.Ended, "steps": steps, "windows": Windows(st),
		"confirm_remaining_seconds": remaining, "notes": st.Notes,
		"old_root_holders": holders, "finish": st.Finish, "next": st.Next(), "progress": st.Progress,
	}
}
