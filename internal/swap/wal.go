package swap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
	"golang.org/x/sys/unix"
)

// wal is the write-ahead half of the journal: every mount(2), umount2(2)
// and pivot_root(2) a step makes is preceded by an intent record (with the
// state as it is then) and followed by its outcome, so that a SIGKILL at
// any point leaves a journal that says what may have happened; rollback
// from a new session settles the one operation without an outcome by the
// live mount table (replayIntents).
type wal struct {
	j     *journal.Journal
	step  string
	undo  bool
	s     *State
	count map[string]int // operations of each kind in this step, for fault points
	// fault, when set, is asked after each operation and before its
	// outcome is written, with a point named STEP/OP#N ("pivot/pivot#1",
	// "move-mounts/move#2"): the root tests hang the engine there and
	// kill it.
	fault func(point string) error
}

// enter is called by the engine before a step's Do or Undo.
func (w *wal) enter(step string, undo bool, s *State) {
	w.step, w.undo, w.s, w.count = step, undo, s, map[string]int{}
}

// walMounter journals the Mounter calls that change the mount table, and
// the recursive MS_PRIVATE that takes systemd's shared propagation away
// (its intent holds State.Shared, so a rollback after a kill before
// pivot_root still knows what to make shared again); other propagation
// changes are taken back by the steps themselves and are not journaled.
type walMounter struct {
	mountops.Mounter
	w *wal
}

const propagationFlags = unix.MS_PRIVATE | unix.MS_SHARED | unix.MS_SLAVE | unix.MS_UNBINDABLE

func (m *walMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	op := "mount"
	switch {
	case flags == unix.MS_REC|unix.MS_PRIVATE:
		op = "private"
	case flags&propagationFlags != 0:
		return m.Mounter.Mount(source, target, fstype, flags, data)
	case flags&unix.MS_MOVE != 0:
		op = "move"
	case flags&unix.MS_REMOUNT != 0:
		op = "remount"
	}
	return m.w.do(op, source, target, flags, func() error { return m.Mounter.Mount(source, target, fstype, flags, data) })
}

func (m *walMounter) Unmount(target string, flags int) error {
	return m.w.do("unmount", "", target, 0, func() error { return m.Mounter.Unmount(target, flags) })
}

func (m *walMounter) PivotRoot(newroot, putold string) error {
	return m.w.do("pivot", newroot, putold, 0, func() error { return m.Mounter.PivotRoot(newroot, putold) })
}

// do writes the intent, makes the call, writes the outcome. Going forward,
// an intent that cannot be written stops the operation: nothing is done
// that the journal does not know of. An undo goes on without it: rollback
// must not stop half-way for a full tmpfs. A failed outcome write is kept
// by the journal (TakeErr), and the engine fails the step on it.
func (w *wal) do(op, source, target string, flags uintptr, call func() error) error {
	if w == nil || w.j == nil || w.step == "" {
		return call()
	}
	w.count[op]++
	data := map[string]string{"op": op, "source": source, "target": target}
	if flags != 0 {
		data["flags"] = mountops.FlagNames(flags)
	}
	if w.undo {
		data["undo"] = "1"
	}
	if w.s != nil {
		data["state"] = w.s.Marshal()
	}
	intent := journal.Record{Kind: journal.KindIntent, Step: w.step, Describe: op + " " + source + " " + target, Data: data}
	if err := w.j.Add(intent); err != nil && !w.undo {
		return fmt.Errorf("%s %s: not done: the journal cannot record it first: %w", op, target, err)
	}
	err := call()
	if w.fault != nil {
		w.fault(w.step + "/" + op + "#" + strconv.Itoa(w.count[op]))
	}
	out := journal.Record{Kind: journal.KindOutcome, Step: w.step, Data: map[string]string{"op": op, "target": target}}
	if err != nil {
		out.Err = err.Error()
	}
	w.j.Add(out)
	return err
}

// replayIntents brings state, saved at the last step boundary or intent,
// up to date with the operations of the step that was running when the
// engine died. recs are the records after that step's begin (or undo)
// record; t is the live mount table, which settles an operation whose
// outcome was never written. It returns what it settled so, for the admin.
func replayIntents(s *State, step string, recs []journal.Record, t mountinfo.Table) []string {
	var notes []string
	for i, r := range recs {
		if r.Kind != journal.KindIntent {
			continue
		}
		done, settled := false, false
		for _, o := range recs[i+1:] {
			if o.Kind == journal.KindIntent {
				break
			}
			if o.Kind == journal.KindOutcome {
				done, settled = o.Err == "", true
				break
			}
		}
		if !settled {
			done = liveDone(s, r.Data, t)
			notes = append(notes, fmt.Sprintf("%s: killed before its outcome was written; the mount table says done: %v", r.Describe, done))
		}
		applyOp(s, step, r.Data, done)
	}
	return notes
}

// isMountPoint says whether t has a mount at exactly p.
func isMountPoint(t mountinfo.Table, p string) (mountinfo.Mount, bool) {
	m, ok := t.Containing(p)
	return m, ok && m.Point == p
}

// liveDone tells, from the mount table, whether an operation (an intent
// record's data) the engine was killed in took place.
func liveDone(s *State, d map[string]string, t mountinfo.Table) bool {
	m, ok := isMountPoint(t, d["target"])
	switch d["op"] {
	case "pivot":
		return pivotedLive(s, t) != (d["undo"] != "")
	case "move":
		_, still := isMountPoint(t, d["source"])
		return !still
	case "mount":
		return ok
	case "unmount":
		return !ok
	case "remount":
		return ok && m.ReadOnly() == strings.Contains(d["flags"], "MS_RDONLY")
	}
	return false
}

// pivotedLive: after the pivot, the old root's filesystem is mounted at
// /PUTOLD; before it (and after the pivot back) nothing is.
func pivotedLive(s *State, t mountinfo.Table) bool {
	m, ok := isMountPoint(t, oldRootPath(s))
	return ok && m.Dev() == s.OldRoot.Dev()
}

// applyOp changes s as the step would have after the operation. Each
// change is idempotent: the state may already hold it.
func applyOp(s *State, step string, d map[string]string, done bool) {
	op, target, undo := d["op"], d["target"], d["undo"] != ""
	if !done {
		if step == stepUnmountExtra && op == "unmount" && !undo {
			// The step lists a mount before unmounting it: one still
			// mounted must not be mounted a second time by the undo.
			for i, m := range s.Unmounted {
				if m.Point == target {
					s.Unmounted = append(s.Unmounted[:i:i], s.Unmounted[i+1:]...)
					break
				}
			}
		}
		return
	}
	switch step + " " + op {
	case StepPivot + " pivot":
		s.Pivoted = !undo
	case StepMoveMounts + " move":
		if undo {
			target = d["source"]
		}
		s.Moved = setMember(s.Moved, target, !undo)
	case StepMoveMounts + " mount", StepMoveMounts + " unmount":
		s.Remounted = setMember(s.Remounted, target, op == "mount")
	case StepRemountRO + " remount":
		s.ReadOnly = !undo
	case stepMountNew + " mount", stepMountNew + " unmount":
		s.Mounted = op == "mount"
	}
}

// setMember adds p to l (once, at the end: the order is the undo's) or
// takes it out.
func setMember(l []string, p string, in bool) []string {
	if !in {
		return slices.DeleteFunc(l, func(x string) bool { return x == p })
	}
	if !slices.Contains(l, p) {
		l = append(l, p)
	}
	return l
}
