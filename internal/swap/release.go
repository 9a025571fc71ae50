package swap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// ---- release-oldroot ------------------------------------------------------

// StepRelease is the last step: the old root let go of and unmounted.
const StepRelease = "release-oldroot"

// OldRootHolder is one thing that keeps the old root from being released,
// as the journal records it and status shows it while release waits.
type OldRootHolder struct {
	PID     int    `json:"pid,omitempty"` // 0: a mount, or a reference nobody visible holds
	Comm    string `json:"comm,omitempty"`
	Service string `json:"service,omitempty"`
	// Holds says what of the old root it holds: "cwd /mnt/oldroot/home/admin",
	// "root /mnt/oldroot", "exe …", "fd 3r …", "mapping …", "mount …",
	// "mount namespace mnt:[…]".
	Holds []string `json:"holds"`
	// Action is what the engine does about it: restarting its service,
	// waiting, or nothing it can do (and why).
	Action string `json:"action"`
	// Finish is the command that lets go of it, for the admin once the
	// engine stops waiting.
	Finish string `json:"finish,omitempty"`
	// AfterUmount: only a copy in its own mount namespace holds the old
	// root; it does not stop the umount and is dealt with after it.
	AfterUmount bool `json:"after_umount,omitempty"`

	restart *initsys.Service // to be restarted now
}

func (h OldRootHolder) String() string {
	who := "the kernel"
	if h.PID > 0 {
		who = fmt.Sprintf("%s[%d]", h.Comm, h.PID)
	} else if len(h.Holds) > 0 && strings.HasPrefix(h.Holds[0], "mount /") {
		who = "a mount"
	}
	if h.Service != "" {
		who += " (" + h.Service + ")"
	}
	return fmt.Sprintf("%s %s: %s", who, strings.Join(h.Holds, ", "), h.Action)
}

type releaseOldRoot struct{ rt *Runtime }

func (*releaseOldRoot) Name() string { return StepRelease }

// The swap is done either way; a root still held is left mounted
// read-only, with its holders and the commands to finish by hand.
func (*releaseOldRoot) Fatal() bool { return false }
func (*releaseOldRoot) Describe(s *State) string {
	old := oldRootPath(s)
	return fmt.Sprintf("wait up to %s (--release-timeout) for the last holders of %s (old SSH sessions) to go, restarting the services still on it; unmount it and prove the filesystem released; after %s leave it mounted read-only and name what holds it and the commands to finish",
		s.Opts.ReleaseTimeout, old, s.Opts.ReleaseTimeout)
}
func (*releaseOldRoot) Undo(context.Context, *State) error { return nil }

