package swap

import (
	"fmt"
	"strings"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// OverlayLayers lists the directories an overlay mount is made of, from
// its superblock options as mountinfo shows them:
//
//	rw,lowerdir=/l1:/l2,upperdir=/u,workdir=/w,uuid=on
//
// lowerdir's layers are separated by ':' ("\:" is a colon in a name; an
// empty layer between "::" starts the data-only layers); newer kernels
// may also list layers one by one as lowerdir+= and datadir+=. Octal
// escapes (\054 for a comma) are undone.
func OverlayLayers(superOpts string) []string {
	var out []string
	for _, o := range strings.Split(superOpts, ",") {
		key, val, ok := strings.Cut(o, "=")
		if !ok {
			continue
		}
		switch key {
		case "upperdir", "workdir", "lowerdir+", "datadir+":
			out = append(out, unescapeLayer(val))
		case "lowerdir":
			for _, l := range splitUnescaped(val, ':') {
				if l != "" {
					out = append(out, unescapeLayer(l))
				}
			}
		}
	}
	return out
}

// splitUnescaped splits s at every sep not preceded by a backslash.
func splitUnescaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unescapeLayer(s string) string {
	return strings.ReplaceAll(mountinfo.Unescape(s), `\:`, ":")
}

// overlayOnDev reports whether one of the overlay's layers lives on the
// filesystem dev (judged by stat, as this process sees the paths).
func overlayOnDev(m mountinfo.Mount, dev uint64) bool {
	for _, l := range OverlayLayers(m.SuperOptions) {
		var st unix.Stat_t
		if unix.Stat(l, &st) == nil && st.Dev == dev {
			return true
		}
	}
	return false
}

// ownerOf is the service that can stop pid: its own, or, for a process
// that belongs to none (a container's init under a shim), the first of
// its ancestors below PID 1 that has one.
func ownerOf(sys initsys.System, procRoot string, pid int) (initsys.Service, bool) {
	svc, ok := sys.ServiceOf(pid)
	if ok && svc.Restartable {
		return svc, true
	}
	for cur, n := PPID(procRoot, pid), 0; cur > 1 && n < 64; cur, n = PPID(procRoot, cur), n+1 {
		if up, upOK := sys.ServiceOf(cur); upOK && up.Restartable {
			return up, true
		}
	}
	return svc, ok
}

// checkOverlays finds the processes that work inside the overlays to be
// unmounted (their cwd, root, open files or mount namespace are on the
// overlay): the overlay can only go once they are stopped, so their
// services join the stop list, stopped before unmount-extra and started
// again after remount-extra has mounted the overlay back from the new
// root's layers. One with no service blocks the plan unless --kill.
func (r *Report) checkOverlays(rt *Runtime, sys initsys.System, opts Options, session map[int]bool, stop map[string]bool) error {
	var devs []uint64
	for _, m := range r.Overlays {
		devs = append(devs, m.Dev())
	}
	if len(devs) == 0 {
		return nil
	}
	snap, err := procscan.Scan(rt.ProcRoot, procscan.Options{Devs: devs, NoBPF: rt.NoBPF})
	if err != nil {
		return err
	}
	keep := setOf(opts.Keep)
	killing := map[int]bool{}
	for _, p := range r.Kill {
		killing[p.PID] = true
	}
	for _, m := range r.Overlays {
		for _, h := range HoldersOf(snap, m.Dev()) {
			what := fmt.Sprintf("works in overlay %s: %s", m.Point, h.What())
			if session[h.PID] {
				r.block(fmt.Sprintf("this session's %s (pid %d) %s", h.Comm, h.PID, what),
					"cd out of "+m.Point+" and run rootswap again")
				continue
			}
			p := Proc{PID: h.PID, Comm: h.Comm, What: what}
			svc, ok := ownerOf(sys, rt.ProcRoot, h.PID)
			if ok {
				p.Service = svc.Name
			} else if gone(rt.ProcRoot, h.PID) {
				continue // exited since the scan (a container's sleep): it holds nothing
			}
			r.OverlayUsers = append(r.OverlayUsers, p)
			switch {
			case ok && svc.Restartable && keep[svc.Name]:
				r.block(fmt.Sprintf("%s (pid %d) %s, but --keep %s forbids stopping it", h.Comm, h.PID, what, svc.Name),
					"drop --keep "+svc.Name+": the overlay can only be unmounted once it is stopped")
			case ok && svc.Restartable:
				stop[svc.Name] = true
			case killing[h.PID]:
			default:
				killing[h.PID] = true
				p.Note = "belongs to no service"
				r.Kill = append(r.Kill, p)
				if !opts.Kill {
					r.block(fmt.Sprintf("%s (pid %d) %s, whose layers are on /, and belongs to no service: the overlay cannot be unmounted under it", h.Comm, h.PID, what),
						fmt.Sprintf("stop it (kill %d) or let run kill it: --kill", h.PID))
				}
			}
		}
	}
	return nil
}

// overlayServices names the services stopped because they work inside
// an overlay, once each, in order.
func overlayServices(r *Report) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range r.OverlayUsers {
		if p.Service != "" && !seen[p.Service] {
			seen[p.Service] = true
			out = append(out, p.Service)
		}
	}
	return out
}
