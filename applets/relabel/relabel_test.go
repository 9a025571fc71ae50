package relabel

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
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

func relabel(env *cli.Env, args ...string) error {
	return Main(context.Background(), env, args)
}

func loopFS(t *testing.T, size int64, mkfs string, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, mkfs)
	img := testutil.Image(t, t.TempDir(), "disk.img", size)
	dev := testutil.Loop(t, img)
	testutil.Run(t, mkfs, append(args, dev)...)
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

func TestRelabel(t *testing.T) {
	tests := []struct {
		name, mkfs string
		size       int64
		args       []string
	}{
		{"ext4", "mkfs.ext4", 32 << 20, []string{"-q", "-L", "root"}},
		{"ext2", "mkfs.ext2", 16 << 20, []string{"-q", "-L", "root"}},
		{"xfs", "mkfs.xfs", 300 << 20, []string{"-q", "-L", "root"}},
		{"btrfs", "mkfs.btrfs", 128 << 20, []string{"-q", "-L", "root"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.InMountNS(t, func() {
				dev := loopFS(t, tt.size, tt.mkfs, tt.args...)
				before := detect(t, dev)
				var out bytes.Buffer
				if err := relabel(testEnv(&out), dev); err != nil {
					t.Errorf("relabel %s: %v\n%s", dev, err, out.String())
					return
				}
				after := detect(t, dev)
				if after.Label != "oldroot" || after.UUID == before.UUID || after.UUID == "" || after.Type != before.Type {
					t.Errorf("before %s\nafter %s\nwant label oldroot and a new UUID\n%s", before, after, out.String())
				}
				for _, want := range []string{"old: label \"root\" UUID " + before.UUID, "new: label \"oldroot\" UUID " + after.UUID} {
					if !strings.Contains(out.String(), want) {
						t.Errorf("output lacks %q:\n%s", want, out.String())
					}
				}
				// A given UUID and label are set as given.
				const uuid = "0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b"
				out.Reset()
				if err := relabel(testEnv(&out), dev, "--label", "old2", "--uuid", strings.ToUpper(uuid)); err != nil {
					t.Errorf("relabel --uuid: %v\n%s", err, out.String())
					return
				}
				if got := detect(t, dev); got.Label != "old2" || got.UUID != uuid {
					t.Errorf("after --label old2 --uuid %s: %s", uuid, got)
				}
			})
		})
	}
}

func TestRefuseMountedRW(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 32<<20, "mkfs.ext4", "-q", "-L", "root", "-O", "metadata_csum,metadata_csum_seed")
		mnt := t.TempDir()
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		defer unix.Unmount(mnt, 0)
		before := detect(t, dev)
		var out bytes.Buffer
		err := relabel(testEnv(&out), dev)
		if err == nil || !strings.Contains(err.Error(), "mounted read-write at "+mnt) {
			t.Errorf("relabel of a rw-mounted fs: %v, want a refusal naming %s", err, mnt)
		}
		if after := detect(t, dev); after != before {
			t.Errorf("refused relabel changed %s into %s", before, after)
		}
		// Read-only is how the old root sits after the swap: allowed for ext.
		if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Errorf("remount ro: %v", err)
			return
		}
		out.Reset()
		if err := relabel(testEnv(&out), dev, "--uuid", "0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b"); err != nil {
			t.Errorf("relabel of a ro-mounted ext4: %v\n%s", err, out.String())
		}
	})
}

// TestMountedMetadataCsum: tune2fs changes the UUID of a mounted ext4
// with metadata_csum only when metadata_csum_seed is set; the applet says
// so before running anything, and --uuid keep changes the label alone.
func TestMountedMetadataCsum(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 32<<20, "mkfs.ext4", "-q", "-L", "root", "-O", "metadata_csum,^metadata_csum_seed")
		mnt := t.TempDir()
		if err := unix.Mount(dev, mnt, "ext4", unix.MS_RDONLY, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		defer unix.Unmount(mnt, 0)
		before := detect(t, dev)
		var out bytes.Buffer
		err := relabel(testEnv(&out), dev)
		if err == nil || !strings.Contains(err.Error(), "metadata_csum_seed") || strings.Contains(out.String(), "+ tune2fs") {
			t.Errorf("relabel: %v, want a refusal before tune2fs runs\n%s", err, out.String())
		}
		if after := detect(t, dev); after != before {
			t.Errorf("refused relabel changed %s into %s", before, after)
		}
		out.Reset()
		if err := relabel(testEnv(&out), dev, "--uuid", "keep"); err != nil {
			t.Errorf("relabel --uuid keep: %v\n%s", err, out.String())
			return
		}
		if after := detect(t, dev); after.Label != "oldroot" || after.UUID != before.UUID {
			t.Errorf("after --uuid keep: %s, want label oldroot and UUID %s", after, before.UUID)
		}
	})
}

