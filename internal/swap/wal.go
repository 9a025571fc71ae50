package swap

import (
	"fmt"
	"strconv"

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

// walMounter journals the Mounter calls that change the mount table;
// propagation changes (MS_PRIVATE, MS_SHARED) are taken back by the
// steps themselves and are not journaled.
type walMounter struct {
	mountops.Mounter
	w *wal
}

const propagationFlags = unix.MS_PRIVATE | unix.MS_SHARED | unix.MS_SLAVE | unix.MS_UNBINDABLE

func (m walMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	op := "mount"
	switch {
	case flags&propagationFlags != 0:
		return m.Mounter.Mount(source, target, fstype, flags, data)
	case flags&unix.MS_MOVE != 0:
		op = "move"
	case flags&unix.MS_REMOUNT != 0:
		op = "remount"
	}
	return m.w.do(op, source, target, flags, func() error { return m.Mounter.Mount(source, target, fstype, flags, data) })
}

func (m walMounter) Unmount(target string, flags int) error {
	return m.w.do("unmount", "", target, 0, func() error { return m.Mounter.Unmount(target, flags) })
}

func (m walMounter) PivotRoot(newroot, putold string) error {
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

// walOp is one journaled operation as rollback reads it back.
type walOp struct {
	op, source, target, flags string
	undo                      bool
	outcome                   bool // an outcome record follows
	err                       string
}

// replayIntents brings state, saved at the last step boundary or intent,
// up to date with the operations of the step that was running when the
// engine died. recs are the records after that step's begin (or undo)
// record; t is the live mount table, which settles an operation whose
// outcome was never written. It returns what it changed, for the admin.
func replayIntents(s *State, step string, recs []journal.Record, t mountinfo.Table) []string {
	var ops []walOp
	for _, r := range recs {
		switch r.Kind {
		case journal.KindIntent:
			ops = append(ops, walOp{op: r.Data["op"], source: r.Data["source"], target: r.Data["target"], flags: r.Data["flags"], undo: r.Data["undo"] == "1"})
		case journal.KindOutcome:
			if n := len(ops); n > 0 && !ops[n-1].outcome && ops[n-1].target == r.Data["target"] {
				ops[n-1].outcome, ops[n-1].err = true, r.Err
			}
		}
	}
	var notes []string
	for _, o := range ops {
		done := o.outcome && o.err == ""
		if !o.outcome {
			done = liveDone(s, o, t)
			notes = append(notes, fmt.Sprintf("%s %s: killed before its outcome was written; the mount table says it was done: %v", o.op, o.target, done))
		}
		applyOp(s, step, o, done)
	}
	return notes
}

// isMountPoint says whether t has a mount at exactly p.
func isMountPoint(t mountinfo.Table, p string) (mountinfo.Mount, bool) {
	m, ok := t.Containing(p)
	return m, ok && m.Point == p
}

// liveDone tells, from the mount table, whether an operation the engine
// was killed in took place.
func liveDone(s *State, o walOp, t mountinfo.Table) bool {
	switch o.op {
	case "pivot":
		return pivotedLive(s, t) != o.undo
	case "move":
		_, still := isMountPoint(t, o.source)
		return !still
	case "mount":
		_, ok := isMountPoint(t, o.target)
		return ok
	case "unmount":
		_, ok := isMountPoint(t, o.target)
		return !ok
	case "remount":
		m, ok := isMountPoint(t, o.target)
		return ok && m.ReadOnly() == (o.flags != "" && containsWord(o.flags, "MS_RDONLY"))
	}
	return false
}

// pivotedLive: after the pivot, the old root's filesystem is mounted at
// /PUTOLD; before it (and after the pivot back) nothing is.
func pivotedLive(s *State, t mountinfo.Table) bool {
	m, ok := isMountPoint(t, oldRootPath(s))
	return ok && m.Dev() == s.OldRoot.Dev()
}

func containsWord(flags, w string) bool {
	for i := 0; i+len(w) <= len(flags); i++ {
		if flags[i:i+len(w)] == w && (i+len(w) == len(flags) || flags[i+len(w)] == '|') {
			return true
		}
	}
	return false
}

// applyOp changes s as the step would have after the operation. Each
// change is idempotent: the state may already hold it.
func applyOp(s *State, step string, o walOp, done bool) {
	switch {
	case o.op == "pivot" && done:
		s.Pivoted = !o.undo
	case step == StepMoveMounts && o.op == "move" && done && !o.undo:
		s.Moved = addOnce(s.Moved, o.target)
	case step == StepMoveMounts && o.op == "move" && done:
		s.Moved = remove(s.Moved, o.source)
	case step == StepMoveMounts && o.op == "mount" && done:
		s.Remounted = addOnce(s.Remounted, o.target)
	case step == StepMoveMounts && o.op == "unmount" && done:
		s.Remounted = remove(s.Remounted, o.target)
	case step == StepRemountRO && o.op == "remount" && done:
		s.ReadOnly = !o.undo
	case step == stepMountNew && o.op == "mount" && done:
		s.Mounted = true
	case step == stepMountNew && o.op == "unmount" && done:
		s.Mounted = false
	case step == stepUnmountExtra && o.op == "unmount" && !done && !o.undo:
		// The step lists a mount before unmounting it: one still mounted
		// must not be mounted a second time by the undo.
		for i, m := range s.Unmounted {
			if m.Point == o.target {
				s.Unmounted = append(s.Unmounted[:i:i], s.Unmounted[i+1:]...)
				break
			}
		}
	}
}

func addOnce(l []string, p string) []string {
	for _, x := range l {
		if x == p {
			return l
		}
	}
	return append(l, p)
}

func remove(l []string, p string) []string {
	out := l[:0:0]
	for _, x := range l {
		if x != p {
			out = append(out, x)
		}
	}
	return out
}
