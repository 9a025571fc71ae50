package fstools

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/testutil"
)

// fakeTools makes a PATH directory holding shell scripts named after tools.
func fakeTools(t *testing.T, scripts map[string]string) Runner {
	t.Helper()
	dir := t.TempDir()
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Runner{Getenv: func(k string) string {
		if k == "PATH" {
			return dir
		}
		return ""
	}}
}

func TestE2fsckMeaning(t *testing.T) {
	tests := []struct {
		code  int
		want  string
		fixed bool
	}{
		{0, "no errors", false},
		{1, "filesystem errors corrected", true},
		{2, "filesystem errors corrected, system should be rebooted", true},
		{3, "filesystem errors corrected; filesystem errors corrected, system should be rebooted", true},
		{4, "filesystem errors left uncorrected", false},
		{8, "operational error", false},
		{12, "filesystem errors left uncorrected; operational error", false},
		{16, "usage or syntax error", false},
		{32, "checking cancelled by user request", false},
		{128, "shared-library error", false},
		{64, "unknown status bits", false},
	}
	for _, tt := range tests {
		got, fixed := E2fsckMeaning(tt.code)
		if got != tt.want || fixed != tt.fixed {
			t.Errorf("E2fsckMeaning(%d) = %q, %v; want %q, %v", tt.code, got, fixed, tt.want, tt.fixed)
		}
	}
}

func TestMissingTool(t *testing.T) {
	r := fakeTools(t, nil)
	err := r.Check(context.Background(), "ext4", "/dev/null", ReadOnly)
	var mt *MissingToolError
	if !errors.As(err, &mt) || mt.Tool != "e2fsck" || mt.Package != "e2fsprogs" {
		t.Fatalf("Check(ext4) with an empty PATH: %v, want a MissingToolError for e2fsck/e2fsprogs", err)
	}
	if !strings.Contains(err.Error(), "e2fsck not found in PATH") || !strings.HasSuffix(err.Error(), "install e2fsprogs") {
		t.Errorf("error text %q", err)
	}
	for tool, pkg := range map[string]string{"xfs_growfs": "xfsprogs", "btrfstune": "btrfs-progs", "resize2fs": "e2fsprogs"} {
		if err := r.Require(tool); err == nil || !strings.HasSuffix(err.Error(), "install "+pkg) {
			t.Errorf("Require(%s) = %v, want one ending in install %s", tool, err, pkg)
		}
	}
}

func TestRunExitStatus(t *testing.T) {
	r := fakeTools(t, map[string]string{
		"e2fsck": `echo "args: $*"; echo progress >&2; exit ${E2FSCK_EXIT:-0}`,
	})
	var stdout, stderr, echo bytes.Buffer
	r.Stdout, r.Stderr, r.Echo = &stdout, &stderr, &echo
	t.Setenv("E2FSCK_EXIT", "4")
	err := r.Check(context.Background(), "ext4", "/dev/loop9", ReadOnly)
	var te *ToolError
	if !errors.As(err, &te) {
		t.Fatalf("Check: %v, want a *ToolError", err)
	}
	if te.Code != 4 || te.Fixed || te.Meaning != "filesystem errors left uncorrected" || ExitStatus(err) != 4 {
		t.Errorf("ToolError = %+v", te)
	}
	if want := "e2fsck -f -C0 -n /dev/loop9: exit status 4: filesystem errors left uncorrected"; err.Error() != want {
		t.Errorf("error text %q, want %q", err, want)
	}
	if got, want := stdout.String(), "args: -f -C0 -n /dev/loop9\n"; got != want {
		t.Errorf("stdout passed through = %q, want %q", got, want)
	}
	if stderr.String() != "progress\n" {
		t.Errorf("stderr passed through = %q", stderr.String())
	}
	if echo.String() != "+ e2fsck -f -C0 -n /dev/loop9\n" {
		t.Errorf("echo = %q", echo.String())
	}
	t.Setenv("E2FSCK_EXIT", "1")
	err = r.Check(context.Background(), "ext4", "/dev/loop9", Preen)
	if !errors.As(err, &te) || !te.Fixed || te.Code != 1 {
		t.Errorf("exit 1: %v, want a ToolError with Fixed", err)
	}
	t.Setenv("E2FSCK_EXIT", "0")
	if err := r.Check(context.Background(), "ext4", "/dev/loop9", Repair); err != nil || ExitStatus(err) != 0 {
		t.Errorf("exit 0: %v", err)
	}
}

// TestRunCancel checks that cancelling sends SIGINT (the checkers stop
// cleanly on it) rather than killing outright.
func TestRunCancel(t *testing.T) {
	r := fakeTools(t, map[string]string{
		"e2fsck": `trap 'echo interrupted; exit 32' INT; echo started; while :; do sleep 0.05; done`,
	})
	out := &testutil.SyncBuffer{}
	r.Stdout, r.Stderr = out, out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Check(ctx, "ext4", "/dev/loop9", Repair) }()
	for !strings.Contains(out.String(), "started") {
		time.Sleep(10 * time.Millisecond) // polling for the child to start
	}
	cancel()
	err := <-done
	var te *ToolError
	if !errors.As(err, &te) || te.Code != 32 || !strings.Contains(te.Meaning, "checking cancelled by user request") {
		t.Errorf("cancelled Check: %v, want exit 32 explained", err)
	}
}

func TestCheckArgs(t *testing.T) {
	tests := []struct {
		fstype string
		mode   CheckMode
		want   []string
	}{
		{"ext4", ReadOnly, []string{"e2fsck", "-f", "-C0", "-n", "D"}},
		{"ext2", Preen, []string{"e2fsck", "-f", "-C0", "-p", "D"}},
		{"ext3", Repair, []string{"e2fsck", "-f", "-C0", "-y", "D"}},
		{"xfs", ReadOnly, []string{"xfs_repair", "-n", "D"}},
		{"xfs", Preen, []string{"xfs_repair", "-n", "D"}},
		{"xfs", Repair, []string{"xfs_repair", "-e", "D"}},
		{"btrfs", Preen, []string{"btrfs", "check", "--readonly", "D"}},
		{"btrfs", Repair, []string{"btrfs", "check", "--repair", "D"}},
	}
	for _, tt := range tests {
		got, err := CheckArgs(tt.fstype, "D", tt.mode)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("CheckArgs(%s, %v) = %q, %v; want %q", tt.fstype, tt.mode, got, err, tt.want)
		}
	}
	if _, err := CheckArgs("swap", "D", ReadOnly); err == nil || !strings.Contains(err.Error(), "Linux swap area") {
		t.Errorf("CheckArgs(swap) error = %v, want one naming a swap area", err)
	}
	if _, err := CheckArgs("", "D", ReadOnly); err == nil || !strings.Contains(err.Error(), "no filesystem signature") {
		t.Errorf("CheckArgs(\"\") error = %v", err)
	}
}
