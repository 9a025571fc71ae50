package mountops

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// Logf receives what an operation is about to do, before it does it. A
// nil Logf is quiet.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// The reasons pivot_root(2) gives EINVAL and EBUSY, in an admin's words.
const (
	WhyShared       = "/ or NEWROOT has shared propagation (made it private?)"
	WhyNotMount     = "NEWROOT is not a mount point"
	WhyNotUnder     = "PUTOLD is not under NEWROOT"
	WhyRootNotMount = "the current root is not a mount point (initramfs rootfs: pivot_root does not work there; rootswap needs a real root mount)"
	WhyBusy         = "NEWROOT or PUTOLD is the current root / already has something mounted"
)

// Pivot makes the mount at newroot the root and puts the old root at
// putold, the way runc does it and the manual procedure did
// ("cd /mnt/newroot; pivot_root . mnt/oldroot"):
//
//  1. check, changing nothing: newroot is a mount point and not /, putold
//     lies below it and has nothing mounted on it;
//  2. make / recursively private (pivot_root refuses shared mounts);
//  3. create putold if it is missing;
//  4. chdir(newroot), pivot_root(".", putold relative to newroot),
//     chdir("/").
//
// t is the mount table as this thread sees it, read just before. Every
// process whose root or working directory was the old root follows
// pivot_root to the new one; what else they have open stays on the old
// root until they are restarted.
//
// The same function rolls back: see PivotBack.
func Pivot(m Mounter, t mountinfo.Table, newroot, putold string, logf Logf) error {
	newroot, putold = filepath.Clean(newroot), filepath.Clean(putold)
	if err := checkPivot(m, t, newroot, putold); err != nil {
		return err
	}

	root, _ := t.Containing("/")
	var shared []string
	for _, mt := range t {
		if mt.Shared() {
			shared = append(shared, mt.Point)
		}
	}
	switch {
	case root.Shared():
		logf.printf("making / propagation private, recursively (was shared: / is shared:%d, %d of %d mounts shared)", root.PeerGroup(), len(shared), len(t))
	case len(shared) > 0:
		logf.printf("making / propagation private, recursively (/ was private; %d of %d mounts shared)", len(shared), len(t))
	default:
		logf.printf("making / propagation private, recursively (already private)")
	}
	if err := MakePrivate(m, "/", true); err != nil {
		return fmt.Errorf("making / private before pivot_root: %w", err)
	}
	t = privateCopy(t)

	if _, err := m.Lstat(putold); isNotExist(err) {
		logf.printf("creating %s (PUTOLD did not exist)", putold)
		if err := m.MkdirAll(putold, 0o755); err != nil {
			return fmt.Errorf("creating PUTOLD: %w", err)
		}
	} else if err != nil {
		return err
	}

	logf.printf("pivot_root into %s: it becomes /, the old root goes to %s", newroot, strings.TrimPrefix(putold, newroot))
	return pivotRoot(m, t, newroot, putold)
}

// PivotBack is the rollback of Pivot: the old root, now at oldroot
// ("/mnt/oldroot"), becomes / again and the new root goes back to where
// it was mounted before (newrootWas, "/mnt/newroot", a directory that the
// old root still has). It is Pivot with the roles swapped:
//
//	Pivot(m, t, "/mnt/oldroot", "/mnt/oldroot/mnt/newroot", logf)
//
// After it, the submounts are below /mnt/newroot (they had been moved onto
// the new root), and MoveSubmounts(m, t, "/mnt/newroot", opts) with a
// freshly read t moves them back under / - the same call as after the
// forward pivot, with the new root's place as OLDROOT.
func PivotBack(m Mounter, t mountinfo.Table, oldroot, newrootWas string, logf Logf) error {
	if !filepath.IsAbs(newrootWas) {
		return fmt.Errorf("pivot back: %q: the new root's old place must be an absolute path", newrootWas)
	}
	return Pivot(m, t, oldroot, filepath.Join(oldroot, newrootWas), logf)
}

