package dd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// loopImage makes a file of size bytes filled with garbage (or an ext4
// filesystem) and attaches it.
func loopImage(t *testing.T, dir, name string, size int64, mkfs bool) (dev, file string) {
	t.Helper()
	file = filepath.Join(dir, name)
	if mkfs {
		tree := filepath.Join(dir, name+"-tree")
		os.MkdirAll(tree, 0o755)
		writeRandom(t, filepath.Join(tree, "data"), 3<<20, 11)
		testutil.Run(t, "mkfs.ext4", "-F", "-q", "-d", tree, file, strconv.FormatInt(size/1024, 10)+"K")
	} else {
		writeRandom(t, file, int(size), 12)
	}
	return testutil.Loop(t, file), file
}

func readDev(t *testing.T, dev string, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// refused runs dd and checks that it failed saying want and that the
// target's first MiB is unchanged.
func refused(t *testing.T, target, want string, args ...string) {
	t.Helper()
	before := readDev(t, target, 1<<20)
	_, errs, err := ddRun(t, nil, args...)
	if err == nil || !strings.Contains(errs, want) {
		t.Errorf("dd %v: err = %v, want one saying %q\n%s", args, err, want, errs)
	}
	if after := readDev(t, target, 1<<20); !bytes.Equal(before, after) {
		t.Errorf("dd %v: target %s changed although refused", args, target)
	}
}

func TestRootBlockDeviceCopy(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.ext4", "e2fsck", "losetup")
	dir := t.TempDir()
	src, _ := loopImage(t, dir, "src", 64<<20, true)
	dst, _ := loopImage(t, dir, "dst", 80<<20, false)
	_, errs, err := ddRun(t, nil, "if="+src, "of="+dst, "blocks=used", "verify=yes")
	if err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	if !strings.Contains(errs, "rootswap dd: writing ") || !strings.Contains(errs, "verified") {
		t.Errorf("no announcement or verify line: %q", errs)
	}
	if out, err := exec.Command("e2fsck", "-fn", dst).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn %s: %v\n%s", dst, err, out)
	}
}

func TestRootRefusals(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.ext4", "losetup", "sfdisk", "mount")
	dir := t.TempDir()
	src, _ := loopImage(t, dir, "src", 64<<20, true)
	dst, _ := loopImage(t, dir, "dst", 80<<20, false)
	small, _ := loopImage(t, dir, "small", 32<<20, false)

	t.Run("same device", func(t *testing.T) {
		refused(t, src, "is the input file", "if="+src, "of="+src, "bs=1M")
		// Another node of the same device is another file: the device
		// numbers still match.
		alias := filepath.Join(dir, "alias")
		var st unix.Stat_t
		if err := unix.Stat(src, &st); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(alias, unix.S_IFBLK|0o600, int(st.Rdev)); err != nil {
			t.Fatal(err)
		}
		refused(t, src, "overlaps the input", "if="+src, "of="+alias, "bs=1M")
	})
	t.Run("too small", func(t *testing.T) {
		refused(t, small, "the copy needs 67108864 bytes", "if="+src, "of="+small, "bs=1M")
		refused(t, small, "the copy needs 67108864 bytes", "if="+src, "of="+small, "blocks=used")
	})
	t.Run("partition", func(t *testing.T) {
		disk := filepath.Join(dir, "disk")
		writeRandom(t, disk, 64<<20, 13)
		cmd := exec.Command("sfdisk", "-q", disk)
		cmd.Stdin = strings.NewReader("label: dos\n,20M\n,20M\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("sfdisk: %v\n%s", err, out)
		}
		whole := strings.TrimSpace(testutil.Run(t, "losetup", "--find", "--show", "-P", disk))
		t.Cleanup(func() { exec.Command("losetup", "-d", whole).Run() })
		// Without udev there is no node for the partition: make one from
		// sysfs.
		sysDev := "/sys/class/block/" + filepath.Base(whole) + "p1/dev"
		if _, err := os.Stat(sysDev); err != nil {
			// Some kernels leave the partition scan of losetup -P to
			// BLKPG: partx adds them.
			testutil.Run(t, "partx", "-a", whole)
		}
		majmin, err := os.ReadFile(sysDev)
		if err != nil {
			t.Fatalf("partition of %s not in sysfs: %v", whole, err)
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(string(majmin), "%d:%d", &maj, &min); err != nil {
			t.Fatal(err)
		}
		part := filepath.Join(dir, "part1")
		if err := unix.Mknod(part, unix.S_IFBLK|0o600, int(unix.Mkdev(maj, min))); err != nil {
			t.Fatal(err)
		}
		refused(t, part, "overlaps the input", "if="+whole, "of="+part, "bs=1M", "count=1")
		refused(t, whole, "overlaps the input", "if="+part, "of="+whole, "bs=1M", "count=1")
	})
	testutil.InMountNS(t, func() {
		mnt := filepath.Join(dir, "mnt")
		os.Mkdir(mnt, 0o755)
		t.Run("mounted target", func(t *testing.T) {
			other, _ := loopImage(t, dir, "other", 80<<20, true)
			testutil.Run(t, "mount", "-o", "ro", other, mnt)
			defer unix.Unmount(mnt, 0)
			refused(t, other, "is mounted at "+mnt, "if="+src, "of="+other, "bs=1M")
		})
		t.Run("read-write source", func(t *testing.T) {
			testutil.Run(t, "mount", src, mnt)
			defer unix.Unmount(mnt, 0)
			refused(t, dst, "mounted read-write at "+mnt, "if="+src, "of="+dst, "bs=1M")
			_, errs, err := ddRun(t, nil, "if="+src, "of="+dst, "bs=1M", "--allow-rw-source")
			if err != nil || !strings.Contains(errs, "warning: "+src+" is mounted read-write") {
				t.Errorf("--allow-rw-source: %v\n%s", err, errs)
			}
			// Read-only is what the procedure does: no refusal.
			testutil.Run(t, "mount", "-o", "remount,ro", mnt)
			if _, errs, err := ddRun(t, nil, "if="+src, "of="+dst, "blocks=used"); err != nil || strings.Contains(errs, "warning") {
				t.Errorf("read-only source: %v\n%s", err, errs)
			}
		})
	})
}
