package mountops

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// Bind is a bind mount of the root filesystem's own directory (or of /
// itself) onto another place: "/opt/shared on /data/shared". Moved after
// the pivot, it would keep pointing into the old filesystem, which could
// then never be released; it is re-made from the new root instead.
type Bind struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	Point   string `json:"point"`   // where it is mounted: /data/shared
	Source  string `json:"source"`  // the directory of the root filesystem bound there: /opt/shared; "/" for / itself
	Options string `json:"options"` // per-mount options as mountinfo gives them: rw,nosuid,relatime
	// Propagation is "private", "shared", "slave", "slave,shared" or
	// "unbindable"; PeerOfRoot says a shared one was in the root mount's
	// own peer group (a bind of a shared mount joins it).
	Propagation string `json:"propagation"`
	PeerOfRoot  bool   `json:"peer_of_root,omitempty"`
}

// String is the bind as plan lists it:
// "/opt/shared on /data/shared (rw,nosuid,relatime; shared)".
func (b Bind) String() string {
	return fmt.Sprintf("%s on %s (%s; %s)", b.Source, b.Point, b.Options, b.Propagation)
}

// DeletedSuffix ends mountinfo's root field when the bound directory was
// deleted: such a bind has nothing left to re-make it from.
const DeletedSuffix = "//deleted"

// RootBinds lists, parents first, the bind mounts below root (the mount
// at /, or the old root's place) whose filesystem is root's and whose
// directory lies inside root's own (a mount of another btrfs subvolume
// of the same device is not one of them).
func RootBinds(t mountinfo.Table, root mountinfo.Mount) []Bind {
	var out []Bind
	for _, m := range t.Below(root.Point) {
		if m.Dev() != root.Dev() {
			continue
		}
		src, ok := within(m.Root, root.Root)
		if !ok {
			continue
		}
		b := Bind{Point: m.Point, Source: src, Options: m.Options, Propagation: PropagationOf(m)}
		b.PeerOfRoot = m.PeerGroup() != 0 && m.PeerGroup() == root.PeerGroup()
		out = append(out, b)
	}
	return out
}

// within gives dir relative to the filesystem directory top ("/@/opt" in
// "/@" is "/opt"), and whether it lies inside it.
func within(dir, top string) (string, bool) {
	if top == "/" || top == "" {
		return dir, strings.HasPrefix(dir, "/")
	}
	if dir == top {
		return "/", true
	}
	if rest, ok := strings.CutPrefix(dir, top+"/"); ok {
		return "/" + rest, true
	}
	return "", false
}

// PropagationOf names a mount's propagation from its optional fields.
func PropagationOf(m mountinfo.Mount) string {
	shared, slave, unbindable := m.Shared(), m.Master() != 0, false
	for _, o := range m.Optional {
		if o == "unbindable" {
			unbindable = true
		}
	}
	switch {
	case unbindable:
		return "unbindable"
	case shared && slave:
		return "slave,shared"
	case shared:
		return "shared"
	case slave:
		return "slave"
	}
	return "private"
}

// OptionFlags turns mountinfo's per-mount options back into MS_ flags
// (the words of Option; mountinfo has no propagation words there).
func OptionFlags(opts string) uintptr {
	var f uintptr
	for _, o := range strings.Split(opts, ",") {
		if w, ok := Option(o); ok && !w.Propagate {
			f = f&^w.Clear | w.Set
		}
	}
	return f
}

// RemakeOptions say which root the binds are re-made from.
type RemakeOptions struct {
	// SourceRoot is where the root to bind from is now: "/" after the
	// pivot; the old root's place ("/mnt/oldroot") to roll back.
	SourceRoot string
	// Leaving is the st_dev of the root being left: only a mount of it
	// at a bind's point is replaced (one already re-made is skipped).
	Leaving uint64
	// Staging is an empty directory on which a private tmpfs holds the
	// old mounts while new ones take their places.
	Staging string
	Logf    Logf
}

// Remade is what became of one Bind.
type Remade struct {
	Bind
	Old     mountinfo.Mount // the mount that was replaced
	Made    bool            // the new bind is at Point, with Options and Propagation
	Moved   []string        // mounts that sat on the old one, moved onto the new one
	Lazy    bool            // the old one was in use: detached with MNT_DETACH
	Skipped string          // why nothing was done
}

