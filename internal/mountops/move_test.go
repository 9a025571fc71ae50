package mountops

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

type moveSummary struct {
	from, to string
	children string
	created  bool
	skipped  bool
	done     bool
}

func summarize(moves []Move) []moveSummary {
	var out []moveSummary
	for _, m := range moves {
		out = append(out, moveSummary{m.From, m.To, strings.Join(m.Children, " "), m.Created, m.Skipped != "", m.Done})
	}
	return out
}

func compareMoves(t *testing.T, got []Move, want []moveSummary) {
	t.Helper()
	g := summarize(got)
	if !slices.Equal(g, want) {
		t.Errorf("moves:\n got %+v\nwant %+v", g, want)
	}
}

// The systemd host after pivot_root: six top-level submounts, each moved
// once, children carried along, parents before children in kernel order.
func TestMoveSubmountsAfterPivot(t *testing.T) {
	tab := readTable(t, "systemd-after-pivot.mountinfo")
	f := &Fake{}
	moves, err := MoveSubmounts(f, tab, "/mnt/oldroot", MoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, []string{
		`mount("/mnt/oldroot/sys", "/sys", "", MS_MOVE, "")`,
		`mount("/mnt/oldroot/proc", "/proc", "", MS_MOVE, "")`,
		`mount("/mnt/oldroot/dev", "/dev", "", MS_MOVE, "")`,
		`mount("/mnt/oldroot/run", "/run", "", MS_MOVE, "")`,
		`mount("/mnt/oldroot/boot", "/boot", "", MS_MOVE, "")`,
		`mount("/mnt/oldroot/var/log", "/var/log", "", MS_MOVE, "")`,
	})
	compareMoves(t, moves, []moveSummary{
		{"/mnt/oldroot/sys", "/sys", "/sys/kernel/security /sys/fs/cgroup /sys/fs/bpf", false, false, true},
		{"/mnt/oldroot/proc", "/proc", "/proc/sys/fs/binfmt_misc", false, false, true},
		{"/mnt/oldroot/dev", "/dev", "/dev/pts /dev/shm /dev/mqueue /dev/hugepages", false, false, true},
		{"/mnt/oldroot/run", "/run", "/run/lock /run/user/0", false, false, true},
		{"/mnt/oldroot/boot", "/boot", "", false, false, true},
		{"/mnt/oldroot/var/log", "/var/log", "", false, false, true},
	})
	if moves[1].Mount.FSType != "proc" {
		t.Errorf("moves[1].Mount = %v, want the proc mount", moves[1].Mount)
	}
}

func TestMoveSubmountsDryRunCallsNothing(t *testing.T) {
	tab := readTable(t, "systemd-after-pivot.mountinfo")
	f := &Fake{Missing: map[string]bool{"/var/log": true}}
	moves, err := MoveSubmounts(f, tab, "/mnt/oldroot/", MoveOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, nil)
	if len(moves) != 6 || moves[5].To != "/var/log" || !moves[5].Created || moves[5].Done {
		t.Errorf("dry run plan = %+v, want 6 moves, /var/log to be created, none done", summarize(moves))
	}
}

