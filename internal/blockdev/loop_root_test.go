package blockdev

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// A mounted squashfs image (a snap, a live system's) is moved to a copy
// of its file while in use: the mount stays, reads through a descriptor
// held throughout go on and match, the kernel names the copy, and the
// original is no longer held. A read-write loop device is refused.
func TestChangeLoopBacking(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mksquashfs", "mkfs.ext2", "losetup")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	want := map[string][]byte{}
	for i := range 64 {
		b := make([]byte, 20000)
		for j := range b {
			b[j] = byte(i*7 + j*13 + j/251)
		}
		name := fmt.Sprintf("f%d", i)
		want[name] = b
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	orig := filepath.Join(dir, "orig.sqfs")
	testutil.Run(t, "mksquashfs", src, orig, "-quiet", "-noappend")
	b, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "copy.sqfs")
	if err := os.WriteFile(copied, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)

	testutil.InMountNS(t, func() {
		dev := strings.TrimSpace(testutil.Run(t, "losetup", "-r", "-f", "--show", orig))
		t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
		testutil.Run(t, "mount", "-t", "squashfs", "-o", "ro", dev, mnt)
		defer unix.Unmount(mnt, unix.MNT_DETACH)
		held, err := os.Open(filepath.Join(mnt, "f1")) // in use throughout
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()

		li, err := Loop("/sys", dev)
		if err != nil {
			t.Fatal(err)
		}
		if li.File != orig || !li.ReadOnly {
			t.Fatalf("Loop(%s) = %+v, want %s read-only", dev, li, orig)
		}
		if err := ChangeLoopBacking(dev, copied); err != nil {
			t.Fatal(err)
		}
		li, err = Loop("/sys", dev)
		if err != nil || li.File != copied {
			t.Errorf("after the change: %+v, %v; want backed by %s", li, err, copied)
		}
		os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0) // read from the copy
		got, err := io.ReadAll(held)
		if err != nil || !bytes.Equal(got, want["f1"]) {
			t.Errorf("read through the held descriptor after the change: %d bytes, %v", len(got), err)
		}
		for _, name := range []string{"f2", "f63"} {
			if got, err := os.ReadFile(filepath.Join(mnt, name)); err != nil || !bytes.Equal(got, want[name]) {
				t.Errorf("%s after the change: %d bytes, %v", name, len(got), err)
			}
		}
		if out := testutil.Run(t, "losetup", "-j", orig); strings.TrimSpace(out) != "" {
			t.Errorf("losetup -j %s still lists %q: the original is held", orig, out)
		}
	})

	img := testutil.Image(t, dir, "rw.img", 8<<20)
	testutil.Run(t, "mkfs.ext2", "-q", "-F", img)
	same := filepath.Join(dir, "rw-copy.img")
	b, _ = os.ReadFile(img)
	os.WriteFile(same, b, 0o644)
	dev := testutil.Loop(t, img) // read-write
	if err := ChangeLoopBacking(dev, same); err == nil {
		t.Errorf("ChangeLoopBacking of a read-write loop device succeeded, want a refusal")
	}
}
