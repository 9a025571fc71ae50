package plan

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
)

// shmLoop attaches a loop device to a new image in /dev/shm (tmpfs): a
// target that shares nothing with /, so that only the refusal a test
// looks for is at stake.
func shmLoop(t *testing.T, size int64) (dev, img string) {
	testutil.RequireRoot(t)
	dir, err := os.MkdirTemp("/dev/shm", "rootswap-plan-")
	if err != nil {
		t.Skip("no /dev/shm:", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	img = testutil.Image(t, dir, "target.img", size)
	return testutil.Loop(t, img), img
}

// refused runs plan and wants exit 3 with want among its blockers.
func refused(t *testing.T, want string, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	var code cli.ExitCode
	if !errors.As(err, &code) || code != 3 {
		t.Fatalf("plan %q: %v, want exit 3\n%s", args, err, out)
	}
	if !strings.Contains(out, want) {
		t.Errorf("plan %q does not say %q:\n%s", args, want, out)
	}
	return out
}

// A loop device backed by a file on / itself would be written through
// the filesystem being copied.
func TestRefuseLoopOnRoot(t *testing.T) {
	testutil.RequireRoot(t)
	dir, err := os.MkdirTemp("/var/tmp", "rootswap-plan-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dev := testutil.Loop(t, testutil.Image(t, dir, "on-root.img", 64<<20))
	refused(t, dev+" and / share a device: "+filepath.Base(dev)+" is backed by "+filepath.Join(dir, "on-root.img")+", "+filepath.Join(dir, "on-root.img")+" is on ",
		"--to", dev, "--force")
}

// An active swap area is never overwritten, whatever the flags.
func TestRefuseActiveSwap(t *testing.T) {
	testutil.RequireTool(t, "mkswap", "swapon", "swapoff")
	dev, _ := shmLoop(t, 16<<20)
	testutil.Run(t, "mkswap", dev)
	testutil.Run(t, "swapon", dev)
	t.Cleanup(func() { exec.Command("swapoff", dev).Run() })
	refused(t, dev+" is in use: "+dev+" is an active swap area",
		"--to", dev, "--force", "--force-swap-signature")
}

// A device mounted only in another mount namespace (a container's, a
// service's private one) is in use as much as one mounted here.
func TestRefuseMountedElsewhere(t *testing.T) {
	testutil.RequireTool(t, "mkfs.ext4")
	dev, _ := shmLoop(t, 32<<20)
	testutil.Run(t, "mkfs.ext4", "-q", dev)
	mnt := t.TempDir()
	pid := testutil.MountElsewhere(t, dev, mnt)
	refused(t, dev+" is in use: "+dev+" is mounted at "+mnt+" (in the mount namespace of pid "+strconv.Itoa(pid)+", ",
		"--to", dev, "--force")
}

// A swap signature, an LVM label and an md superblock each need their
// own flag; --force (for a plain filesystem) is not enough.
func TestSignatureFlags(t *testing.T) {
	testutil.RequireTool(t, "mkswap")
	for _, tc := range []struct {
		name, flag, says string
		write            func(t *testing.T, dev, img string)
	}{
		{"swap", "--force-swap-signature", "Linux swap area", func(t *testing.T, dev, img string) { testutil.Run(t, "mkswap", dev) }},
		{"lvm", "--force-lvm-label", "LVM2 physical volume", func(t *testing.T, dev, img string) {
			// A label in sector 1 as pvcreate writes it: LABELONE, its
			// sector, crc, the offset of the PV header, "LVM2 001".
			s := make([]byte, 512)
			copy(s, "LABELONE")
			binary.LittleEndian.PutUint64(s[8:], 1)
			binary.LittleEndian.PutUint32(s[20:], 32)
			copy(s[24:], "LVM2 001")
			copy(s[32:], "Xq1aVJ4d0qfPkzJ8dT6g7KbQ9LwE2Pf3")
			writeAt(t, img, s, 512)
		}},
		{"md", "--force-md-superblock", "Linux md RAID member", func(t *testing.T, dev, img string) {
			sb := make([]byte, 256) // metadata 1.2: at 4 KiB, magic and major version 1
			binary.LittleEndian.PutUint32(sb, 0xa92b4efc)
			binary.LittleEndian.PutUint32(sb[4:], 1)
			copy(sb[16:], "0123456789abcdef")
			writeAt(t, img, sb, 4096)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, img := shmLoop(t, 64<<20)
			tc.write(t, dev, img)
			want := dev + " is not empty: it holds " + tc.says
			refused(t, want, "--to", dev)
			out := refused(t, want, "--to", dev, "--force")
			if !strings.Contains(out, "pass "+tc.flag+" to overwrite it") {
				t.Errorf("the fix does not name %s:\n%s", tc.flag, out)
			}
			out, _ = run(t, "--to", dev, tc.flag)
			if strings.Contains(out, "is not empty") || !strings.Contains(out, dev+" holds "+tc.says) || !strings.Contains(out, tc.flag+": it will be overwritten") {
				t.Errorf("%s did not turn the blocker into a warning naming the signature:\n%s", tc.flag, out)
			}
		})
	}
}

func writeAt(t *testing.T, path string, b []byte, off int64) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// --backup is checked in plan: a relative path, a file on /.
func TestRefuseBackup(t *testing.T) {
	dev, _ := shmLoop(t, 16<<20)
	refused(t, "--backup root.zst is not an absolute path: it would land in the engine's tmpfs", "--to", dev, "--backup", "root.zst")
	refused(t, "--backup /var/tmp/root.zst is on / itself, which is read-only during the copy", "--to", dev, "--backup", "/var/tmp/root.zst")
}
