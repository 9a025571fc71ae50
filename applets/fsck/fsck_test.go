package fsck

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

func testEnv(out *bytes.Buffer) *cli.Env {
	return &cli.Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, ProcRoot: "/proc", SysRoot: "/sys", Now: time.Now, Getenv: os.Getenv}
}

func fsck(t *testing.T, env *cli.Env, args ...string) error {
	t.Helper()
	return Main(context.Background(), env, args)
}

// image makes a filesystem image with mkfs (no root needed: the checkers
// work on image files).
func image(t *testing.T, size int64, mkfs string, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, mkfs)
	img := testutil.Image(t, t.TempDir(), "fs.img", size)
	testutil.Run(t, mkfs, append(args, img)...)
	return img
}

func TestCleanFilesystems(t *testing.T) {
	tests := []struct {
		name, mkfs string
		size       int64
		args       []string
		tool       string
	}{
		{"ext4", "mkfs.ext4", 32 << 20, []string{"-q"}, "e2fsck"},
		{"xfs", "mkfs.xfs", 300 << 20, []string{"-q"}, "xfs_repair"},
		{"btrfs", "mkfs.btrfs", 128 << 20, []string{"-q"}, "btrfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := image(t, tt.size, tt.mkfs, tt.args...)
			var out bytes.Buffer
			if err := fsck(t, testEnv(&out), img); err != nil {
				t.Fatalf("fsck %s: %v\n%s", img, err, out.String())
			}
			if want := "fsck: " + tt.tool + " exit status 0: no errors\n"; !strings.HasSuffix(out.String(), want) {
				t.Errorf("output does not end with %q:\n%s", want, out.String())
			}
		})
	}
}

// corruptExt4 makes an ext4 image whose root directory inode is cleared.
func corruptExt4(t *testing.T) string {
	t.Helper()
	img := image(t, 32<<20, "mkfs.ext4", "-q")
	testutil.RequireTool(t, "debugfs")
	testutil.Run(t, "debugfs", "-w", "-R", "clri <2>", img)
	return img
}

func TestCorruptedExt4(t *testing.T) {
	img := corruptExt4(t)
	var out bytes.Buffer
	err := fsck(t, testEnv(&out), img, "-n")
	var code cli.ExitCode
	if !errors.As(err, &code) || code&4 == 0 {
		t.Fatalf("fsck -n on a corrupted ext4: %v, want an exit status with bit 4\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "filesystem errors left uncorrected") {
		t.Errorf("the exit status is not explained:\n%s", out.String())
	}
	// -y repairs it: status 1 (corrected), and then it is clean.
	out.Reset()
	err = fsck(t, testEnv(&out), img, "-y")
	if !errors.As(err, &code) || code != 1 || !strings.Contains(out.String(), "exit status 1: filesystem errors corrected") {
		t.Fatalf("fsck -y: %v, want exit status 1 explained\n%s", err, out.String())
	}
	out.Reset()
	if err := fsck(t, testEnv(&out), "-n", img); err != nil {
		t.Errorf("fsck -n after the repair: %v\n%s", err, out.String())
	}
}

func TestMissingChecker(t *testing.T) {
	img := image(t, 32<<20, "mkfs.ext4", "-q")
	var out bytes.Buffer
	env := testEnv(&out)
	empty := t.TempDir()
	env.Getenv = func(k string) string {
		if k == "PATH" {
			return empty
		}
		return os.Getenv(k)
	}
	err := fsck(t, env, img)
	if err == nil || !strings.Contains(err.Error(), "e2fsck not found in PATH") || !strings.HasSuffix(err.Error(), "install e2fsprogs") {
		t.Errorf("fsck without e2fsck in PATH: %v, want one naming e2fsprogs", err)
	}
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{{}, {"a", "b"}, {"-n", "-y", "a"}, {"-x", "a"}} {
		if err := fsck(t, testEnv(&out), args...); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("fsck %q: %v, want a usage error", args, err)
		}
	}
	zeros := testutil.Image(t, t.TempDir(), "zeros", 1<<20)
	if err := fsck(t, testEnv(&out), zeros); err == nil || !strings.Contains(err.Error(), "no known signature") {
		t.Errorf("fsck on zeros: %v, want one saying no signature was found", err)
	}
}

func TestRefuseRepairMountedRW(t *testing.T) {
	img := image(t, 32<<20, "mkfs.ext4", "-q")
	testutil.InMountNS(t, func() {
		dev := testutil.Loop(t, img)
		mnt := t.TempDir()
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		defer unix.Unmount(mnt, 0)
		var out bytes.Buffer
		err := fsck(t, testEnv(&out), dev, "-y")
		if err == nil || !strings.Contains(err.Error(), "mounted read-write at "+mnt) {
			t.Errorf("fsck -y on a mounted fs: %v, want a refusal naming %s\n%s", err, mnt, out.String())
		}
		if strings.Contains(out.String(), "running") {
			t.Errorf("the checker ran:\n%s", out.String())
		}
	})
}
