package mountops

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

func readTable(t *testing.T, name string) mountinfo.Table {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := mountinfo.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func collect(notes *[]string) Logf {
	return func(format string, args ...any) { *notes = append(*notes, fmt.Sprintf(format, args...)) }
}

func compareCalls(t *testing.T, f *Fake, want []string) {
	t.Helper()
	got := f.Strings()
	if !slices.Equal(got, want) {
		t.Errorf("calls:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestPivotCalls(t *testing.T) {
	tab := readTable(t, "systemd-host.mountinfo")
	f := &Fake{Missing: map[string]bool{"/mnt/newroot/mnt/oldroot": true}}
	var notes []string
	if err := Pivot(f, tab, "/mnt/newroot", "/mnt/newroot/mnt/oldroot", collect(&notes)); err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, []string{
		`mount("", "/", "", MS_REC|MS_PRIVATE, "")`,
		`mkdir("/mnt/newroot/mnt/oldroot", 0755)`,
		`chdir("/mnt/newroot")`,
		`pivot_root(".", "mnt/oldroot")`,
		`chdir("/")`,
	})
	wantNotes := []string{
		"making / propagation private, recursively (was shared: / is shared:1, 18 of 18 mounts shared)",
		"creating /mnt/newroot/mnt/oldroot (PUTOLD did not exist)",
		"pivot_root into /mnt/newroot: it becomes /, the old root goes to /mnt/oldroot",
	}
	if !slices.Equal(notes, wantNotes) {
		t.Errorf("notes:\n got %q\nwant %q", notes, wantNotes)
	}
}

func TestPivotExistingPutOldIsNotCreated(t *testing.T) {
	tab := readTable(t, "systemd-host.mountinfo")
	f := &Fake{}
	if err := Pivot(f, tab, "/mnt/newroot/", "/mnt/newroot/mnt/../mnt/oldroot", nil); err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, []string{
		`mount("", "/", "", MS_REC|MS_PRIVATE, "")`,
		`chdir("/mnt/newroot")`,
		`pivot_root(".", "mnt/oldroot")`,
		`chdir("/")`,
	})
}

// Bad input is refused before anything is changed.
func TestPivotRefusesBadInput(t *testing.T) {
	tab := readTable(t, "systemd-host.mountinfo")
	for _, tc := range []struct {
		newroot, putold string
		files           []string
		want            string
	}{
		{"/srv/new", "/srv/new/mnt/oldroot", nil, "NEWROOT /srv/new is not a mount point; mount the new root there first"},
		{"/mnt/newroot", "/mnt/oldroot", nil, "PUTOLD /mnt/oldroot is not under NEWROOT /mnt/newroot"},
		{"/mnt/newroot", "/mnt/newroot", nil, "PUTOLD /mnt/newroot is not under NEWROOT /mnt/newroot"},
		{"/", "/mnt/oldroot", nil, "NEWROOT is / (the current root)"},
		{"mnt/newroot", "mnt/newroot/old", nil, "must be absolute paths"},
		{"/mnt/newroot", "/mnt/newroot/old", []string{"/mnt/newroot/old"}, "PUTOLD /mnt/newroot/old is not a directory"},
		{"/boot", "/boot/proc", nil, "PUTOLD /boot/proc already has something mounted on it"},
	} {
		f := &Fake{Files: map[string]bool{}}
		for _, p := range tc.files {
			f.Files[p] = true
		}
		tab := tab
		if tc.newroot == "/boot" {
			// A mount on the would-be PUTOLD.
			tab = append(slices.Clone(tab), mountinfo.Mount{ID: 99, Parent: 36, Point: "/boot/proc", FSType: "proc", Source: "proc"})
		}
		err := Pivot(f, tab, tc.newroot, tc.putold, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Pivot(%s, %s) = %v, want an error saying %q", tc.newroot, tc.putold, err, tc.want)
		}
		if len(f.Calls) != 0 {
			t.Errorf("Pivot(%s, %s) refused but made calls: %q", tc.newroot, tc.putold, f.Strings())
		}
	}
}

func failOn(op string, errno error) func(Call) error {
	return func(c Call) error {
		if c.Op == op {
			return errno
		}
		return nil
	}
}

// The raw step, called on a table where / is still shared, blames
// propagation, and only propagation.
func TestPivotRootExplainsSharedEINVAL(t *testing.T) {
	tab := readTable(t, "systemd-host.mountinfo")
	f := &Fake{Fail: failOn("pivot_root", unix.EINVAL)}
	err := pivotRoot(f, tab, "/mnt/newroot", "/mnt/newroot/mnt/oldroot")
	if !errors.Is(err, unix.EINVAL) {
		t.Fatalf("errors.Is(%v, EINVAL) = false", err)
	}
	want := `pivot_root(".", "mnt/oldroot") in /mnt/newroot: invalid argument: ` + WhyShared
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	compareCalls(t, f, []string{`chdir("/mnt/newroot")`, `pivot_root(".", "mnt/oldroot")`, `chdir("/")`})
}

func TestPivotExplainsErrno(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		errno   unix.Errno
		want    []string
		notWant []string
	}{
		// After MakePrivate nothing is shared any more: the table no longer
		// points at a cause, so every EINVAL cause is listed.
		{"systemd-host.mountinfo", unix.EINVAL, []string{WhyShared, WhyNotMount, WhyNotUnder, WhyRootNotMount}, nil},
		// Booted into an initramfs that never switched root: / is rootfs.
		{"initramfs.mountinfo", unix.EINVAL, []string{WhyRootNotMount}, []string{WhyShared, WhyNotMount}},
		{"systemd-host.mountinfo", unix.EBUSY, []string{WhyBusy}, []string{WhyShared}},
	} {
		tab := readTable(t, tc.fixture)
		f := &Fake{Fail: failOn("pivot_root", tc.errno)}
		err := Pivot(f, tab, "/mnt/newroot", "/mnt/newroot/mnt/oldroot", nil)
		if !errors.Is(err, tc.errno) {
			t.Errorf("%s, %v: errors.Is(%v) = false", tc.fixture, tc.errno, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s, %v: %q does not say %q", tc.fixture, tc.errno, err, w)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(err.Error(), w) {
				t.Errorf("%s, %v: %q says %q", tc.fixture, tc.errno, err, w)
			}
		}
	}
}