func TestRefuseMountedXFS(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 300<<20, "mkfs.xfs", "-q")
		mnt := t.TempDir()
		if err := unix.Mount(dev, mnt, "xfs", unix.MS_RDONLY, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		defer unix.Unmount(mnt, 0)
		var out bytes.Buffer
		if err := relabel(testEnv(&out), dev); err == nil || !strings.Contains(err.Error(), "only unmounted") {
			t.Errorf("relabel of a mounted xfs: %v, want a refusal", err)
		}
	})
}

func TestValidation(t *testing.T) {
	var out bytes.Buffer
	for _, args := range [][]string{
		{},
		{"a", "b"},
		{"/dev/null", "--uuid", "not-a-uuid"},
		{"/dev/null", "--uuid", "0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6"},
		{"/dev/null", "--uuid", "00000000-0000-0000-0000-000000000000"},
		{"/dev/null", "--label", ""},
	} {
		if err := relabel(testEnv(&out), args...); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("relabel %q: %v, want a usage error", args, err)
		}
	}
	testutil.InMountNS(t, func() {
		for _, tt := range []struct {
			mkfs  string
			size  int64
			label string
		}{
			{"mkfs.ext4", 32 << 20, "seventeen-bytes!!"},
			{"mkfs.xfs", 300 << 20, "thirteen-byte"},
		} {
			dev := loopFS(t, tt.size, tt.mkfs, "-q")
			before := detect(t, dev)
			err := relabel(testEnv(&out), dev, "--label", tt.label)
			if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), "labels hold at most") {
				t.Errorf("%s label %q: %v, want a usage error about the length", tt.mkfs, tt.label, err)
			}
			if after := detect(t, dev); after != before {
				t.Errorf("refused relabel changed %s into %s", before, after)
			}
			// One byte shorter fits.
			if err := relabel(testEnv(&out), dev, "--label", tt.label[1:]); err != nil {
				t.Errorf("%s label %q: %v", tt.mkfs, tt.label[1:], err)
			}
		}
	})
}

func TestRandomUUID(t *testing.T) {
	a, b := fstools.RandomUUID(), fstools.RandomUUID()
	if a == b || !uuidRE.MatchString(a) || a[14] != '4' || !strings.ContainsRune("89ab", rune(a[19])) {
		t.Errorf("randomUUID() = %s, %s; want two different version-4 UUIDs", a, b)
	}
}

func TestMissingTool(t *testing.T) {
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 300<<20, "mkfs.xfs", "-q")
		var out bytes.Buffer
		env := testEnv(&out)
		empty := t.TempDir()
		env.Getenv = func(k string) string {
			if k == "PATH" {
				return empty
			}
			return os.Getenv(k)
		}
		err := relabel(env, dev)
		if err == nil || !strings.Contains(err.Error(), "xfs_admin not found in PATH") || !strings.Contains(err.Error(), "install xfsprogs") {
			t.Errorf("relabel without xfs_admin: %v", err)
		}
	})
}

// TestStaleCheckMetadataCsum: an ext4 with metadata_csum and without
// metadata_csum_seed, mounted since its last check (a root always was):
// tune2fs -U alone refuses it ("requires a freshly checked filesystem");
// the relabel checks it first and gets its new UUID.
func TestStaleCheckMetadataCsum(t *testing.T) {
	testutil.RequireTool(t, "e2fsck")
	testutil.InMountNS(t, func() {
		dev := loopFS(t, 32<<20, "mkfs.ext4", "-q", "-L", "root", "-O", "metadata_csum,^metadata_csum_seed")
		testutil.Run(t, "tune2fs", "-T", "20200101", dev)
		mnt := t.TempDir()
		if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		unix.Unmount(mnt, 0)
		before := detect(t, dev)
		var out bytes.Buffer
		if err := relabel(testEnv(&out), dev); err != nil {
			t.Errorf("relabel: %v\n%s", err, out.String())
			return
		}
		if after := detect(t, dev); after.Label != "oldroot" || after.UUID == before.UUID {
			t.Errorf("after the relabel: %s, want label oldroot and a UUID other than %s\n%s", after, before.UUID, out.String())
		}
		if !strings.Contains(out.String(), "+ e2fsck -f -p "+dev) {
			t.Errorf("no e2fsck before tune2fs:\n%s", out.String())
		}
		if o, err := exec.Command("e2fsck", "-f", "-n", dev).CombinedOutput(); err != nil {
			t.Errorf("e2fsck -f -n after the relabel: %v\n%s", err, o)
		}
	})
}
