package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
	"golang.org/x/sys/unix"
)

// Steps is the swap, in order. plan prints it; run executes it.
func Steps(rt *Runtime) []Step {
	pre := &precopy{rt: rt}
	all := []Step{
		&prepare{rt},
		pre,
		&stopServices{rt},
		&unmountExtra{rt},
		&swapOff{rt},
		&remountRO{rt},
		&copyRoot{rt, pre},
		&checkNew{rt},
		&resizeNew{rt},
		&newUUID{rt},
		&mountNew{rt},
		&pivot{rt},
		&moveMounts{rt},
		&remakeBinds{rt},
		&rebackLoops{rt},
		&swapOn{rt},
		// The stopped writers first, at once: PID 1 already resolves
		// paths in the new root, so their outage ends here, not after
		// sshd, udev and init have been restarted. sshd next, alone:
		// until then the old sshd takes logins (it re-executes itself
		// per connection, from the new root), and beside start jobs its
		// restart left the prober without logins for seconds.
		&remountExtra{rt},
		&startServices{rt},
		&restartService{rt, StepRestartSSHD, sshdNames, true},
		&flushJournal{rt},
		&growRoot{rt},
		&restartService{rt, "restart-udev", udevNames, false},
		&reexecInit{rt},
		&restartGettys{rt},
		&restartHolders{rt},
		&waitConfirm{rt},
		&releaseOldRoot{rt},
		&checkOld{rt},
		&relabelOld{rt},
	}
	if rt.Report != nil && rt.Report.Mkfs != "" {
		return fileSteps(rt, all)
	}
	return all
}

// services rebuilds the services named, in order.
func services(rt *Runtime, names []string) []initsys.Service {
	svcs := make([]initsys.Service, len(names))
	for i, name := range names {
		svcs[i] = service(rt, name)
	}
	return svcs
}

// reversed is names last first: services start in the reverse order of
// their stop.
func reversed(names []string) []string {
	r := make([]string, len(names))
	for i, n := range names {
		r[len(names)-1-i] = n
	}
	return r
}

// oldRootPath is where the old root sits after the pivot.
func oldRootPath(s *State) string { return "/" + s.Opts.PutOld }

// service rebuilds an initsys.Service from a name saved in the journal.
func service(rt *Runtime, name string) initsys.Service {
	kind := initsys.InitDScript
	switch rt.Init.Kind() {
	case initsys.KindSystemd:
		kind = initsys.ServiceUnit
		if !strings.Contains(name, ".") {
			name += ".service"
		}
	case initsys.KindOpenRC, initsys.KindOpenRCInit:
		kind = initsys.OpenRCService
	}
	return initsys.Service{Name: name, Kind: kind, Restartable: true}
}

// ---- prepare --------------------------------------------------------------

type prepare struct{ rt *Runtime }

func (*prepare) Name() string { return "prepare" }
func (*prepare) Fatal() bool  { return true }
func (*prepare) Describe(s *State) string {
	return "mkdir " + s.Opts.NewRoot + " while / is still writable (if missing)"
}
func (*prepare) Do(ctx context.Context, s *State) error {
	if _, err := os.Stat(s.Opts.NewRoot); err == nil {
		return nil
	}
	if err := os.MkdirAll(s.Opts.NewRoot, 0o755); err != nil {
		return err
	}
	s.MadeNewRoot = true
	return nil
}
func (*prepare) Undo(ctx context.Context, s *State) error {
	if s.MadeNewRoot {
		if err := os.Remove(s.Opts.NewRoot); err != nil {
			return err
		}
		s.MadeNewRoot = false
	}
	return nil
}

// ---- stop-services -------------------------------------------------------

type stopServices struct{ rt *Runtime }

func (*stopServices) Name() string { return StepStopServices }
func (*stopServices) Fatal() bool  { return true }
func (st *stopServices) Describe(s *State) string {
	r := st.rt.Report
	parts := dockerStopPlan(r)
	if len(r.Stop) > 0 {
		why := "they hold / open for writing or hold deleted files"
		if inOverlay := overlayServices(r); len(inOverlay) > 0 {
			why += "; " + strings.Join(inOverlay, ", ") + " work inside overlays whose layers are on /, unmounted while they are stopped"
		}
		parts = append(parts, "stop "+strings.Join(r.Stop, ", ")+" ("+why+")")
	}
	for _, p := range r.Respawn {
		parts = append(parts, fmt.Sprintf("kill %s[%d] with %s and start it again by its command line after the pivot (%s: %s)", p.Comm, p.PID, unix.SignalName(p.Signal), p.Service, p.Note))
	}
	if len(r.Kill) > 0 && s.Opts.Kill {
		var k []string
		for _, p := range r.Kill {
			k = append(k, fmt.Sprintf("%s[%d]", p.Comm, p.PID))
		}
		parts = append(parts, "kill "+strings.Join(k, ", ")+" (no service; --kill; daemons are started again with the same command line after the swap)")
	}
	if r.InitKind == string(initsys.KindSystemd) {
		parts = append(parts, "journalctl --relinquish-var")
	}
	if len(parts) == 0 {
		return "nothing holds / open for writing: no service to stop"
	}
	return strings.Join(parts, "; ")
}