// checkPivot refuses, before anything is changed, what pivot_root would
// refuse with an errno that says little.
func checkPivot(m Mounter, t mountinfo.Table, newroot, putold string) error {
	switch {
	case !filepath.IsAbs(newroot) || !filepath.IsAbs(putold):
		return fmt.Errorf("pivot: NEWROOT %q and PUTOLD %q must be absolute paths", newroot, putold)
	case newroot == "/":
		return fmt.Errorf("pivot: NEWROOT is / (the current root)")
	case !strings.HasPrefix(putold, newroot+"/"):
		return fmt.Errorf("pivot: PUTOLD %s is not under NEWROOT %s", putold, newroot)
	}
	fi, err := m.Lstat(newroot)
	if err != nil {
		return fmt.Errorf("pivot: NEWROOT: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("pivot: NEWROOT %s is not a directory", newroot)
	}
	if nm, ok := t.Containing(newroot); !ok || nm.Point != newroot {
		return fmt.Errorf("pivot: NEWROOT %s is not a mount point; mount the new root there first", newroot)
	}
	if pm, ok := t.Containing(putold); ok && pm.Point == putold {
		return fmt.Errorf("pivot: PUTOLD %s already has something mounted on it (%s); unmount it or choose another PUTOLD", putold, pm)
	}
	if fi, err := m.Lstat(putold); err == nil && !fi.IsDir() {
		return fmt.Errorf("pivot: PUTOLD %s is not a directory", putold)
	}
	return nil
}

// pivotRoot is the bare step: enter newroot, pivot_root(".", putold
// relative), chdir("/"). It assumes propagation was dealt with; errors
// are explained from t.
func pivotRoot(m Mounter, t mountinfo.Table, newroot, putold string) error {
	rel := strings.TrimPrefix(putold, newroot+"/")
	if err := m.Chdir(newroot); err != nil {
		return fmt.Errorf("entering NEWROOT: %w", err)
	}
	if err := m.PivotRoot(".", rel); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Dir = newroot
			e.Hint = explainPivot(e.Err, t, newroot, putold)
		}
		// Nothing moved; leave the working directory where it was found
		// as far as possible.
		_ = m.Chdir("/")
		return err
	}
	if err := m.Chdir("/"); err != nil {
		return fmt.Errorf("after pivot_root: %w", err)
	}
	return nil
}

// explainPivot names the likely cause of a pivot_root errno, from the
// mount table as it was: the kernel's reasons for EINVAL are many (see
// pivot_root(2)) and it does not say which one it hit. When the table
// shows none, all are listed.
func explainPivot(errno error, t mountinfo.Table, newroot, putold string) string {
	switch {
	case errors.Is(errno, unix.EBUSY):
		return WhyBusy
	case errors.Is(errno, unix.EPERM):
		return "needs CAP_SYS_ADMIN in the mount namespace's user namespace"
	case !errors.Is(errno, unix.EINVAL):
		return ""
	}
	var why []string
	root, _ := t.Containing("/")
	newMnt, _ := t.Containing(newroot)
	putMnt, _ := t.Containing(putold)
	rootParent, _ := t.ByID(root.Parent)
	newParent, _ := t.ByID(newMnt.Parent)
	// The kernel's test: the mount holding put_old, and the parents of
	// new_root's and the root's mounts must not be shared.
	if putMnt.Shared() || newParent.Shared() || rootParent.Shared() {
		why = append(why, WhyShared)
	}
	if newMnt.Point != newroot {
		why = append(why, WhyNotMount)
	}
	if !strings.HasPrefix(putold, newroot+"/") {
		why = append(why, WhyNotUnder)
	}
	// The namespace's absolute root is its own parent; rootfs is never
	// mounted on anything.
	if root.Parent == root.ID || root.FSType == "rootfs" {
		why = append(why, WhyRootNotMount)
	}
	if len(why) == 0 {
		why = []string{WhyShared, WhyNotMount, WhyNotUnder, WhyRootNotMount}
	}
	return strings.Join(why, "; or ")
}

// privateCopy is t as it is after MakePrivate("/", recursive): no mount
// shared, slave or unbindable, so that an error explanation does not
// blame propagation that is gone.
func privateCopy(t mountinfo.Table) mountinfo.Table {
	out := make(mountinfo.Table, len(t))
	for i, m := range t {
		m.Optional = nil
		out[i] = m
	}
	return out
}
