package swap

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
	"golang.org/x/sys/unix"
)

// releaseInit is an init system that knows a fixed set of services and
// records restarts; what a restart does to the holders is the test's.
// Methods the release never calls are left to the nil embedded System.
type releaseInit struct {
	initsys.System
	services  map[int]initsys.Service
	restarted []string
	onRestart func(name string)
}

func (f *releaseInit) Kind() initsys.Kind { return initsys.KindSystemd }
func (f *releaseInit) ServiceOf(pid int) (initsys.Service, bool) {
	s, ok := f.services[pid]
	return s, ok
}
func (f *releaseInit) Restart(ctx context.Context, svc initsys.Service) error {
	f.restarted = append(f.restarted, svc.Name)
	if f.onRestart != nil {
		f.onRestart(svc.Name)
	}
	return nil
}

func unit(name string) initsys.Service {
	return initsys.Service{Name: name, Kind: initsys.ServiceUnit, Restartable: true}
}

// releaseFixture is a machine right after the pivot: the old root, ext4
// 8:2, read-only at /mnt/oldroot, the holders a map the fakes change, a
// clock that moves only when the engine sleeps.
type releaseFixture struct {
	rt      *Runtime
	s       *State
	init    *releaseInit
	mounter *mountops.Fake
	holders map[int]Holder
	now     time.Time
	start   time.Time
	jpath   string
	j       *journal.Journal
	onSleep func(elapsed time.Duration)
}

const fixtureMountinfo = `15 1 253:3 / / rw,noatime - ext4 /dev/mapper/sys-root rw
16 15 8:2 / /mnt/oldroot ro,noatime - ext4 /dev/sda2 ro
`

func newReleaseFixture(t *testing.T, mountinfoText string) *releaseFixture {
	t.Helper()
	dir := t.TempDir()
	proc, sys := filepath.Join(dir, "proc"), filepath.Join(dir, "sys")
	for _, d := range []string{filepath.Join(proc, "self"), sys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte(mountinfoText), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &releaseFixture{holders: map[int]Holder{}, init: &releaseInit{services: map[int]initsys.Service{}}}
	f.start = time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	f.now = f.start
	f.jpath = filepath.Join(dir, "journal")
	j, err := journal.Create(f.jpath, func() time.Time { return f.now })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	f.j = j
	f.mounter = &mountops.Fake{Fail: func(c mountops.Call) error {
		if c.Op == "umount2" && c.Target == "/mnt/oldroot" && c.Flags&unix.MNT_DETACH == 0 && len(f.holders) > 0 {
			return unix.EBUSY
		}
		return nil
	}}
	f.rt = &Runtime{
		ProcRoot: proc, SysRoot: sys, Mounter: f.mounter, Init: f.init,
		Self: 4242, Session: map[int]bool{}, Journal: j,
		Now: func() time.Time { return f.now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.now = f.now.Add(d)
			if f.onSleep != nil {
				f.onSleep(f.now.Sub(f.start))
			}
			return nil
		},
		ScanHolders: func(dev uint64) ([]Holder, error) {
			if dev != unix.Mkdev(8, 2) {
				t.Errorf("scanned dev %d:%d, want the old root's 8:2", unix.Major(dev), unix.Minor(dev))
			}
			var out []Holder
			for _, h := range f.holders {
				out = append(out, h)
			}
			sortHolders(out)
			return out, nil
		},
	}
	f.rt.Report = &Report{}
	f.rt.Report.Root.Device, f.rt.Report.Root.FSType = "/dev/sda2", "ext4"
	f.s = &State{Opts: DefaultOptions("/dev/sys/root"), OldRoot: mountinfo.Mount{Major: 8, Minor: 2}}
	return f
}

func sortHolders(hs []Holder) {
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			if hs[j].PID < hs[i].PID {
				hs[i], hs[j] = hs[j], hs[i]
			}
		}
	}
}

// holderRecords are the holders lists release journaled, in order.
func holderRecords(t *testing.T, path string) [][]string {
	t.Helper()
	recs, err := journal.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, r := range recs {
		if r.Kind == journal.KindHolders {
			out = append(out, []string{r.Data["holders"], r.Data["finish"]})
		}
	}
	return out
}

