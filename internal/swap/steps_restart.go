package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/journal"
)

// rescanHolders lists what holds the filesystem dev, leaving out the
// engine and the admin's session.
func rescanHolders(rt *Runtime, dev uint64) ([]Holder, error) {
	hs, err := allHolders(rt, dev)
	if err != nil {
		return nil, err
	}
	var out []Holder
	for _, h := range hs {
		if !rt.Session[h.PID] {
			out = append(out, h)
		}
	}
	return out, nil
}

// allHolders lists what holds the filesystem dev but the engine itself.
func allHolders(rt *Runtime, dev uint64) ([]Holder, error) {
	var hs []Holder
	if rt.ScanHolders != nil {
		var err error
		if hs, err = rt.ScanHolders(dev); err != nil {
			return nil, err
		}
	} else {
		snap, err := rt.Scan(dev)
		if err != nil {
			return nil, err
		}
		hs = HoldersOf(snap, dev)
	}
	var out []Holder
	for _, h := range hs {
		if h.PID != rt.Self {
			out = append(out, h)
		}
	}
	return out, nil
}

// ---- restart-sshd, restart-udev -------------------------------------------

type restartService struct {
	rt         *Runtime
	name       string
	candidates []string
	// fatal: without sshd from the new root nobody can log in again,
	// which is worth a rollback; udev is not.
	fatal bool
}

func (st *restartService) Name() string { return st.name }
func (st *restartService) Fatal() bool  { return st.fatal }
func (st *restartService) Describe(*State) string {
	return "restart the first running of " + strings.Join(st.candidates, ", ") + " so it runs from the new root"
}

// running is the first candidate that runs, under the name ServiceOf
// gives its processes (busybox's "dropbear" is S50dropbear), so that
// restart finds the daemons that outlive their script and restart-holders
// knows it was restarted.
func (st *restartService) running(ctx context.Context) (initsys.Service, bool) {
	for _, c := range st.candidates {
		svc := initsys.Resolve(st.rt.Init, service(st.rt, c))
		if ok, err := st.rt.Init.Running(ctx, svc); err == nil && ok {
			return svc, true
		}
	}
	return initsys.Service{}, false
}
func (st *restartService) Do(ctx context.Context, s *State) error {
	name, err := st.restartAndWait(ctx)
	if name != "" {
		s.Restarted = append(s.Restarted, name)
	}
	return err
}

// restartAndWait restarts the first running candidate and waits until it
// runs again; name is the service restarted ("" when none ran).
func (st *restartService) restartAndWait(ctx context.Context) (string, error) {
	svc, ok := st.running(ctx)
	if !ok {
		st.rt.logf("    none of %s runs here: nothing to restart", strings.Join(st.candidates, ", "))
		return "", nil
	}
	if err := restart(ctx, st.rt, svc); err != nil {
		return "", err
	}
	// A daemon that did not come back leaves nobody able to log in
	// (sshd): that is worth a rollback, while the old root still can.
	// A daemon writes its pidfile a moment after its script returns.
	deadline := st.rt.Now().Add(5 * time.Second)
	for {
		ok, err := st.rt.Init.Running(ctx, svc)
		if err == nil && ok {
			return svc.Name, nil
		}
		if st.rt.Now().After(deadline) {
			why := "it is not running"
			if err != nil {
				why = err.Error()
			}
			return svc.Name, fmt.Errorf("%s did not come back after its restart from the new root: %s", svc.Name, why)
		}
		if err := st.rt.sleep(ctx, 200*time.Millisecond); err != nil {
			return svc.Name, err
		}
	}
}

// Undo is the pivot's: restarting it now would start it from the new
// root again. After the pivot back, rehome restarts it from the old root.
func (st *restartService) Undo(ctx context.Context, s *State) error { return nil }

// ---- reexec-init ----------------------------------------------------------

type reexecInit struct{ rt *Runtime }

func (*reexecInit) Name() string { return "reexec-init" }

// An init that keeps the old binary holds the old root until reboot;
// the swap itself is sound, so this is reported, not rolled back.
func (*reexecInit) Fatal() bool { return false }
func (st *reexecInit) Describe(*State) string {
	return "re-execute PID 1 from the new root: " + st.rt.Init.ReexecMethod()
}
func (st *reexecInit) Do(ctx context.Context, s *State) error { return reexecAndWait(ctx, st.rt) }

// Undo: see restartService.Undo; rehome re-executes init after the pivot back.
func (st *reexecInit) Undo(ctx context.Context, s *State) error { return nil }

