package swap

import (
	"fmt"
	"io"
	"strings"
)

// Print writes the preflight in the admin's words, numbered as the issue
// of the manual procedure had them, then the steps.
func (r *Report) Print(w io.Writer, steps []Step, s *State) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	list := func(title string, items []string, none string) {
		if len(items) == 0 {
			p("%s: %s\n", title, none)
			return
		}
		p("%s:\n", title)
		for _, it := range items {
			p("    %s\n", it)
		}
	}
	procs := func(ps []Proc) []string {
		var out []string
		for _, x := range ps {
			svc := x.Service
			if svc == "" {
				svc = "no service"
			}
			out = append(out, fmt.Sprintf("%s[%d] %s  (%s)", x.Comm, x.PID, x.What, svc))
		}
		return out
	}
	p("root: %s on / (%s, %s)\n", r.Root.Device, r.Root.FSType, human(r.Root.Size))
	p("target: %s (%s, %s)\n", r.Target.Path, r.Target.Name, human(r.Target.Size))
	list(" 1. deleted files held open", procs(r.Deleted), "none")
	list(" 2. open for writing on /", procs(r.Writers), "none")
	list(" 3. loop devices backed by files on /", r.Loops, "none")
	var um []string
	for _, m := range r.Unmount {
		um = append(um, m.String())
	}
	list(" 4. mounts to unmount for the swap", um, "none")
	var rb []string
	for _, l := range r.Rebacks {
		rb = append(rb, fmt.Sprintf("%s on %s (%s): stays mounted, its loop moved onto the new root's copy", l.Point, l.Dev, l.File))
	}
	list("    squashfs images of / (not unmounted)", rb, "none")
	list("    processes working inside overlays whose layers are on / (stopped first)", procs(r.OverlayUsers), "none")
	list(" 5. unix sockets bound on /", r.UnixSockets, "none")
	list("    processes whose own mount namespace holds / (lsof cannot see them)", procs(r.OtherNS), "none")
	p(" 6. submounts to move back after the pivot: %s\n", strings.Join(r.Submounts, " "))
	var binds []string
	for _, b := range r.Binds {
		binds = append(binds, b.String())
	}
	list("    bind mounts of directories of / (re-made from the new root)", binds, "none")
	var swaps []string
	for _, a := range r.SwapFiles {
		swaps = append(swaps, fmt.Sprintf("%s (%s, %s used, priority %d)", a.Path, human(a.Size), human(a.Used), a.Priority))
	}
	list("    swap files on / (off for the copy, on again from the new root)", swaps, "none")
	p(" 7. init: %s\n", r.Init)
	p(" 8. target checks: %s\n", r.targetVerdict())
	p(" 9. memory: %s available, the engine's tmpfs needs %s\n", human(r.MemAvail), human(r.MemNeeded))
	var tools []string
	for name, path := range r.Tools {
		tools = append(tools, name+"="+path)
	}
	sortStrings(tools)
	p("10. tools: %s\n", strings.Join(tools, " "))
	p("11. lifeline: %s\n", r.Lifeline)
	p("12. steps run will take:\n%s", Describe(steps, s))
	for _, wn := range r.Warnings {
		p("warning: %s\n", wn)
	}
	if len(r.Blockers) == 0 {
		p("verdict: run can proceed\n")
		return
	}
	p("verdict: BLOCKED — run cannot clear these by itself:\n")
	for _, b := range r.Blockers {
		p("  - %s\n    fix: %s\n", b.Problem, b.Fix)
	}
}

func (r *Report) targetVerdict() string {
	for _, b := range r.Blockers {
		if strings.Contains(b.Problem, r.Target.Path) && r.Target.Path != "" {
			return "FAILED (see below)"
		}
	}
	return "block device, not mounted, not / nor under it, large enough, empty"
}
