package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/journal"
	"golang.org/x/sys/unix"
)

func rescanHolders(rt *Runtime, dev uint64) ([]Holder, error) {
	snap, err := rt.Scan(dev)
	if err != nil {
		return nil, err
	}
	var out []Holder
	for _, h := range HoldersOf(snap, dev) {
		if h.PID != rt.Self && !rt.Session[h.PID] {
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
func (st *restartService) running(ctx context.Context) (initsys.Service, bool) {
	for _, c := range st.candidates {
		svc := service(st.rt, c)
		if ok, err := st.rt.Init.Running(ctx, svc); err == nil && ok {
			return svc, true
		}
	}
	return initsys.Service{}, false
}
func (st *restartService) Do(ctx context.Context, s *State) error {
	svc, ok := st.running(ctx)
	if !ok {
		st.rt.logf("    none of %s runs here: nothing to restart", strings.Join(st.candidates, ", "))
		return nil
	}
	if err := restart(ctx, st.rt, svc); err != nil {
		return err
	}
	s.Restarted = append(s.Restarted, svc.Name)
	return nil
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
	if err := rt.Init.Reexec(ctx); err != nil {
		return err
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
func (st *startServices) Describe(*State) string {
	if len(st.rt.Report.Stop) == 0 {
		return "no service was stopped: nothing to start"
	}
	return "start " + strings.Join(st.rt.Report.Stop, ", ") + " again, from the new root"
}
func (st *startServices) Do(ctx context.Context, s *State) error {
	if st.rt.Init.Kind() == initsys.KindSystemd {
		initsys.JournaldFlush(ctx, initsys.Runner(st.rt.Command))
	}
	for _, name := range s.Stopped {
		if err := st.rt.Init.Start(ctx, service(st.rt, name)); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
	}
	for i := range s.Killed {
		if err := respawn(st.rt, &s.Killed[i]); err != nil {
			return err
		}
	}
	return nil
}
func (st *startServices) Undo(ctx context.Context, s *State) error {
	var errs []error
	for _, k := range s.Killed {
		if k.Respawned > 0 {
			killAndWait(st.rt.ProcRoot, k.Respawned, 5*time.Second)
		}
	}
	for i := len(s.Stopped) - 1; i >= 0; i-- {
		if err := st.rt.Init.Stop(ctx, service(st.rt, s.Stopped[i])); err != nil {
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
	for _, h := range hs {
		if h.PID == 1 || isRespawned(rt, h, respawn) {
			continue
		}
		if h.OtherNS != "" && len(h.Uses)+len(h.Writes)+len(h.Deleted) == 0 {
			continue // only its namespace holds it: release restarts it after the umount
		}
		svc, ok := rt.Init.ServiceOf(h.PID)
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
		// Rate limit: one service at a time, never a burst that trips
		// systemd's start limit.
		time.Sleep(200 * time.Millisecond)
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
func rehome(ctx context.Context, rt *Runtime, s *State, newDev uint64) error {
	var errs []error
	if rt.Init.Kind() != initsys.KindBusybox && rt.Init.Kind() != initsys.KindUnknown {
		if err := reexecAndWait(ctx, rt); err != nil {
			errs = append(errs, fmt.Errorf("re-exec init: %w", err))
		}
	}
	for _, names := range [][]string{{"ssh", "sshd", "dropbear"}, {"systemd-udevd", "udev", "udevd", "eudev"}} {
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

// ---- release-oldroot ------------------------------------------------------

type releaseOldRoot struct{ rt *Runtime }

func (*releaseOldRoot) Name() string { return "release-oldroot" }

// The swap is done either way; a root still held is reported with its
// holders, and the admin unmounts it once they are gone.
func (*releaseOldRoot) Fatal() bool { return false }
func (*releaseOldRoot) Describe(s *State) string {
	return fmt.Sprintf("wait for the last holders of /%s (old SSH sessions) to go, unmount it, prove the filesystem is released", s.Opts.PutOld)
}
func (st *releaseOldRoot) Do(ctx context.Context, s *State) error {
	rt := st.rt
	dev := rt.Report.Root.Mount.Dev()
	old := oldRootPath(s)
	deadline := rt.Now().Add(rt.ReleaseWait)
	var last string
	for {
		hs, err := rescanHolders(rt, dev)
		if err != nil {
			return err
		}
		// Only holders in this mount namespace keep the umount from
		// succeeding. Those in namespaces of their own (sandboxed
		// services) are dealt with after it: restarted before, they
		// would clone /mnt/oldroot into their new namespace again.
		var names []string
		pid1 := false
		blocking := 0
		for _, h := range hs {
			if h.OtherNS != "" && len(h.Uses)+len(h.Writes)+len(h.Deleted) == 0 {
				continue
			}
			blocking++
			if h.PID == 1 {
				pid1 = true
			}
			names = append(names, fmt.Sprintf("%s[%d] %s", h.Comm, h.PID, h.What()))
		}
		if blocking == 0 || (pid1 && blocking == 1) {
			flags := 0
			if pid1 {
				// busybox init cannot re-exec: detach lazily; PID 1 keeps
				// the read-only filesystem alive until reboot.
				flags = unix.MNT_DETACH
				rt.logf("    PID 1 holds the old root and cannot re-exec: detaching it lazily")
			}
			unmountBelow(rt, old) // the old root's own subvolumes (btrfs /home)
			if err := rt.Mounter.Unmount(old, flags); err == nil {
				s.PastNoReturn = true
				s.Holders = nil
				if err := st.releaseNamespaces(ctx, s, dev); err != nil {
					return err
				}
				return st.proveReleased(s, pid1)
			} else if !errors.Is(err, unix.EBUSY) {
				return err
			}
		}
		if msg := strings.Join(names, "; "); msg != last {
			rt.logf("    %s is still held by: %s", old, msg)
			last = msg
		}
		s.Holders = names
		if rt.Now().After(deadline) && blocking == 0 {
			// EBUSY with no holder in sight: the reference is outside
			// this PID namespace. The filesystem is read-only; detach it
			// and say so rather than leave it in the way.
			if err := rt.Mounter.Unmount(old, unix.MNT_DETACH); err != nil {
				return err
			}
			s.PastNoReturn = true
			return fmt.Errorf("%s stayed busy with no holder visible in this PID namespace: detached lazily; the kernel frees it when the last reference goes", old)
		}
		if rt.Now().After(deadline) {
			return fmt.Errorf("%s still held after %s by: %s; log out of old sessions, then: umount %s", old, rt.ReleaseWait, last, old)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// releaseNamespaces restarts the services whose own mount namespaces
// still hold a copy of the old root (systemd's PrivateTmp=, ProtectSystem=:
// udevd, networkd, logind). Now that /mnt/oldroot is gone from ours,
// their new namespaces come without it.
func (st *releaseOldRoot) releaseNamespaces(ctx context.Context, s *State, dev uint64) error {
	rt := st.rt
	hs, err := rescanHolders(rt, dev)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	var errs []error
	for _, h := range hs {
		if h.OtherNS == "" {
			continue
		}
		svc, ok := rt.Init.ServiceOf(h.PID)
		if !ok || !svc.Restartable {
			rt.logf("    %s[%d]'s mount namespace %s holds the old filesystem and it belongs to no service", h.Comm, h.PID, h.OtherNS)
			continue
		}
		if done[svc.Name] {
			continue
		}
		done[svc.Name] = true
		rt.logf("    restarting %s: its mount namespace %s still holds the old filesystem", svc.Name, h.OtherNS)
		if err := restart(ctx, rt, svc); err != nil {
			errs = append(errs, fmt.Errorf("restart %s: %w", svc.Name, err))
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.Join(errs...)
}

// proveReleased checks that no superblock of the old filesystem is left
// (an umount "succeeds" while another mount namespace still has it).
func (st *releaseOldRoot) proveReleased(s *State, lazy bool) error {
	rt := st.rt
	name := filepath.Base(rt.Report.Root.Device)
	sysEntry := filepath.Join(rt.SysRoot, "fs/ext4", name)
	if !isExt(rt.Report.Root.FSType) || lazy {
		return nil
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_, err := os.Stat(sysEntry)
		jbd := journalThread(rt.ProcRoot, name)
		if err != nil && jbd == "" {
			rt.logf("    %s is gone and no jbd2 thread runs for %s: the old filesystem is released", sysEntry, name)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("unmounted, but %s still exists: another mount namespace holds the old filesystem (restart the services whose /proc/PID/mountinfo lists it)", sysEntry)
}
func (*releaseOldRoot) Undo(context.Context, *State) error { return nil }

// journalThread finds the kernel's jbd2 thread of device name ("jbd2/sda2-8"):
// it lives exactly as long as the mounted ext3/ext4 superblock. Kernel
// threads are visible only from the initial PID namespace; elsewhere
// this finds nothing and /sys/fs/ext4 alone decides.
func journalThread(procRoot, name string) string {
	ents, _ := os.ReadDir(procRoot)
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
		if err == nil && strings.HasPrefix(string(b), "jbd2/"+name+"-") {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}