// Remake replaces each bind's mount (parents first, as RootBinds lists
// them) with a bind of the same directory of the root at SourceRoot:
//
//  1. the old mount is moved aside onto the staging tmpfs (a shared
//     parent is made private for the move, and shared again after);
//  2. the directory is bound on the point, its per-mount flags set by
//     MS_REMOUNT|MS_BIND, and the mounts that sat on the old one are
//     moved onto the new one;
//  3. its propagation is set;
//  4. once all are made, the old mounts are unmounted, children first;
//     one still in use (a process's working directory) is detached
//     lazily: its users hold the old root and are restarted anyway.
//
// t is the mount table as this thread sees it, read just before. The
// first failing call stops the work: what was done is returned with the
// error (Remake from the other root puts the made ones back).
func Remake(m Mounter, t mountinfo.Table, binds []Bind, o RemakeOptions) ([]Remade, error) {
	out := make([]Remade, len(binds))
	old := map[int]bool{} // IDs of the mounts being replaced
	for i, b := range binds {
		out[i].Bind = b
		cur, ok := t.Containing(b.Point)
		switch {
		case !ok || cur.Point != b.Point:
			out[i].Skipped = "nothing is mounted there any more"
		case cur.Dev() != o.Leaving:
			out[i].Skipped = fmt.Sprintf("the mount there (%s) is not of the root being left: already re-made?", cur)
		default:
			out[i].Old = cur
			old[cur.ID] = true
		}
	}
	if len(old) == 0 {
		return out, nil
	}
	loc := locations(t)
	if err := m.MkdirAll(o.Staging, 0o700); err != nil {
		return out, err
	}
	if err := m.Mount("rootswap-binds", o.Staging, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=700"); err != nil {
		return out, fmt.Errorf("mounting the staging tmpfs for the bind mounts: %w", err)
	}
	// Not shared, whatever its parent is: what is moved onto it must not
	// be copied into other mount namespaces.
	if err := MakePrivate(m, o.Staging, false); err != nil {
		return out, err
	}
	// All are moved aside before any is made: making a shared parent
	// private and shared again gives it a new peer group, which a new
	// bind made before would not be in.
	for i := range out {
		if out[i].Old.ID != 0 {
			if err := moveAside(m, t, loc, &out[i], i, o); err != nil {
				return out, err
			}
		}
	}
	for i := range out {
		if out[i].Old.ID != 0 {
			if err := remakeOne(m, t, loc, old, &out[i], o); err != nil {
				return out, err
			}
		}
	}
	var errs []error
	for j := len(out) - 1; j >= 0; j-- {
		r := &out[j]
		if r.Old.ID == 0 {
			continue
		}
		at := loc[r.Old.ID]
		err := m.Unmount(at, 0)
		if errors.Is(err, unix.EBUSY) {
			o.Logf.printf("the old %s is in use: detaching it lazily (its users are restarted from the new root)", r.Point)
			r.Lazy = true
			err = m.Unmount(at, unix.MNT_DETACH)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := m.Unmount(o.Staging, 0); err != nil {
		errs = append(errs, m.Unmount(o.Staging, unix.MNT_DETACH))
	}
	return out, errors.Join(errs...)
}

// moveAside moves the old mount onto the staging tmpfs, unless it went
// there already along with a parent.
func moveAside(m Mounter, t mountinfo.Table, loc map[int]string, r *Remade, i int, o RemakeOptions) error {
	b := r.Bind
	if loc[r.Old.ID] == b.Point {
		aside := filepath.Join(o.Staging, strconv.Itoa(i))
		isDir := true
		if fi, err := m.Lstat(b.Point); err == nil && !fi.IsDir() {
			isDir = false
		}
		var err error
		if isDir {
			err = m.MkdirAll(aside, 0o700)
		} else {
			err = m.CreateFile(aside, 0o600)
		}
		if err != nil {
			return err
		}
		parent, _ := t.ByID(r.Old.Parent)
		flip := parent.Shared() && loc[parent.ID] != ""
		if flip {
			if err := MakePrivate(m, loc[parent.ID], false); err != nil {
				return fmt.Errorf("making %s private to move %s aside: %w", loc[parent.ID], b.Point, err)
			}
		}
		o.Logf.printf("moving the old %s aside to %s", b.Point, aside)
		err = m.Mount(b.Point, aside, "", unix.MS_MOVE, "")
		if flip {
			if e := MakeShared(m, loc[parent.ID], false); e != nil && err == nil {
				err = fmt.Errorf("making %s shared again: %w", loc[parent.ID], e)
			}
		}
		if err != nil {
			return err
		}
		relocate(t, loc, r.Old.ID, b.Point, aside)
	}
	return nil
}

func remakeOne(m Mounter, t mountinfo.Table, loc map[int]string, old map[int]bool, r *Remade, o RemakeOptions) error {
	b := r.Bind
	// Its children are moved out from under it: it must not be shared.
	if err := MakePrivate(m, loc[r.Old.ID], false); err != nil {
		return err
	}
	src := filepath.Join(o.SourceRoot, b.Source)
	o.Logf.printf("binding %s on %s (%s; %s)", src, b.Point, b.Options, b.Propagation)
	if err := m.Mount(src, b.Point, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	r.Made = true
	if err := m.Mount("", b.Point, "", unix.MS_REMOUNT|unix.MS_BIND|OptionFlags(b.Options), ""); err != nil {
		return fmt.Errorf("setting the options of %s: %w", b.Point, err)
	}
	for _, c := range t {
		if c.Parent != r.Old.ID || old[c.ID] || c.ID == r.Old.ID {
			continue
		}
		to := b.Point + strings.TrimPrefix(c.Point, r.Old.Point)
		if _, skipped := makeMountPoint(m, loc[c.ID], to, MoveOptions{}); skipped != "" {
			return fmt.Errorf("moving %s onto the new %s: %s", c.Point, b.Point, skipped)
		}
		if err := m.Mount(loc[c.ID], to, "", unix.MS_MOVE, ""); err != nil {
			return err
		}
		relocate(t, loc, c.ID, loc[c.ID], to)
		r.Moved = append(r.Moved, to)
	}
	srcMnt, _ := t.Containing(src)
	return setPropagation(m, b, srcMnt.Shared())
}

// setPropagation gives the new bind the old one's propagation. A bind of
// a shared mount joins its peer group, which is right for a bind that
// was a peer of the root and a master for one that was its slave.
func setPropagation(m Mounter, b Bind, sourceShared bool) error {
	var kinds []uintptr
	switch b.Propagation {
	case "shared":
		if !sourceShared || !b.PeerOfRoot {
			kinds = []uintptr{unix.MS_PRIVATE, unix.MS_SHARED} // a peer group of its own
		}
	case "slave":
		kinds = []uintptr{unix.MS_SLAVE}
	case "slave,shared":
		kinds = []uintptr{unix.MS_SLAVE, unix.MS_SHARED}
	case "unbindable":
		kinds = []uintptr{unix.MS_UNBINDABLE}
	default:
		kinds = []uintptr{unix.MS_PRIVATE}
	}
	for _, k := range kinds {
		if err := m.Mount("", b.Point, "", k, ""); err != nil {
			return err
		}
	}
	return nil
}

// locations maps each mount ID to where it is now.
func locations(t mountinfo.Table) map[int]string {
	loc := make(map[int]string, len(t))
	for _, m := range t {
		loc[m.ID] = m.Point
	}
	return loc
}

// relocate records that mount id moved from one path to another, with
// every mount below it.
func relocate(t mountinfo.Table, loc map[int]string, id int, from, to string) {
	under := map[int]bool{id: true}
	for changed := true; changed; {
		changed = false
		for _, m := range t {
			if !under[m.ID] && under[m.Parent] {
				under[m.ID], changed = true, true
			}
		}
	}
	for mid := range under {
		if p := loc[mid]; p == from || strings.HasPrefix(p, strings.TrimSuffix(from, "/")+"/") {
			loc[mid] = to + strings.TrimPrefix(p, from)
		}
	}
}