func (st *releaseOldRoot) Do(ctx context.Context, s *State) error {
	rt := st.rt
	dev := s.OldRoot.Dev()
	old := oldRootPath(s)
	deadline := rt.Now().Add(s.Opts.ReleaseTimeout)
	restarted := map[string]bool{}
	var last string
	for {
		// The old root's own subvolumes (btrfs /home on @home), which
		// move-mounts left under it and mounted again from the copy, go
		// as soon as nothing uses them.
		unmountBelow(rt, old, dev)
		list, err := st.holders(s, dev, old, restarted)
		if err != nil {
			return err
		}
		blocking, pid1 := 0, false
		for _, h := range list {
			if !h.AfterUmount {
				blocking++
				pid1 = pid1 || h.PID == 1
			}
		}
		if blocking == 0 || (pid1 && blocking == 1) {
			flags := 0
			if pid1 {
				// PID 1 is re-executed only if it can be (busybox init
				// cannot): detach lazily; PID 1 keeps the read-only
				// filesystem alive until reboot.
				flags = unix.MNT_DETACH
				msg := "PID 1 still holds the old root (it cannot re-execute, or did not): detached it lazily; the read-only filesystem stays alive until the next reboot"
				rt.logf("    %s", msg)
				if rt.Journal != nil {
					rt.Journal.Add(journal.Record{Kind: journal.KindNote, Describe: msg})
				}
			}
			unmountBelow(rt, old, 0) // whatever is left below it
			err := rt.Mounter.Unmount(old, flags)
			if err == nil {
				s.PastNoReturn = true
				s.Holders, s.Finish = nil, nil
				st.record(nil, nil)
				if err := st.releaseNamespaces(ctx, s, dev); err != nil {
					return err
				}
				return st.proveReleased(s, pid1)
			}
			if !errors.Is(err, unix.EBUSY) {
				return err
			}
			if blocking == 0 {
				// Busy with nothing in sight: the reference is outside
				// this PID namespace, or the kernel's own.
				list = append(list, OldRootHolder{
					Holds:  []string{"a reference from outside this PID namespace (a container's process, a loop device or swap file on it)"},
					Action: "waiting: nothing this engine can see holds it",
					Finish: "losetup -a; swapon --show; grep " + old + " /proc/*/mountinfo   # find it",
				})
			}
		}
		s.Holders = holderStrings(list)
		if msg := strings.Join(s.Holders, "\n"); msg != last {
			rt.logf("    %s is still held by:", old)
			for _, h := range s.Holders {
				rt.logf("      %s", h)
			}
			st.record(list, nil)
			last = msg
		}
		if rt.Now().After(deadline) {
			return st.leave(s, old, list)
		}
		for _, h := range list {
			if h.restart == nil || restarted[h.restart.Name] {
				continue
			}
			restarted[h.restart.Name] = true
			rt.logf("    restarting %s: %s[%d] still runs from the old root", h.restart.Name, h.Comm, h.PID)
			if err := restart(ctx, rt, *h.restart); err != nil {
				rt.logf("    restart %s: %v", h.restart.Name, err)
			} else {
				s.Restarted = append(s.Restarted, h.restart.Name)
			}
		}
		if err := rt.sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

// canReexec: PID 1 is re-executed from the new root by reexec-init, so a
// PID 1 still on the old root is one that did not follow, not one that
// cannot.
func canReexec(rt *Runtime) bool {
	k := rt.Init.Kind()
	return k != initsys.KindBusybox && k != initsys.KindUnknown
}

// holders lists everything that still holds the old root: processes (the
// admin's session included) and mounts below it, each with what the
// engine does about it. restarted are the services this step restarted.
func (st *releaseOldRoot) holders(s *State, dev uint64, old string, restarted map[string]bool) ([]OldRootHolder, error) {
	rt := st.rt
	hs, err := allHolders(rt, dev)
	if err != nil {
		return nil, err
	}
	keep := setOf(s.Opts.Keep)
	before := setOf(s.Restarted)
	services := initsys.NewLookup(rt.Init)
	var out []OldRootHolder
	for _, h := range hs {
		o := OldRootHolder{PID: h.PID, Comm: h.Comm, Holds: holds(h)}
		o.AfterUmount = h.OtherNS != "" && len(h.Uses)+len(h.Writes)+len(h.Deleted) == 0
		svc, hasSvc := services.ServiceOf(h.PID)
		if hasSvc {
			o.Service = svc.Name
		}
		kill := fmt.Sprintf("kill %d   # %s", h.PID, h.Comm)
		switch {
		case rt.Session[h.PID]:
			o.Action = "waiting: the SSH session that started run; log out of it"
			o.Finish = fmt.Sprintf("kill -HUP %d   # %s of the old SSH session (or log out of it)", h.PID, h.Comm)
		case h.PID == 1 && canReexec(rt):
			o.Action = "waiting: PID 1 did not re-execute from the new root; the old root is detached lazily once it is the last holder"
			o.Finish = "rootswap telinit-u   # re-execute PID 1 from the new root"
		case h.PID == 1:
			o.Action = "waiting: PID 1 cannot re-execute; the old root is detached lazily once it is the last holder"
		case o.AfterUmount && hasSvc && svc.Restartable && !keep[svc.Name]:
			o.Action = "restarted after the umount: only a copy in its own mount namespace holds the old root"
			o.Finish = restartCommand(svc)
		case o.AfterUmount:
			o.Action = "nothing the engine can do: a copy in its own mount namespace holds the old root, and it " + noRestart(svc, hasSvc, keep)
			o.Finish = kill
		case hasSvc && svc.Restartable && keep[svc.Name]:
			o.Action = "nothing the engine can do: --keep " + svc.Name
			o.Finish = restartCommand(svc)
		case hasSvc && svc.Restartable && restarted[svc.Name]:
			o.Action = "restarted " + svc.Name + "; this process stayed on the old root: waiting for it to exit"
			o.Finish = kill
		case hasSvc && svc.Restartable && before[svc.Name]:
			o.Action = svc.Name + " was restarted from the new root; this process outlived it: waiting for it to exit"
			o.Finish = kill
		case hasSvc && svc.Restartable:
			o.Action = "restarting " + svc.Name
			o.Finish = restartCommand(svc)
			o.restart = &svc
		case hasSvc && svc.Manual != "":
			// A runit/s6 tree nothing here can restart: the admin's
			// command says what would.
			o.Action = "nothing the engine can do: it " + noRestart(svc, hasSvc, keep) + "; waiting for it to exit"
			o.Finish = svc.Manual
		default:
			o.Action = "nothing the engine can do: it " + noRestart(svc, hasSvc, keep) + "; waiting for it to exit"
			o.Finish = kill
		}
		out = append(out, o)
	}
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return nil, err
	}
	below := t.Below(old)
	for i := len(below) - 1; i >= 0; i-- { // children first, as umount wants them
		m := below[i]
		action := "nothing the engine can do: a mount below the old root, left in place"
		if m.Dev() == dev {
			action = "the old root's own filesystem (mounted again from the copy): unmounted as soon as nothing uses it"
		}
		out = append(out, OldRootHolder{
			Holds:  []string{"mount " + m.Point + " (" + m.FSType + " from " + m.Source + ")"},
			Action: action,
			Finish: "umount " + m.Point,
		})
	}
	return out, nil
}

func noRestart(svc initsys.Service, hasSvc bool, keep map[string]bool) string {
	switch {
	case !hasSvc:
		return "belongs to no service"
	case keep[svc.Name]:
		return "belongs to " + svc.Name + ", which --keep keeps"
	}
	return "belongs to " + svc.String() + ", which cannot be restarted"
}

// holds says what a process holds of the filesystem: one entry of each
// kind, with how many more of that kind there are.
func holds(h Holder) []string {
	kinds := []string{"cwd", "root", "exe", "fd", "mapping"}
	byKind := map[string][]string{}
	add := func(e string, deleted bool) {
		kind, rest, _ := strings.Cut(e, " ")
		switch kind {
		case "cwd":
		case "rtd":
			kind = "root"
		case "txt":
			kind = "exe"
		case "mem", "DEL":
			kind = "mapping"
		default:
			kind, rest = "fd", e
		}
		if deleted {
			rest += " (deleted)"
		}
		byKind[kind] = append(byKind[kind], rest)
	}
	for _, e := range h.Writes {
		add(e, false)
	}
	for _, e := range h.Deleted {
		add(e, true)
	}
	for _, e := range h.Uses {
		add(e, false)
	}
	var out []string
	for _, k := range kinds {
		if l := byKind[k]; len(l) > 0 {
			out = append(out, k+" "+l[0]+more(len(l)))
		}
	}
	if h.OtherNS != "" {
		out = append(out, "mount namespace "+h.OtherNS)
	}
	return out
}

// restartCommand is how the admin restarts svc by hand: what the
// service says (a runit/s6 tree: take it down, start it again), else
// its manager's restart.
func restartCommand(svc initsys.Service) string {
	if svc.Manual != "" {
		return svc.Manual
	}
	switch svc.Kind {
	case initsys.ServiceUnit:
		return "systemctl restart " + svc.Name
	case initsys.InitDScript:
		return "/etc/init.d/" + svc.Name + " restart"
	case initsys.OpenRCService:
		return "rc-service " + svc.Name + " restart"
	}
	return "restart " + svc.Name + "   # with its service manager"
}

func holderStrings(list []OldRootHolder) []string {
	out := make([]string, 0, len(list))
	for _, h := range list {
		out = append(out, h.String())
	}
	return out
}

// record journals the holders (and, at the end, the commands to finish),
// so that status can show them while the engine waits.
func (st *releaseOldRoot) record(list []OldRootHolder, finish []string) {
	if st.rt.Journal == nil {
		return
	}
	h, _ := json.Marshal(list)
	data := map[string]string{"holders": string(h)}
	if finish != nil {
		f, _ := json.Marshal(finish)
		data["finish"] = string(f)
	}
	st.rt.Journal.Add(journal.Record{Kind: journal.KindHolders, Step: StepRelease, Data: data})
}

// finishCommands are what the admin runs to finish the release: let go
// of every blocking holder, unmount, then restart what only held a copy
// in its own mount namespace.
func finishCommands(list []OldRootHolder, old string, lazy bool) []string {
	var out []string
	seen := map[string]bool{}
	add := func(c string) {
		if c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	for _, h := range list {
		if !h.AfterUmount {
			add(h.Finish)
		}
	}
	if lazy {
		add("umount -l " + old + "   # PID 1 keeps the read-only filesystem until the next reboot")
	} else {
		add("umount " + old)
	}
	for _, h := range list {
		if h.AfterUmount {
			add(h.Finish)
		}
	}
	return out
}

// leave ends the wait: the old root stays mounted, read-only, and the
// swap succeeds with a warning that names what holds it and the commands
// that finish the release.
func (st *releaseOldRoot) leave(s *State, old string, list []OldRootHolder) error {
	rt := st.rt
	lazy := false
	for _, h := range list {
		lazy = lazy || h.PID == 1
	}
	ro := st.readOnly(old)
	finish := finishCommands(list, old, lazy)
	s.Holders, s.Finish = holderStrings(list), finish
	warn := fmt.Sprintf("WARNING: %s is still mounted (%s) after --release-timeout %s: %d holder(s) did not let go. The new root runs; to finish by hand: %s",
		old, ro, s.Opts.ReleaseTimeout, len(list), strings.Join(finish, "; "))
	rt.logf("!!! %s is still mounted (%s) after --release-timeout %s; held by:", old, ro, s.Opts.ReleaseTimeout)
	for _, h := range s.Holders {
		rt.logf("      %s", h)
	}
	rt.logf("!!! to finish by hand:")
	for _, c := range finish {
		rt.logf("      %s", c)
	}
	st.record(list, finish)
	if rt.Journal != nil {
		rt.Journal.Add(journal.Record{Kind: journal.KindNote, Describe: warn})
	}
	return nil
}

// readOnly makes sure the old root left mounted is read-only (remount-ro
// made it so; nothing since should have changed that) and says how it is.
func (st *releaseOldRoot) readOnly(old string) string {
	rt := st.rt
	t, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return "read-only state unknown: " + err.Error()
	}
	for i := len(t) - 1; i >= 0; i-- {
		m := t[i]
		if m.Point != old {
			continue
		}
		if hasOpt(m.SuperOptions, "ro") {
			return "read-only"
		}
		if err := rt.Mounter.Mount("", old, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return "READ-WRITE: " + err.Error()
		}
		return "read-only, remounted so now"
	}
	return "no longer in the mount table"
}

func hasOpt(opts, o string) bool {
	for _, x := range strings.Split(opts, ",") {
		if x == o {
			return true
		}
	}
	return false
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
	services := initsys.NewLookup(rt.Init)
	for _, h := range hs {
		if h.OtherNS == "" {
			continue
		}
		svc, ok := services.ServiceOf(h.PID)
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
		services = initsys.NewLookup(rt.Init) // the restart rewrote pidfiles
		rt.sleep(ctx, 200*time.Millisecond)
	}
	return errors.Join(errs...)
}

// proveReleased checks that no superblock of the old filesystem is left
// (an umount "succeeds" while another mount namespace still has it).
func (st *releaseOldRoot) proveReleased(s *State, lazy bool) error {
	rt := st.rt
	name := filepath.Base(rt.Report.Root.Device)
	sysEntry := filepath.Join(rt.SysRoot, "fs/ext4", name)
	if !fstools.IsExt(rt.Report.Root.FSType) || lazy {
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

// journalThread finds the kernel's jbd2 thread of device name ("jbd2/sda2-8"):
// it lives exactly as long as the mounted ext3/ext4 superblock. Kernel
// threads are visible only from the initial PID namespace; elsewhere
// this finds nothing and /sys/fs/ext4 alone decides.
func journalThread(procRoot, name string) string {
	ents, _ := os.ReadDir(procRoot)
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
		if err == nil && strings.HasPrefix(string(b), "jbd2/"+name+"-") {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}