// Release restarts the service still on the old root, says it waits for
// the admin's session, and unmounts once both are gone.
func TestReleaseRestartsAndWaits(t *testing.T) {
	f := newReleaseFixture(t, fixtureMountinfo)
	f.holders[300] = Holder{PID: 300, Comm: "cron", Uses: []string{"cwd /mnt/oldroot/var/spool/cron", "txt /mnt/oldroot/usr/sbin/cron", "mem /mnt/oldroot/usr/lib/libc.so.6", "mem /mnt/oldroot/usr/lib/libpam.so.0"}}
	f.holders[500] = Holder{PID: 500, Comm: "sshd", Uses: []string{"txt /mnt/oldroot/usr/sbin/sshd"}}
	f.init.services[300] = unit("cron.service")
	f.init.onRestart = func(name string) { delete(f.holders, 300) }
	f.rt.Session[500] = true
	f.onSleep = func(elapsed time.Duration) {
		if elapsed >= 10*time.Second {
			delete(f.holders, 500) // the admin logged out
		}
	}
	if err := (&releaseOldRoot{f.rt}).Do(context.Background(), f.s); err != nil {
		t.Fatalf("release: %v", err)
	}
	if want := []string{"cron.service"}; !reflect.DeepEqual(f.init.restarted, want) {
		t.Errorf("restarted %q, want %q", f.init.restarted, want)
	}
	if got, want := f.mounter.Strings(), []string{`umount2("/mnt/oldroot", 0)`}; !reflect.DeepEqual(got, want) {
		t.Errorf("mount calls %q, want %q", got, want)
	}
	if !f.s.PastNoReturn || f.s.Holders != nil || f.s.Finish != nil {
		t.Errorf("state after release: past no return %v, holders %q, finish %q", f.s.PastNoReturn, f.s.Holders, f.s.Finish)
	}
	recs := holderRecords(t, f.jpath)
	if len(recs) != 3 {
		t.Fatalf("holders records: %q, want 3 (both, the session alone, none)", recs)
	}
	for _, want := range []string{
		`"pid":300,"comm":"cron","service":"cron.service","holds":["cwd /mnt/oldroot/var/spool/cron","exe /mnt/oldroot/usr/sbin/cron","mapping /mnt/oldroot/usr/lib/libc.so.6 (+1 more)"],"action":"restarting cron.service"`,
		`"pid":500,"comm":"sshd","holds":["exe /mnt/oldroot/usr/sbin/sshd"],"action":"waiting: the SSH session that started run; log out of it"`,
	} {
		if !strings.Contains(recs[0][0], want) {
			t.Errorf("first holders record lacks %s:\n%s", want, recs[0][0])
		}
	}
	if strings.Contains(recs[1][0], "cron") || !strings.Contains(recs[1][0], "sshd") {
		t.Errorf("second holders record: %s", recs[1][0])
	}
	if recs[2][0] != "null" {
		t.Errorf("last holders record %s, want none once released", recs[2][0])
	}
	if el := f.now.Sub(f.start); el < 10*time.Second || el > 11*time.Second {
		t.Errorf("released after %v, want right after the session left at 10s", el)
	}
}