func TestMoveSubmountsMissingMountPoint(t *testing.T) {
	tab := readTable(t, "systemd-after-pivot.mountinfo")
	f := &Fake{Missing: map[string]bool{"/var/log": true, "/var": true}}
	moves, err := MoveSubmounts(f, tab, "/mnt/oldroot", MoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	calls := f.Strings()
	want := []string{
		`mkdir("/var/log", 0755)`,
		`mount("/mnt/oldroot/var/log", "/var/log", "", MS_MOVE, "")`,
	}
	if len(calls) != 7 || !slices.Equal(calls[5:], want) {
		t.Errorf("calls end with %q, want %q", calls, want)
	}
	if !moves[5].Created || !moves[5].Done {
		t.Errorf("/var/log move = %+v, want created and done", moves[5])
	}

	// A file bind mount (resolv.conf) gets an empty file, not a directory.
	tab = append(slices.Clone(tab), mountinfo.Mount{ID: 50, Parent: 29, Point: "/mnt/oldroot/etc/resolv.conf", FSType: "tmpfs", Source: "tmpfs"})
	f = &Fake{Missing: map[string]bool{"/etc/resolv.conf": true}, Files: map[string]bool{"/mnt/oldroot/etc/resolv.conf": true}}
	if _, err := MoveSubmounts(f, tab, "/mnt/oldroot", MoveOptions{}); err != nil {
		t.Fatal(err)
	}
	calls = f.Strings()
	want = []string{
		`mkdir("/etc", 0755)`,
		`create("/etc/resolv.conf", 0644)`,
		`mount("/mnt/oldroot/etc/resolv.conf", "/etc/resolv.conf", "", MS_MOVE, "")`,
	}
	if len(calls) < 3 || !slices.Equal(calls[len(calls)-3:], want) {
		t.Errorf("calls end with %q, want %q", calls, want)
	}
}

func TestMoveSubmountsNoMkdirSkipsAndGoesOn(t *testing.T) {
	tab := readTable(t, "systemd-after-pivot.mountinfo")
	f := &Fake{Missing: map[string]bool{"/boot": true}}
	moves, err := MoveSubmounts(f, tab, "/mnt/oldroot", MoveOptions{NoMkdir: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Calls {
		if c.Target == "/boot" {
			t.Errorf("call %s for a skipped mount", c)
		}
	}
	if len(f.Calls) != 5 {
		t.Errorf("%d calls, want the 5 other moves: %q", len(f.Calls), f.Strings())
	}
	if got := moves[4].Skipped; !strings.Contains(got, "mount point /boot is missing in the new root") {
		t.Errorf("/boot skipped = %q, want it to name the missing mount point", got)
	}
}

func TestMoveSubmountsStopsAtFirstFailure(t *testing.T) {
	tab := readTable(t, "systemd-after-pivot.mountinfo")
	f := &Fake{Fail: func(c Call) error {
		if c.Target == "/dev" {
			return unix.EINVAL
		}
		return nil
	}}
	moves, err := MoveSubmounts(f, tab, "/mnt/oldroot", MoveOptions{})
	if !errors.Is(err, unix.EINVAL) {
		t.Fatalf("err = %v, want EINVAL", err)
	}
	if !strings.Contains(err.Error(), "mount src=/mnt/oldroot/dev, dst=/dev, flags=MS_MOVE: invalid argument") {
		t.Errorf("err = %q, want source, target and MS_MOVE by name", err)
	}
	if len(f.Calls) != 3 {
		t.Errorf("calls after the failure: %q", f.Strings())
	}
	compareMoves(t, moves, []moveSummary{
		{"/mnt/oldroot/sys", "/sys", "/sys/kernel/security /sys/fs/cgroup /sys/fs/bpf", false, false, true},
		{"/mnt/oldroot/proc", "/proc", "/proc/sys/fs/binfmt_misc", false, false, true},
		{"/mnt/oldroot/dev", "/dev", "/dev/pts /dev/shm /dev/mqueue /dev/hugepages", false, false, false},
	})

	// Still shared (nobody made it private): the hint says so.
	shared := readTable(t, "systemd-after-pivot.mountinfo")
	for i := range shared {
		shared[i].Optional = []string{"shared:1"}
	}
	f.Calls = nil
	_, err = MoveSubmounts(f, shared, "/mnt/oldroot", MoveOptions{})
	if err == nil || !strings.Contains(err.Error(), "shared; make / private first") {
		t.Errorf("err = %v, want the shared-propagation hint", err)
	}
}

// Rollback: after PivotBack the submounts are below the new root's old
// place; the same function moves them back under the old root.
func TestMoveSubmountsRollback(t *testing.T) {
	tab := readTable(t, "systemd-after-pivot-back.mountinfo")
	f := &Fake{}
	if _, err := MoveSubmounts(f, tab, "/mnt/newroot", MoveOptions{}); err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, []string{
		`mount("/mnt/newroot/sys", "/sys", "", MS_MOVE, "")`,
		`mount("/mnt/newroot/proc", "/proc", "", MS_MOVE, "")`,
		`mount("/mnt/newroot/dev", "/dev", "", MS_MOVE, "")`,
		`mount("/mnt/newroot/run", "/run", "", MS_MOVE, "")`,
		`mount("/mnt/newroot/boot", "/boot", "", MS_MOVE, "")`,
		`mount("/mnt/newroot/var/log", "/var/log", "", MS_MOVE, "")`,
	})
}

func TestMoveSubmountsRefuses(t *testing.T) {
	tab := readTable(t, "systemd-after-pivot.mountinfo")
	for _, oldroot := range []string{"/", "mnt/oldroot", "/mnt"} {
		f := &Fake{}
		if _, err := MoveSubmounts(f, tab, oldroot, MoveOptions{}); err == nil {
			t.Errorf("MoveSubmounts(%q) = nil error", oldroot)
		}
		compareCalls(t, f, nil)
	}
	// Nothing below OLDROOT: no moves, no error.
	f := &Fake{}
	moves, err := MoveSubmounts(f, readTable(t, "systemd-after-move.mountinfo"), "/mnt/oldroot", MoveOptions{})
	if err != nil || len(moves) != 0 || len(f.Calls) != 0 {
		t.Errorf("after the move: moves %+v, err %v, calls %q; want nothing", moves, err, f.Strings())
	}
}

// A mount whose parent is a mount hidden below the one visible at
// OLDROOT cannot be reached by path; it is reported, not moved.
func TestMoveSubmountsHiddenParent(t *testing.T) {
	tab, err := mountinfo.Parse(strings.NewReader(`40 1 8:17 / / rw - ext4 /dev/sdb1 rw
29 40 8:2 / /mnt/oldroot rw - ext4 /dev/sda2 rw
22 29 0:21 / /mnt/oldroot/proc rw - proc proc rw
45 29 0:40 / /mnt/oldroot rw - tmpfs tmpfs rw
46 45 0:41 / /mnt/oldroot/x rw - tmpfs tmpfs rw
`))
	if err != nil {
		t.Fatal(err)
	}
	f := &Fake{}
	moves, err := MoveSubmounts(f, tab, "/mnt/oldroot", MoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, []string{`mount("/mnt/oldroot/x", "/x", "", MS_MOVE, "")`})
	if len(moves) != 2 || !strings.Contains(moves[0].Skipped, "hidden below a stacked mount") {
		t.Errorf("moves = %+v, want /mnt/oldroot/proc skipped as hidden", moves)
	}
}

func TestSaveAndRestorePropagation(t *testing.T) {
	saved := SavePropagation(readTable(t, "systemd-host.mountinfo"), "/")
	if len(saved) != 18 || saved[0] != (Propagation{"/", 1}) || saved[1] != (Propagation{"/sys", 2}) {
		t.Fatalf("saved = %+v, want 18 shared mounts, / (shared:1) then /sys first", saved)
	}
	f := &Fake{}
	skipped, err := RestoreShared(f, readTable(t, "systemd-after-move.mountinfo"), saved)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Propagation{{"/mnt/newroot", 21}}; !slices.Equal(skipped, want) {
		t.Errorf("skipped = %+v, want %+v", skipped, want)
	}
	calls := f.Strings()
	if len(calls) != 17 || calls[0] != `mount("", "/", "", MS_SHARED, "")` || calls[16] != `mount("", "/var/log", "", MS_SHARED, "")` {
		t.Errorf("calls = %q, want 17 non-recursive MS_SHARED, parents first, from / to /var/log", calls)
	}

	// Below a path: only that subtree, the mount at the path included.
	saved = SavePropagation(readTable(t, "systemd-host.mountinfo"), "/dev")
	var points []string
	for _, p := range saved {
		points = append(points, p.Point)
	}
	if want := []string{"/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/hugepages"}; !slices.Equal(points, want) {
		t.Errorf("saved below /dev = %q, want %q", points, want)
	}

	// A private mount saves nothing.
	if saved := SavePropagation(readTable(t, "systemd-after-pivot.mountinfo"), "/"); len(saved) != 0 {
		t.Errorf("private table saved %+v", saved)
	}
}

func TestMakePrivateAndShared(t *testing.T) {
	f := &Fake{}
	MakePrivate(f, "/", true)
	MakePrivate(f, "/mnt", false)
	MakeShared(f, "/", false)
	MakeShared(f, "/run", true)
	compareCalls(t, f, []string{
		`mount("", "/", "", MS_REC|MS_PRIVATE, "")`,
		`mount("", "/mnt", "", MS_PRIVATE, "")`,
		`mount("", "/", "", MS_SHARED, "")`,
		`mount("", "/run", "", MS_REC|MS_SHARED, "")`,
	})
}

// Leave keeps the mounts it names where they are, with its reason, and
// moves the rest.
func TestMoveSubmountsLeave(t *testing.T) {
	tab := readTable(t, "systemd-after-pivot.mountinfo")
	f := &Fake{}
	moves, err := MoveSubmounts(f, tab, "/mnt/oldroot", MoveOptions{Leave: func(m mountinfo.Mount) string {
		if m.Point == "/mnt/oldroot/var/log" {
			return "mounted again by the caller"
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f.Strings() {
		if strings.Contains(c, "/var/log") {
			t.Errorf("left mount moved: %s", c)
		}
	}
	last := moves[len(moves)-1]
	if last.To != "/var/log" || last.Skipped != "mounted again by the caller" || last.Done {
		t.Errorf("last move = %+v, want /var/log left with the reason", last)
	}
	if len(f.Strings()) != len(moves)-1 {
		t.Errorf("%d mount calls for %d moves, one left: %q", len(f.Strings()), len(moves), f.Strings())
	}
}
