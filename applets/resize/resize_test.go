package resize

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

func testEnv(out *bytes.Buffer) *cli.Env {
	return &cli.Env{Stdin: strings.NewReader(""), Stdout: out, Stderr: out, ProcRoot: "/proc", SysRoot: "/sys", Now: time.Now, Getenv: os.Getenv}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		bs   int
		want int64
	}{
		{"100", 4096, 100 * 4096},
		{"100", 1024, 100 * 1024},
		{"8s", 4096, 8 * 512},
		{"64K", 4096, 64 << 10},
		{"64k", 4096, 64 << 10},
		{"300M", 4096, 300 << 20},
		{"2G", 4096, 2 << 30},
		{"1T", 4096, 1 << 40},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in, tt.bs)
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q, %d) = %d, %v; want %d", tt.in, tt.bs, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "M", "-1G", "0", "1.5G", "12X", "99999999999T"} {
		if got, err := ParseSize(bad, 4096); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", bad, got)
		}
	}
}

// loopFS runs mkfs on a loop device of devSize; DEV in args is replaced
// by the device, which is appended when args do not name it.
func loopFS(t *testing.T, devSize int64, mkfs string, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, mkfs)
	img := testutil.Image(t, t.TempDir(), "disk.img", devSize)
	dev := testutil.Loop(t, img)
	named := false
	for i, a := range args {
		if a == "DEV" {
			args[i], named = dev, true
		}
	}
	if !named {
		args = append(args, dev)
	}
	testutil.Run(t, mkfs, args...)
	return dev
}

func detect(t *testing.T, dev string) fstools.FS {
	t.Helper()
	fs, err := fstools.DetectPath(dev)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func resize(env *cli.Env, args ...string) error {
	return Main(context.Background(), env, args)
}

func TestGrowToDevice(t *testing.T) {
	tests := []struct {
		name   string
		dev    int64
		fs     int64
		mkfs   string
		args   []string
		fstype string
	}{
		{"ext4", 128 << 20, 64 << 20, "mkfs.ext4", []string{"-q", "DEV", "64M"}, "ext4"},
		{"xfs", 512 << 20, 300 << 20, "mkfs.xfs", []string{"-q", "-d", "size=300m", "DEV"}, "xfs"},
		{"btrfs", 256 << 20, 128 << 20, "mkfs.btrfs", []string{"-q", "-b", "128m", "DEV"}, "btrfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.InMountNS(t, func() {
				dev := loopFS(t, tt.dev, tt.mkfs, tt.args...)
				if fs := detect(t, dev); fs.Size != tt.fs {
					t.Errorf("before: size %d, want %d", fs.Size, tt.fs)
					return
				}
				var out bytes.Buffer
				if err := resize(testEnv(&out), dev); err != nil {
					t.Errorf("resize %s: %v\n%s", dev, err, out.String())
					return
				}
				if fs := detect(t, dev); fs.Size != tt.dev || fs.Type != tt.fstype {
					t.Errorf("after: %s, want %s of %d bytes\n%s", fs, tt.fstype, tt.dev, out.String())
				}
				if !strings.Contains(out.String(), "(the size of the device)") {
					t.Errorf("the plan was not printed:\n%s", out.String())
				}
			})
		})
	}
}

func TestGrowMountedExt4(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 128<<20, "mkfs.ext4", "-q", "-b", "4096")
		mnt := t.TempDir()
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		defer unix.Unmount(mnt, 0)
		var out bytes.Buffer
		if err := resize(testEnv(&out), dev, "200M"); err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("resize to 200M on 128M: %v, want a refusal\n%s", err, out.String())
		}
		if err := resize(testEnv(&out), dev, "64M"); err == nil || !strings.Contains(err.Error(), "shrink only unmounted") {
			t.Errorf("shrinking mounted ext4: %v, want a refusal\n%s", err, out.String())
		}
		var before unix.Statfs_t
		unix.Statfs(mnt, &before)
		if int64(before.Blocks)*before.Bsize > 128<<20 {
			t.Errorf("the refused resizes changed the size")
		}
		// mkfs used the whole device: make room by growing the device.
		testutil.Run(t, "truncate", "-s", "256M", backingFile(t, dev))
		testutil.Run(t, "losetup", "-c", dev)
		out.Reset()
		err := resize(testEnv(&out), dev)
		if !hasCapSysResource(testEnv(&out)) {
			// Containers often drop it; the kernel then refuses online
			// resizing, and the applet must say so before running resize2fs.
			if err == nil || !strings.Contains(err.Error(), "needs CAP_SYS_RESOURCE") || strings.Contains(out.String(), "+ resize2fs") {
				t.Errorf("online grow without CAP_SYS_RESOURCE: %v, want a refusal before resize2fs\n%s", err, out.String())
			}
			return
		}
		if err != nil {
			t.Errorf("online grow: %v\n%s", err, out.String())
			return
		}
		var st unix.Statfs_t
		if err := unix.Statfs(mnt, &st); err != nil {
			t.Error(err)
			return
		}
		if st.Blocks <= before.Blocks {
			t.Errorf("statfs blocks %d -> %d: did not grow\n%s", before.Blocks, st.Blocks, out.String())
		}
		if strings.Contains(out.String(), "e2fsck") {
			t.Errorf("e2fsck ran on a mounted filesystem:\n%s", out.String())
		}
	})
}

