package mountmove

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
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

const movedOutput = `moved /mnt/oldroot/sys -> /sys (sysfs, with /sys/kernel/security /sys/fs/cgroup /sys/fs/bpf)
moved /mnt/oldroot/proc -> /proc (proc, with /proc/sys/fs/binfmt_misc)
moved /mnt/oldroot/dev -> /dev (devtmpfs, with /dev/pts /dev/shm /dev/mqueue /dev/hugepages)
moved /mnt/oldroot/run -> /run (tmpfs, with /run/lock /run/user/0)
moved /mnt/oldroot/boot -> /boot (ext2)
`

func TestMountMove(t *testing.T) {
	env, out, errb := newEnv()
	f := &mountops.Fake{Missing: map[string]bool{"/var/log": true}}
	if err := run(env, f, []string{"/mnt/oldroot"}); err != nil {
		t.Fatal(err)
	}
	want := "moving the 16 mounts below /mnt/oldroot back under / (6 moves)\n" + movedOutput +
		"created missing mount point /var/log\nmoved /mnt/oldroot/var/log -> /var/log (ext4)\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if errb.Len() != 0 {
		t.Errorf("stderr: %s", errb)
	}
	calls := f.Strings()
	if len(calls) != 7 || calls[0] != `mount("/mnt/oldroot/sys", "/sys", "", MS_MOVE, "")` || calls[5] != `mkdir("/var/log", 0755)` {
		t.Errorf("calls = %q", calls)
	}
}

func TestMountMoveDryRun(t *testing.T) {
	env, out, _ := newEnv()
	f := &mountops.Fake{Missing: map[string]bool{"/var/log": true}}
	if err := run(env, f, []string{"--dry-run", "/mnt/oldroot/"}); err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(movedOutput, "moved ", "would move ") +
		"would create missing mount point /var/log\nwould move /mnt/oldroot/var/log -> /var/log (ext4)\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if len(f.Calls) != 0 {
		t.Errorf("dry run made calls: %q", f.Strings())
	}
}

func TestMountMoveNoMkdirReportsAndFails(t *testing.T) {
	env, out, errb := newEnv()
	f := &mountops.Fake{Missing: map[string]bool{"/var/log": true}}
	err := run(env, f, []string{"/mnt/oldroot", "--no-mkdir"})
	if err == nil || err.Error() != "1 mount(s) left below /mnt/oldroot" {
		t.Errorf("err = %v, want 1 mount left", err)
	}
	if !strings.HasSuffix(out.String(), movedOutput) {
		t.Errorf("output:\n%s\nwant the five moves", out)
	}
	if want := "rootswap mount-move: left /mnt/oldroot/var/log where it is: mount point /var/log is missing in the new root (not created: no-mkdir)\n"; errb.String() != want {
		t.Errorf("stderr = %q, want %q", errb, want)
	}
}

func TestMountMoveFailureStops(t *testing.T) {
	env, out, _ := newEnv()
	f := &mountops.Fake{Fail: func(c mountops.Call) error {
		if c.Target == "/proc" {
			return unix.EINVAL
		}
		return nil
	}}
	err := run(env, f, []string{"/mnt/oldroot"})
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "mount src=/mnt/oldroot/proc, dst=/proc, flags=MS_MOVE: invalid argument") {
		t.Errorf("err = %v", err)
	}
	want := "moving the 16 mounts below /mnt/oldroot back under / (6 moves)\nmoved /mnt/oldroot/sys -> /sys (sysfs, with /sys/kernel/security /sys/fs/cgroup /sys/fs/bpf)\n"
	if out.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if got := f.Strings(); len(got) != 2 {
		t.Errorf("calls after the failure: %q", got)
	}
}

func TestMountMoveRefusals(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{nil, true, "need exactly one OLDROOT"},
		{[]string{"/a", "/b"}, true, "need exactly one OLDROOT"},
		{[]string{"/"}, false, "other than /"},
		{[]string{"/mnt"}, false, "OLDROOT /mnt is not a mount point"},
	} {
		env, _, _ := newEnv()
		f := &mountops.Fake{}
		err := run(env, f, tc.args)
		if err == nil || errors.Is(err, cli.ErrUsage) != tc.usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mount-move %q = %v, want usage=%v error saying %q", tc.args, err, tc.usage, tc.want)
		}
		if len(f.Calls) != 0 {
			t.Errorf("mount-move %q changed something: %q", tc.args, f.Strings())
		}
	}
}

func TestMountMoveNothingBelow(t *testing.T) {
	env, out, _ := newEnv()
	env.ProcRoot = t.TempDir()
	// A table with only the two roots, as after a complete move.
	if err := writeTable(env.ProcRoot, "40 1 8:17 / / rw - ext4 /dev/sdb1 rw\n29 40 8:2 / /mnt/oldroot rw - ext4 /dev/sda2 rw\n"); err != nil {
		t.Fatal(err)
	}
	if err := Main(context.Background(), env, []string{"/mnt/oldroot"}); err != nil {
		t.Fatal(err)
	}
	if want := "nothing is mounted below /mnt/oldroot\n"; out.String() != want {
		t.Errorf("output %q, want %q", out, want)
	}
}
func writeTable(procRoot, content string) error {
	p := filepath.Join(procRoot, "thread-self", "mountinfo")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}
