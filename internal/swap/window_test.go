package swap

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func contains(list []string, s string) bool { return index(list, s) >= 0 }

func index(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// windowFixture: / is an ext4 image made with mkfs opts, the target twice
// its size, the engine's capabilities capEff.
func windowFixture(t *testing.T, capEff string, mkfs ...string) (*Runtime, *State) {
	t.Helper()
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed")
	}
	d := t.TempDir()
	img := filepath.Join(d, "root.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"-q", "-F"}, mkfs...), img)
	if out, err := exec.Command("mkfs.ext4", args...).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %q: %v\n%s", args, err, out)
	}
	proc := filepath.Join(d, "proc")
	os.MkdirAll(filepath.Join(proc, "self"), 0o755)
	os.WriteFile(filepath.Join(proc, "self/status"), []byte("Name:\trootswap\nCapEff:\t"+capEff+"\n"), 0o644)
	rt := &Runtime{ProcRoot: proc, Report: &Report{}}
	rt.Report.Root.Device, rt.Report.Root.FSType, rt.Report.Root.Size = img, "ext4", 16<<20
	rt.Report.Target.Size = 32 << 20
	return rt, &State{Opts: DefaultOptions("/dev/sys/root")}
}

const (
	allCaps  = "000001ffffffffff"
	noSysRes = "000001fffeffffff" // bit 24 (CAP_SYS_RESOURCE) clear
)

func TestWindowHoldsOnlyWhatTheCopyNeeds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		caps     string
		mkfs     []string
		check    string
		errors   bool // the superblock of / records errors
		same     bool // the target is the size of /
		offline  bool
		inWindow string // what the reason names; "" not in the window
	}{
		{name: "online grow, no check", caps: allCaps},
		{name: "no CAP_SYS_RESOURCE", caps: noSysRes, offline: true, inWindow: "unmounted"},
		{name: "no resize_inode", caps: allCaps, mkfs: []string{"-O", "^resize_inode"}, offline: true, inWindow: "resize_inode"},
		{name: "--fsck always", caps: allCaps, check: CheckAlways, inWindow: "--fsck always"},
		{name: "errors recorded", caps: allCaps, errors: true, inWindow: "records errors"},
		{name: "same size", caps: noSysRes, same: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, s := windowFixture(t, tc.caps, tc.mkfs...)
			if tc.check != "" {
				s.Opts.Check = tc.check
			}
			if tc.same {
				rt.Report.Target.Size = rt.Report.Root.Size
			}
			if tc.errors {
				f, _ := os.OpenFile(rt.Report.Root.Device, os.O_RDWR, 0)
				f.WriteAt([]byte{3, 0}, 1024+0x3A) // s_state: valid | errors
				f.Close()
			}
			g := planGrow(rt)
			if g.need == tc.same || (g.offline != "") != tc.offline {
				t.Errorf("planGrow = %+v, want need %v, offline %v", g, !tc.same, tc.offline)
			}
			in, why := checkInWindow(rt, s)
			if in != (tc.inWindow != "") || !strings.Contains(why, tc.inWindow) {
				t.Errorf("checkInWindow = %v %q, want %v naming %q", in, why, tc.inWindow != "", tc.inWindow)
			}
			// plan shows it: the grow step names the online command, or not.
			desc := (&growRoot{rt}).Describe(s)
			if online := strings.Contains(desc, "resize2fs /dev/sys/root"); online != (!tc.same && !tc.offline) {
				t.Errorf("grow: %q", desc)
			}
		})
	}
}

// fsck-old checks the released old root read-only when the window did
// not check the copy, and says what to do when it cannot.
func TestCheckOldRoot(t *testing.T) {
	rt, s := windowFixture(t, allCaps)
	var calls []string
	rt.Command = func(ctx context.Context, name string, args ...string) ([]byte, error) {
		calls = append(calls, strings.Join(append([]string{name}, args...), " "))
		return nil, nil
	}
	rt.Out = &strings.Builder{}
	st := &checkOld{rt}
	if err := st.Do(context.Background(), s); err == nil || !strings.Contains(err.Error(), "still mounted") {
		t.Errorf("old root not released: %v, want it named", err)
	}
	s.PastNoReturn = true
	if err := st.Do(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if want := []string{"e2fsck -f -n " + rt.Report.Root.Device}; !reflect.DeepEqual(calls, want) {
		t.Errorf("commands = %q, want %q", calls, want)
	}
	calls = nil
	s.Opts.Check = CheckAlways
	if err := st.Do(context.Background(), s); err != nil || len(calls) != 0 {
		t.Errorf("copy checked in the window: %v, commands %q; want nothing", err, calls)
	}
}