func reexecAndWait(ctx context.Context, rt *Runtime) error {
	// sysvinit checks its FIFO every few seconds and makes it again where
	// /run/initctl then resolves: between the pivot and the move of /run
	// that is the other root's /run, and a request written meanwhile
	// finds no reader (ENXIO) until init looks again. A few retries, bounded.
	now := time.Now
	if rt.Now != nil {
		now = rt.Now // the clock rt.sleep advances
	}
	retryUntil := now().Add(12 * time.Second)
	for {
		err := rt.Init.Reexec(ctx)
		if err == nil {
			break
		}
		if now().After(retryUntil) || ctx.Err() != nil {
			return err
		}
		rt.logf("    %v: asking again", err)
		if err := rt.sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := initsys.CheckPID1(rt.ProcRoot, "/")
		if err == nil && st.Current {
			rt.logf("    %s", st.Summary())
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return errors.New(st.Summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- restart-gettys -------------------------------------------------------

type restartGettys struct{ rt *Runtime }

func (*restartGettys) Name() string { return "restart-gettys" }
func (*restartGettys) Fatal() bool  { return false }
func (*restartGettys) Describe(*State) string {
	return "kill the gettys still running from the old root; init respawns them from the new one"
}
func isGetty(comm string) bool { return strings.HasSuffix(comm, "getty") }

// A getty is a *getty process, or any process running an inittab respawn
// line: init brings it back, from the new root, when it dies.
func (st *restartGettys) Do(ctx context.Context, s *State) error {
	return killGettys(st.rt, s.OldRoot.Dev())
}

func killGettys(rt *Runtime, dev uint64) error {
	hs, err := rescanHolders(rt, dev)
	if err != nil {
		return err
	}
	respawn := RespawnCommands("/")
	killed := map[int]string{}
	for _, h := range hs {
		if isRespawned(rt, h, respawn) {
			rt.logf("    killing %s[%d]", h.Comm, h.PID)
			killed[h.PID] = cmdline(rt.ProcRoot, h.PID)
			syscall.Kill(h.PID, syscall.SIGTERM)
		}
	}
	waitRespawned(rt, dev, killed)
	return nil
}

// waitRespawned waits up to 5 s for init to start each killed command
// again off dev: a getty is the console's way in, and whoever looks
// right after this step (status, the admin, a test) must find one. Not
// fatal: init respawns on its own schedule, and says so in its log.
func waitRespawned(rt *Runtime, dev uint64, killed map[int]string) {
	deadline := time.Now().Add(5 * time.Second)
	for len(killed) > 0 {
		pending, err := pendingRespawns(rt, dev, killed)
		if err == nil && len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			rt.logf("    not respawned by init yet: %s", strings.Join(pending, ", "))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pendingRespawns lists the killed command lines that no process off dev
// runs yet.
func pendingRespawns(rt *Runtime, dev uint64, killed map[int]string) ([]string, error) {
	hs, err := rescanHolders(rt, dev)
	if err != nil {
		return nil, err
	}
	onDev := map[int]bool{}
	for _, h := range hs {
		onDev[h.PID] = true
	}
	entries, err := os.ReadDir(rt.ProcRoot)
	if err != nil {
		return nil, err
	}
	running := map[string]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || onDev[pid] || killed[pid] != "" {
			continue
		}
		running[cmdline(rt.ProcRoot, pid)] = true
	}
	var pending []string
	for _, c := range killed {
		if !running[c] {
			pending = append(pending, c)
		}
	}
	sort.Strings(pending)
	return pending, nil
}

func isRespawned(rt *Runtime, h Holder, respawn map[string]bool) bool {
	return isGetty(h.Comm) || (PPID(rt.ProcRoot, h.PID) == 1 && respawn[cmdline(rt.ProcRoot, h.PID)])
}

// Undo: see restartService.Undo.
func (st *restartGettys) Undo(ctx context.Context, s *State) error { return nil }

// ---- start-services -------------------------------------------------------

type startServices struct{ rt *Runtime }

func (*startServices) Name() string { return StepStartServices }
func (*startServices) Fatal() bool  { return true }
func (st *startServices) Describe(s *State) string {
	r := st.rt.Report
	var cmds []string
	for _, p := range r.Respawn {
		cmds = append(cmds, p.Service)
	}
	if s.Opts.Kill {
		for _, p := range r.Kill {
			cmds = append(cmds, fmt.Sprintf("%s[%d]", p.Comm, p.PID))
		}
	}
	if len(r.Stop)+len(cmds) == 0 {
		return "no service was stopped: nothing to start"
	}
	rev := make([]string, 0, len(r.Stop))
	for i := len(r.Stop) - 1; i >= 0; i-- {
		rev = append(rev, r.Stop[i])
	}
	desc := "start " + strings.Join(rev, ", ") + " again, from the new root"
	if len(rev) == 0 {
		desc = "no service was stopped"
	}
	if len(cmds) > 0 {
		desc += "; start " + strings.Join(cmds, ", ") + " again by their own command line, working directory and environment"
	}
	if c := dockerStartPlan(r, s); c != "" {
		desc += "; " + c
	}
	return desc
}

// Do starts the services in the reverse order of their stop (containerd
// before docker, which stop-services stopped first), then the containers
// stop-services stopped before their live-restore daemon.
func (st *startServices) Do(ctx context.Context, s *State) error { return st.start(ctx, s) }

// flushJournal moves journald back onto /var of the new root, once the
// services run and sshd is back: their first lines wait in /run
// meanwhile. The flush is heavy I/O; beside sshd's restart it delayed
// new logins by seconds in the guest.
type flushJournal struct{ rt *Runtime }

func (*flushJournal) Name() string { return "flush-journal" }
func (*flushJournal) Fatal() bool  { return false }
func (st *flushJournal) Describe(*State) string {
	if st.rt.Report.InitKind != string(initsys.KindSystemd) {
		return "no journald (not systemd): nothing to flush"
	}
	return "journalctl --flush: journald writes /var/log/journal again, on the new root"
}

func (st *flushJournal) Do(ctx context.Context, s *State) error {
	if st.rt.Init.Kind() != initsys.KindSystemd {
		return nil
	}
	return initsys.JournaldFlush(ctx, initsys.Runner(st.rt.Command))
}

// Undo takes journald off the new root's /var again, so a rollback can
// let go of the new root.
func (st *flushJournal) Undo(ctx context.Context, s *State) error {
	if st.rt.Init.Kind() != initsys.KindSystemd {
		return nil
	}
	return initsys.JournaldRelinquish(ctx, initsys.Runner(st.rt.Command))
}

func (st *startServices) start(ctx context.Context, s *State) error {
	if err := initsys.StartAll(ctx, st.rt.Init, services(st.rt, reversed(s.Stopped))); err != nil {
		return err
	}
	for i := range s.Killed {
		if err := respawn(st.rt, &s.Killed[i]); err != nil {
			return err
		}
	}
	return startContainers(ctx, st.rt, s, "from the new root", true)
}

// Undo stops what Do started, containers before their daemon: under
// live-restore they would outlive it, on the new root.
func (st *startServices) Undo(ctx context.Context, s *State) error {
	var errs []error
	for _, k := range s.Killed {
		if k.Respawned > 0 {
			stopWith(st.rt, k.Respawned, k.Signal)
		}
	}
	if err := stopStarted(ctx, st.rt, s); err != nil {
		errs = append(errs, err)
	}
	for _, name := range s.Stopped {
		if err := st.rt.Init.Stop(ctx, service(st.rt, name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ---- restart-holders ------------------------------------------------------

type restartHolders struct{ rt *Runtime }

func (*restartHolders) Name() string { return "restart-holders" }
func (*restartHolders) Fatal() bool  { return false }
func (*restartHolders) Describe(*State) string {
	return "restart every service still running from the old root (one at a time), and those whose own mount namespace holds it"
}
func (st *restartHolders) Do(ctx context.Context, s *State) error {
	restarted, orphans, err := restartServicesOn(ctx, st.rt, s, s.OldRoot.Dev(), setOf(s.Restarted))
	s.Restarted = append(s.Restarted, restarted...)
	if len(orphans) > 0 {
		st.rt.logf("    still on the old root, no service to restart them: %s", strings.Join(orphans, ", "))
		s.Holders = orphans
	}
	return err
}

// restartServicesOn restarts, one at a time, the service of every process
// that still runs from the filesystem dev (skipping PID 1, gettys, kept
// and already restarted services), and lists the processes that belong
// to no service.
func restartServicesOn(ctx context.Context, rt *Runtime, s *State, dev uint64, done map[string]bool) (restarted, orphans []string, _ error) {
	hs, err := rescanHolders(rt, dev)
	if err != nil {
		return nil, nil, err
	}
	keep := setOf(s.Opts.Keep)
	respawn := RespawnCommands("/")
	var errs []error
	services := initsys.NewLookup(rt.Init)
	for _, h := range hs {
		if h.PID == 1 || isRespawned(rt, h, respawn) {
			continue
		}
		if h.OtherNS != "" && len(h.Uses)+len(h.Writes)+len(h.Deleted) == 0 {
			continue // only its namespace holds it: release restarts it after the umount
		}
		svc, ok := services.ServiceOf(h.PID)
		if !ok || !svc.Restartable {
			orphans = append(orphans, fmt.Sprintf("%s[%d] (%s)", h.Comm, h.PID, h.What()))
			continue
		}
		if keep[svc.Name] || done[svc.Name] {
			continue
		}
		done[svc.Name] = true
		rt.logf("    restarting %s (%s[%d] %s)", svc.Name, h.Comm, h.PID, h.What())
		if err := restart(ctx, rt, svc); err != nil {
			errs = append(errs, fmt.Errorf("restart %s: %w", svc.Name, err))
			continue
		}
		restarted = append(restarted, svc.Name)
		services = initsys.NewLookup(rt.Init) // the restart rewrote pidfiles
		// Rate limit: one service at a time, never a burst that trips
		// systemd's start limit.
		rt.sleep(ctx, 200*time.Millisecond)
	}
	sort.Strings(orphans)
	return restarted, orphans, errors.Join(errs...)
}

// Undo: see restartService.Undo.
func (st *restartHolders) Undo(ctx context.Context, s *State) error { return nil }

// rehome brings everything that was restarted onto the new root back onto
// the old one, after the pivot back: init first, then sshd (new logins),
// then every service and getty still running from the new root's
// filesystem newDev.
// The daemons restart-sshd and restart-udev restart forward, and rehome
// back: one list each, so the two directions cannot drift apart.
var (
	sshdNames = []string{"ssh", "sshd", "dropbear"}
	udevNames = []string{"systemd-udevd", "udev", "udevd", "eudev", "mdev"}
)

func rehome(ctx context.Context, rt *Runtime, s *State, newDev uint64) error {
	var errs []error
	if rt.Init.Kind() != initsys.KindBusybox && rt.Init.Kind() != initsys.KindUnknown {
		// Only an init that reexec-init moved onto the new root needs to
		// come back: one that still runs from this root is left alone.
		if st, err := initsys.CheckPID1(rt.ProcRoot, "/"); err == nil && st.Current {
			rt.logf("    init runs from this root already: not re-executed")
		} else if err := reexecAndWait(ctx, rt); err != nil {
			errs = append(errs, fmt.Errorf("re-exec init: %w", err))
		}
	}
	for _, names := range [][]string{sshdNames, udevNames} {
		rs := &restartService{rt: rt, candidates: names}
		if svc, ok := rs.running(ctx); ok {
			if err := restart(ctx, rt, svc); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := killGettys(rt, newDev); err != nil {
		errs = append(errs, err)
	}
	_, orphans, err := restartServicesOn(ctx, rt, s, newDev, map[string]bool{})
	if err != nil {
		errs = append(errs, err)
	}
	if len(orphans) > 0 {
		rt.logf("    still on the new root after rollback, no service to restart them: %s", strings.Join(orphans, ", "))
	}
	return errors.Join(errs...)
}

// ---- wait-confirm ---------------------------------------------------------

type waitConfirm struct{ rt *Runtime }

func (*waitConfirm) Name() string { return "wait-confirm" }
func (*waitConfirm) Fatal() bool  { return true }
func (*waitConfirm) Describe(s *State) string {
	if s.Opts.ConfirmTimeout <= 0 {
		return "confirm automatically (--confirm-timeout 0)"
	}
	return fmt.Sprintf("wait %s for `rootswap confirm` from a new SSH login; roll back without it", s.Opts.ConfirmTimeout)
}
func (st *waitConfirm) Do(ctx context.Context, s *State) error {
	if s.Opts.ConfirmTimeout <= 0 {
		return nil
	}
	rt := st.rt
	deadline := rt.Now().Add(s.Opts.ConfirmTimeout)
	if rt.Journal != nil {
		rt.Journal.Add(journal.Record{Kind: journal.KindWait, Data: map[string]string{"deadline": deadline.Format(time.RFC3339Nano)}})
	}
	rt.logf("    waiting for `rootswap confirm` until %s", deadline.Format(time.TimeOnly))
	for {
		if rt.Confirmed != nil {
			ok, err := rt.Confirmed()
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
		}
		if rt.Now().After(deadline) {
			return fmt.Errorf("%w: no confirmation within %s", ErrRollbackRequested, s.Opts.ConfirmTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
func (*waitConfirm) Undo(context.Context, *State) error { return nil }