func (st *stopServices) Do(ctx context.Context, s *State) error {
	rt := st.rt
	if rt.Init.Kind() == initsys.KindSystemd {
		if err := initsys.JournaldRelinquish(ctx, initsys.Runner(rt.Command)); err != nil {
			rt.logf("    journalctl --relinquish-var: %v (going on)", err)
		}
	}
	// Containers first, while their daemon (and containerd) still run;
	// Report.Stop has docker's services first, then the rest.
	if err := stopContainers(ctx, rt, s); err != nil {
		return st.failed(ctx, s, err)
	}
	before := activeUnits(ctx, rt)
	// One transaction where the manager takes one (systemd): the
	// writers' outage starts with the first stop, and stops that overlap
	// end it sooner than stops one after another.
	if len(rt.Report.Stop) > 0 {
		rt.logf("    stopping %s", strings.Join(rt.Report.Stop, ", "))
	}
	svcs := services(rt, rt.Report.Stop)
	stopped, err := initsys.StopAll(ctx, rt.Init, svcs)
	for i, svc := range svcs {
		for _, done := range stopped {
			if done.Name == svc.Name {
				s.Stopped = append(s.Stopped, rt.Report.Stop[i])
				break
			}
		}
	}
	if err != nil {
		return st.failed(ctx, s, err)
	}
	// systemd stops along the units that need a stopped one
	// (systemd-networkd-wait-online with systemd-networkd): they are
	// started again with the others.
	if before != nil {
		after := activeUnits(ctx, rt)
		for _, u := range before {
			if !slices.Contains(after, u) && !slices.Contains(s.Stopped, u) {
				rt.logf("    %s stopped along with them: started again with them", u)
				s.Stopped = append(s.Stopped, u)
			}
		}
	}
	for _, p := range rt.Report.Respawn {
		rt.logf("    killing %s[%d] with %s (%s; started again by its command line)", p.Comm, p.PID, unix.SignalName(p.Signal), p.Service)
		s.Killed = append(s.Killed, killForRespawn(rt, p.PID, p.Comm, p.Service, p.Signal))
	}
	if s.Opts.Kill {
		for _, p := range rt.Report.Kill {
			rt.logf("    killing %s[%d] (no service; a daemon is started again after the swap)", p.Comm, p.PID)
			s.Killed = append(s.Killed, killForRespawn(rt, p.PID, p.Comm, "", syscall.SIGTERM))
		}
	}
	return nil
}

// failed: a stop failed half-way. The engine does not undo a step that
// failed, so the step takes back what it did (containers and services
// started again) before it reports the failure.
func (st *stopServices) failed(ctx context.Context, s *State, err error) error {
	if uerr := st.Undo(ctx, s); uerr != nil {
		return fmt.Errorf("%w; starting again what was stopped: %v", err, uerr)
	}
	return err
}