// After --release-timeout the engine stops waiting: the old root stays
// mounted, read-only; the step and the run succeed; the journal names
// every holder and the exact commands to finish; status shows them.
func TestReleaseTimeoutLeavesOldRoot(t *testing.T) {
	f := newReleaseFixture(t, fixtureMountinfo+"17 16 0:40 / /mnt/oldroot/srv rw - tmpfs tmpfs rw\n")
	f.s.Opts.ReleaseTimeout = 30 * time.Second
	f.s.Opts.Keep = []string{"db.service"}
	f.holders[700] = Holder{PID: 700, Comm: "foo", Uses: []string{"cwd /mnt/oldroot/tmp"}}
	f.holders[800] = Holder{PID: 800, Comm: "postgres", Writes: []string{"5w /mnt/oldroot/var/lib/db/wal"}}
	f.holders[900] = Holder{PID: 900, Comm: "systemd-logind", OtherNS: "mnt:[4026532]"}
	f.init.services[800] = unit("db.service")
	f.init.services[900] = unit("systemd-logind.service")
	e := &Engine{Journal: f.j}
	res := e.Run(context.Background(), []Step{&releaseOldRoot{f.rt}}, f.s)
	if res.Phase != journal.Succeeded {
		t.Fatalf("run ended %s (%v), want succeeded", res.Phase, res.Err)
	}
	if el := f.now.Sub(f.start); el < 30*time.Second || el > 31*time.Second {
		t.Errorf("stopped waiting after %v, want the 30s bound", el)
	}
	if len(f.mounter.Calls) != 0 || len(f.init.restarted) != 0 {
		t.Errorf("calls %q, restarts %q: want the old root left alone", f.mounter.Strings(), f.init.restarted)
	}
	wantFinish := []string{
		"kill 700   # foo",
		"systemctl restart db.service",
		"umount /mnt/oldroot/srv",
		"umount /mnt/oldroot",
		"systemctl restart systemd-logind.service",
	}
	if !reflect.DeepEqual(f.s.Finish, wantFinish) {
		t.Errorf("finish = %q\nwant %q", f.s.Finish, wantFinish)
	}
	st, err := LoadStatus(f.rt.ProcRoot, f.jpath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != journal.Succeeded || !reflect.DeepEqual(st.Finish, wantFinish) || len(st.Holders) != 4 {
		t.Fatalf("status %s, finish %q, holders %+v", st.Phase, st.Finish, st.Holders)
	}
	wantActions := []string{
		"nothing the engine can do: it belongs to no service; waiting for it to exit",
		"nothing the engine can do: --keep db.service",
		"restarted after the umount: only a copy in its own mount namespace holds the old root",
		"nothing the engine can do: a mount below the old root, left in place",
	}
	for i, h := range st.Holders {
		if h.Action != wantActions[i] {
			t.Errorf("holder %d %+v: action %q, want %q", i, h, h.Action, wantActions[i])
		}
	}
	if h := st.Holders[1]; !reflect.DeepEqual(h.Holds, []string{"fd 5w /mnt/oldroot/var/lib/db/wal"}) || h.Service != "db.service" {
		t.Errorf("the kept writer: %+v", h)
	}
	warned := false
	for _, n := range st.Notes {
		warned = warned || strings.HasPrefix(n, "WARNING: /mnt/oldroot is still mounted (read-only) after --release-timeout 30s: 4 holder(s)")
	}
	if !warned {
		t.Errorf("no warning note: %q", st.Notes)
	}
}

// An old root found read-write when the engine gives up is remounted
// read-only before it is left mounted.
func TestReleaseTimeoutRemountsReadOnly(t *testing.T) {
	f := newReleaseFixture(t, strings.Replace(fixtureMountinfo, "/dev/sda2 ro", "/dev/sda2 rw", 1))
	f.s.Opts.ReleaseTimeout = time.Second
	f.holders[700] = Holder{PID: 700, Comm: "foo", Uses: []string{"cwd /mnt/oldroot/tmp"}}
	if err := (&releaseOldRoot{f.rt}).Do(context.Background(), f.s); err != nil {
		t.Fatal(err)
	}
	if got, want := f.mounter.Strings(), []string{`mount("", "/mnt/oldroot", "", MS_RDONLY|MS_REMOUNT, "")`}; !reflect.DeepEqual(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// A busy old root with no holder in sight is reported as such, not
// waited on in silence, and left mounted after the bound.
func TestReleaseInvisibleHolder(t *testing.T) {
	f := newReleaseFixture(t, fixtureMountinfo)
	f.s.Opts.ReleaseTimeout = 2 * time.Second
	f.holders = map[int]Holder{}
	f.mounter.Fail = func(c mountops.Call) error { return unix.EBUSY }
	if err := (&releaseOldRoot{f.rt}).Do(context.Background(), f.s); err != nil {
		t.Fatal(err)
	}
	if f.s.PastNoReturn || len(f.s.Holders) != 1 || !strings.Contains(f.s.Holders[0], "outside this PID namespace") {
		t.Errorf("holders %q, past no return %v", f.s.Holders, f.s.PastNoReturn)
	}
	if n := len(f.s.Finish); n == 0 || f.s.Finish[n-1] != "umount /mnt/oldroot" {
		t.Errorf("finish %q", f.s.Finish)
	}
}

// A supervision tree nothing can restart (a container's PID 1 runsvdir)
// is named with the command that would move it, and the engine waits
// for nothing it cannot do; one that can (runit.service) is restarted.
func TestReleaseSupervisionTrees(t *testing.T) {
	f := newReleaseFixture(t, fixtureMountinfo)
	f.s.Opts.ReleaseTimeout = 10 * time.Second
	f.holders[201] = Holder{PID: 201, Comm: "runsv", Uses: []string{"cwd /mnt/oldroot/etc/service/nginx"}}
	f.holders[301] = Holder{PID: 301, Comm: "runsv", Uses: []string{"cwd /mnt/oldroot/srv/service/web"}}
	f.init.services[201] = initsys.Service{Name: "runsvdir /etc/service", Kind: initsys.RunitService,
		Why:    "supervision tree (runsvdir /etc/service, pid 1) is PID 1",
		Tree:   initsys.Tree{Kind: initsys.RunitService, Top: 1, Scanner: true, Dir: "/etc/service"},
		Manual: "restart the container from its host (its PID 1, runsvdir /etc/service, keeps the old root)"}
	f.init.services[301] = initsys.Service{Name: "runit.service", Kind: initsys.ServiceUnit, Restartable: true,
		Tree:   initsys.Tree{Kind: initsys.RunitService, Top: 300, Scanner: true, Dir: "/srv/service", Starter: "runit.service", StarterKind: initsys.ServiceUnit},
		Manual: "kill -HUP 300; systemctl start runit.service"}
	f.init.onRestart = func(name string) {
		if name == "runit.service" {
			delete(f.holders, 301)
		}
	}
	res := (&Engine{Journal: f.j}).Run(context.Background(), []Step{&releaseOldRoot{f.rt}}, f.s)
	if res.Phase != journal.Succeeded {
		t.Fatalf("run ended %s (%v), want succeeded", res.Phase, res.Err)
	}
	if want := []string{"runit.service"}; !reflect.DeepEqual(f.init.restarted, want) {
		t.Errorf("restarted %q, want %q", f.init.restarted, want)
	}
	wantFinish := []string{
		"restart the container from its host (its PID 1, runsvdir /etc/service, keeps the old root)",
		"umount /mnt/oldroot",
	}
	if !reflect.DeepEqual(f.s.Finish, wantFinish) {
		t.Errorf("finish = %q\nwant %q", f.s.Finish, wantFinish)
	}
	recs := holderRecords(t, f.jpath)
	if len(recs) == 0 || !strings.Contains(recs[0][0], `"service":"runit.service","holds":["cwd /mnt/oldroot/srv/service/web"],"action":"restarting runit.service","finish":"kill -HUP 300; systemctl start runit.service"`) {
		t.Errorf("first holders record: %q", recs)
	}
}

// The old root's own subvolume that move-mounts left under it (btrfs
// /home on @home, mounted again from the copy) is unmounted first, as
// soon as nothing uses it; a mount of another filesystem below the old
// root is left and named.
func TestReleaseUnmountsOldSubvolumes(t *testing.T) {
	const subvols = `15 1 0:41 /@ / rw - btrfs /dev/mapper/sys-root rw
16 15 8:2 /@ /mnt/oldroot ro - btrfs /dev/sda2 ro
17 16 8:2 /@home /mnt/oldroot/home rw - btrfs /dev/sda2 rw
`
	f := newReleaseFixture(t, subvols)
	f.mounter.Fail = func(c mountops.Call) error {
		if c.Op == "umount2" && c.Target == "/mnt/oldroot/home" {
			// Gone from the table, as the kernel would show it.
			lines := strings.SplitAfter(subvols, "\n")
			return os.WriteFile(filepath.Join(f.rt.ProcRoot, "self", "mountinfo"), []byte(lines[0]+lines[1]), 0o644)
		}
		return nil
	}
	if err := (&releaseOldRoot{f.rt}).Do(context.Background(), f.s); err != nil {
		t.Fatalf("release: %v", err)
	}
	want := []string{`umount2("/mnt/oldroot/home", 0)`, `umount2("/mnt/oldroot", 0)`}
	if got := f.mounter.Strings(); !reflect.DeepEqual(got, want) {
		t.Errorf("mount calls %q, want %q", got, want)
	}
	if !f.s.PastNoReturn || f.now != f.start {
		t.Errorf("released %v after %v, want at once", f.s.PastNoReturn, f.now.Sub(f.start))
	}
}