func backingFile(t *testing.T, dev string) string {
	t.Helper()
	b, err := os.ReadFile("/sys/class/block/" + strings.TrimPrefix(dev, "/dev/") + "/loop/backing_file")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestShrinkExt4Unmounted(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 128<<20, "mkfs.ext4", "-q", "-b", "4096")
		var out bytes.Buffer
		if err := resize(testEnv(&out), dev, "96M"); err != nil {
			t.Errorf("shrink: %v\n%s", err, out.String())
			return
		}
		if fs := detect(t, dev); fs.Size != 96<<20 {
			t.Errorf("after shrink: %s, want 96 MiB", fs)
		}
		if !strings.Contains(out.String(), "+ e2fsck -f -C0 -p "+dev) || !strings.Contains(out.String(), "+ resize2fs -p "+dev+" 24576") {
			t.Errorf("commands not as expected:\n%s", out.String())
		}
	})
}

func TestXFSShrinkRefused(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 400<<20, "mkfs.xfs", "-q")
		before := detect(t, dev)
		var out bytes.Buffer
		err := resize(testEnv(&out), dev, "300M")
		if err == nil || !strings.Contains(err.Error(), "xfs cannot shrink") {
			t.Errorf("xfs shrink: %v, want a refusal\n%s", err, out.String())
		}
		if after := detect(t, dev); after != before {
			t.Errorf("refused shrink changed the filesystem: %s -> %s", before, after)
		}
		// The temporary mount point must not be left behind either.
		if strings.Contains(out.String(), "mounted on") {
			t.Errorf("mounted although refusing:\n%s", out.String())
		}
	})
}

func TestMissingTool(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 384<<20, "mkfs.btrfs", "-q", "-b", "120m")
		var out bytes.Buffer
		env := testEnv(&out)
		empty := t.TempDir()
		env.Getenv = func(k string) string {
			if k == "PATH" {
				return empty
			}
			return os.Getenv(k)
		}
		err := resize(env, dev)
		var mt *fstools.MissingToolError
		if !errors.As(err, &mt) || !strings.Contains(err.Error(), "install btrfs-progs") {
			t.Errorf("resize without btrfs in PATH: %v, want one naming btrfs-progs", err)
		}
		if fs := detect(t, dev); fs.Size != 120<<20 {
			t.Errorf("size changed to %d", fs.Size)
		}
	})
}

// TestBtrfsMinimum: the kernel resizes btrfs to 256 MiB at least; below
// that the applet refuses instead of passing on btrfs's "Invalid argument".
func TestBtrfsMinimum(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 512<<20, "mkfs.btrfs", "-q", "-b", "128m")
		var out bytes.Buffer
		err := resize(testEnv(&out), dev, "200M")
		if err == nil || !strings.Contains(err.Error(), "only to 256 MiB or more") || strings.Contains(out.String(), "+ btrfs") {
			t.Errorf("resize to 200M: %v, want a refusal before btrfs runs\n%s", err, out.String())
		}
		out.Reset()
		if err := resize(testEnv(&out), dev, "300M"); err != nil {
			t.Errorf("resize to 300M: %v\n%s", err, out.String())
		}
		if fs := detect(t, dev); fs.Size != 300<<20 {
			t.Errorf("after resize to 300M: %s", fs)
		}
	})
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	if err := resize(testEnv(&out)); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("resize with no operands: %v, want a usage error", err)
	}
	img := testutil.Image(t, t.TempDir(), "img", 1<<20)
	if err := resize(testEnv(&out), img); err == nil || !strings.Contains(err.Error(), "not a block device: regular file") {
		t.Errorf("resize on a regular file: %v", err)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"100", "8s", "64K", "300M", "2G", "1T", "", "-1G", "9223372036854775807", "99999999999T"} {
		f.Add(s, 4096)
	}
	f.Fuzz(func(t *testing.T, s string, bs int) {
		if bs <= 0 || bs > 65536 {
			return
		}
		n, err := ParseSize(s, bs)
		if err == nil && n <= 0 {
			t.Errorf("ParseSize(%q, %d) = %d without an error", s, bs, n)
		}
	})
}