// Undo starts the services again in the reverse order of their stop,
// then the containers stopped before them, all from the old root.
func (st *stopServices) Undo(ctx context.Context, s *State) error {
	var errs []error
	for i := range s.Killed {
		if err := respawn(st.rt, &s.Killed[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := initsys.StartAll(ctx, st.rt.Init, services(st.rt, reversed(s.Stopped))); err != nil {
		errs = append(errs, err)
	}
	if err := startContainers(ctx, st.rt, s, "on the old root", false); err != nil {
		errs = append(errs, err)
	}
	if st.rt.Init.Kind() == initsys.KindSystemd {
		initsys.JournaldFlush(ctx, initsys.Runner(st.rt.Command))
	}
	s.Stopped, s.Containers = nil, nil
	return errors.Join(errs...)
}

// ---- unmount-extra / remount-extra ---------------------------------------

type unmountExtra struct{ rt *Runtime }

func (*unmountExtra) Name() string { return stepUnmountExtra }
func (*unmountExtra) Fatal() bool  { return true }
func (st *unmountExtra) Describe(*State) string {
	if len(st.rt.Report.Unmount) == 0 {
		return "no network, FUSE, overlay or loop-image mounts to unmount"
	}
	var p []string
	for _, m := range st.rt.Report.Unmount {
		p = append(p, m.Point+" ("+m.FSType+")")
	}
	return "unmount " + strings.Join(p, ", ") + "; remounted after the pivot"
}

func (st *unmountExtra) Do(ctx context.Context, s *State) error {
	ms := st.rt.Report.Unmount
	now, err := mountinfo.Read(st.rt.ProcRoot, "self")
	if err != nil {
		return err
	}
	for i := len(ms) - 1; i >= 0; i-- { // children first
		if _, ok := now.ByID(ms[i].ID); !ok {
			// Its service unmounted it when it stopped (dockerd its
			// containers' overlays) and mounts it again when it starts.
			st.rt.logf("    %s: already unmounted by its service's stop", ms[i].Point)
			continue
		}
		// Listed first: the journal's intent record carries the state, so
		// a rollback after a kill in the unmount knows what to mount again.
		s.Unmounted = append(s.Unmounted, ms[i])
		if err := st.rt.Mounter.Unmount(ms[i].Point, 0); err != nil {
			s.Unmounted = s.Unmounted[:len(s.Unmounted)-1]
			return err
		}
	}
	return nil
}

func (st *unmountExtra) Undo(ctx context.Context, s *State) error {
	err := remount(st.rt, s.Unmounted)
	s.Unmounted = nil
	return err
}

func remount(rt *Runtime, ms mountinfo.Table) error {
	var errs []error
	for i := len(ms) - 1; i >= 0; i-- { // unmounted children first: parents first now
		m := ms[i]
		flags, data := mountFlags(m.Options), superData(m.SuperOptions)
		if err := rt.Mounter.Mount(m.Source, m.Point, m.FSType, flags, data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type remountExtra struct{ rt *Runtime }

func (*remountExtra) Name() string { return "remount-extra" }
func (*remountExtra) Fatal() bool  { return false }
func (st *remountExtra) Describe(*State) string {
	if len(st.rt.Report.Unmount) == 0 {
		return "nothing was unmounted: nothing to mount again"
	}
	return fmt.Sprintf("mount the %d unmounted filesystems again, on the new root", len(st.rt.Report.Unmount))
}
func (st *remountExtra) Do(ctx context.Context, s *State) error {
	return remount(st.rt, s.Unmounted)
}
func (st *remountExtra) Undo(ctx context.Context, s *State) error {
	var errs []error
	for i := len(s.Unmounted) - 1; i >= 0; i-- {
		if err := st.rt.Mounter.Unmount(s.Unmounted[i].Point, 0); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mountFlags turns per-mount options back into MS_ flags.
func mountFlags(opts string) uintptr { return mountops.OptionFlags(opts) }

// superData drops the rw/ro word from superblock options; the rest is
// what the filesystem wants back as mount data.
func superData(opts string) string {
	var keep []string
	for _, o := range strings.Split(opts, ",") {
		if o != "rw" && o != "ro" && o != "" {
			keep = append(keep, o)
		}
	}
	return strings.Join(keep, ",")
}

// ---- remount-ro -----------------------------------------------------------

type remountRO struct{ rt *Runtime }

func (*remountRO) Name() string { return StepRemountRO }
func (*remountRO) Fatal() bool  { return true }
func (*remountRO) Describe(*State) string {
	return "mount -o remount,ro / (the copy must see a still filesystem)"
}

func (st *remountRO) Do(ctx context.Context, s *State) error {
	root := st.rt.Report.Root.Mount
	// Keep the mount's own flags (nosuid, relatime...): a remount
	// replaces them with what it is given.
	flags := mountFlags(root.Options) | unix.MS_REMOUNT | unix.MS_RDONLY
	unix.Sync()
	err := st.rt.Mounter.Mount("", "/", "", flags, "")
	if err != nil && errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%w; still holding / for writing: %s", err, st.writersNow())
	}
	if err == nil {
		s.ReadOnly = true
	}
	return err
}

func (st *remountRO) writersNow() string {
	r, err := rescanHolders(st.rt, st.rt.Report.Root.Mount.Dev())
	if err != nil {
		return err.Error()
	}
	var w []string
	for _, h := range r {
		if h.BlocksReadOnly() && !st.rt.Session[h.PID] {
			w = append(w, fmt.Sprintf("%s[%d] %s", h.Comm, h.PID, h.What()))
		}
	}
	if len(w) == 0 {
		return "nobody visible (a process in another mount namespace, or a loop device over a file on /)"
	}
	return strings.Join(w, "; ")
}

func (st *remountRO) Undo(ctx context.Context, s *State) error {
	if !s.ReadOnly {
		return nil
	}
	root := s.OldRoot
	flags := (mountFlags(root.Options) &^ unix.MS_RDONLY) | unix.MS_REMOUNT
	if err := st.rt.Mounter.Mount("", "/", "", flags, ""); err != nil {
		return err
	}
	s.ReadOnly = false
	return nil
}

// activeUnits lists the active service units on systemd, nil elsewhere
// or when systemctl cannot tell.
func activeUnits(ctx context.Context, rt *Runtime) []string {
	if rt.Init.Kind() != initsys.KindSystemd {
		return nil
	}
	out, err := rt.Command(ctx, "systemctl", "list-units", "--type=service", "--state=active", "--no-legend", "--plain", "--no-pager")
	if err != nil {
		return nil
	}
	var units []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasSuffix(f[0], ".service") {
			units = append(units, f[0])
		}
	}
	return units
}
