package pivot

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/mountops"
)

func newEnv() (*cli.Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &cli.Env{Stdout: &out, Stderr: &errb, ProcRoot: "testdata/proc", Now: time.Now}, &out, &errb
}

func TestPivotSaysWhatItDoes(t *testing.T) {
	env, out, _ := newEnv()
	f := &mountops.Fake{Missing: map[string]bool{"/mnt/newroot/mnt/oldroot": true}}
	if err := run(env, f, []string{"/mnt/newroot"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`mount("", "/", "", MS_REC|MS_PRIVATE, "")`,
		`mkdir("/mnt/newroot/mnt/oldroot", 0755)`,
		`chdir("/mnt/newroot")`,
		`pivot_root(".", "mnt/oldroot")`,
		`chdir("/")`,
	}
	if got := f.Strings(); !slices.Equal(got, want) {
		t.Errorf("calls:\n got %q\nwant %q", got, want)
	}
	wantOut := `pivot: /dev/sdb1 (ext4, at /mnt/newroot) becomes /; the old root /dev/sda2 (ext4) goes to /mnt/oldroot
making / propagation private, recursively (was shared: / is shared:1, 18 of 18 mounts shared)
creating /mnt/newroot/mnt/oldroot (PUTOLD did not exist)
pivot_root into /mnt/newroot: it becomes /, the old root goes to /mnt/oldroot
done: / is /dev/sdb1 (ext4); the old root /dev/sda2 is at /mnt/oldroot
next: rootswap mount-move /mnt/oldroot
note: 18 mounts were shared (systemd makes them so) and are private now; after mount-move, ` + "`mount --make-rshared /`" + ` restores that
`
	if out.String() != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", out, wantOut)
	}
}

func TestPivotPutOldOperand(t *testing.T) {
	env, _, _ := newEnv()
	f := &mountops.Fake{}
	if err := run(env, f, []string{"/mnt/newroot", "/mnt/newroot/old"}); err != nil {
		t.Fatal(err)
	}
	if got := f.Strings(); len(got) != 4 || got[2] != `pivot_root(".", "old")` {
		t.Errorf("calls = %q, want pivot_root(\".\", \"old\") third", got)
	}
}

func TestPivotRefusals(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{nil, true, "need NEWROOT"},
		{[]string{"/a", "/a/b", "/c"}, true, "need NEWROOT"},
		{[]string{"--force", "/mnt/newroot"}, true, "flag provided but not defined"},
		{[]string{"/srv"}, false, "NEWROOT /srv is not a mount point; mount the new root there first"},
		{[]string{"/mnt/newroot", "/mnt/oldroot"}, false, "PUTOLD /mnt/oldroot is not under NEWROOT /mnt/newroot"},
	} {
		env, _, _ := newEnv()
		f := &mountops.Fake{}
		err := run(env, f, tc.args)
		if err == nil || errors.Is(err, cli.ErrUsage) != tc.usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("pivot %q = %v, want usage=%v error saying %q", tc.args, err, tc.usage, tc.want)
		}
		if len(f.Calls) != 0 {
			t.Errorf("pivot %q changed something: %q", tc.args, f.Strings())
		}
	}
}

func TestPivotErrorExplained(t *testing.T) {
	env, _, _ := newEnv()
	f := &mountops.Fake{Fail: func(c mountops.Call) error {
		if c.Op == "pivot_root" {
			return unix.EBUSY
		}
		return nil
	}}
	err := run(env, f, []string{"/mnt/newroot"})
	want := `pivot_root(".", "mnt/oldroot") in /mnt/newroot: device or resource busy: ` + mountops.WhyBusy
	if !errors.Is(err, unix.EBUSY) || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestMainRefusesBeforeTouching(t *testing.T) {
	env, _, _ := newEnv()
	if err := Main(context.Background(), env, []string{"/srv"}); err == nil || !strings.Contains(err.Error(), "not a mount point") {
		t.Errorf("Main = %v, want the not-a-mount-point refusal", err)
	}
}