func TestPivotStopsWhenMakePrivateFails(t *testing.T) {
	tab := readTable(t, "systemd-host.mountinfo")
	f := &Fake{Fail: failOn("mount", unix.EPERM)}
	err := Pivot(f, tab, "/mnt/newroot", "/mnt/newroot/mnt/oldroot", nil)
	if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "flags=MS_REC|MS_PRIVATE") {
		t.Errorf("err = %v, want EPERM naming MS_REC|MS_PRIVATE", err)
	}
	compareCalls(t, f, []string{`mount("", "/", "", MS_REC|MS_PRIVATE, "")`})
}

// Rollback is the same pivot with the roles swapped.
func TestPivotBack(t *testing.T) {
	tab := readTable(t, "systemd-after-move.mountinfo")
	f := &Fake{}
	var notes []string
	if err := PivotBack(f, tab, "/mnt/oldroot", "/mnt/newroot", collect(&notes)); err != nil {
		t.Fatal(err)
	}
	compareCalls(t, f, []string{
		`mount("", "/", "", MS_REC|MS_PRIVATE, "")`,
		`chdir("/mnt/oldroot")`,
		`pivot_root(".", "mnt/newroot")`,
		`chdir("/")`,
	})
	if want := "making / propagation private, recursively (already private)"; len(notes) == 0 || notes[0] != want {
		t.Errorf("first note = %q, want %q", notes, want)
	}
}
