package dd

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// Loop devices are resolved to their backing files before anything is
// written: each of these once destroyed the data it names.
func TestRootLoopRefusals(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.ext4", "losetup", "mkswap", "swapon", "swapoff")
	dir := t.TempDir()
	src, srcImg := loopImage(t, dir, "src", 16<<20, false)
	other := filepath.Join(dir, "other")
	writeRandom(t, other, 4<<20, 14)

	t.Run("a loop device into its own backing file", func(t *testing.T) {
		refused(t, srcImg, "overlaps the input "+src+": "+filepath.Base(src)+" is backed by "+srcImg, "if="+src, "of="+srcImg, "bs=1M")
		if fi, err := os.Stat(srcImg); err != nil || fi.Size() != 16<<20 {
			t.Errorf("%s after the refusal: %v, %v; want 16 MiB, not truncated", srcImg, fi, err)
		}
	})
	t.Run("a file into the loop device on it", func(t *testing.T) {
		refused(t, src, "overlaps the input "+srcImg+": "+filepath.Base(src)+" is backed by "+srcImg, "if="+srcImg, "of="+src, "bs=1M", "seek=1")
	})
	t.Run("a swap area", func(t *testing.T) {
		sw, _ := loopImage(t, dir, "swap", 16<<20, false)
		testutil.Run(t, "mkswap", sw)
		testutil.Run(t, "swapon", sw)
		defer exec.Command("swapoff", sw).Run()
		refused(t, sw, sw+" is an active swap area", "if="+other, "of="+sw, "bs=1M", "conv=notrunc")
	})
	testutil.InMountNS(t, func() {
		t.Run("the backing file of a mounted loop device", func(t *testing.T) {
			dev, img := loopImage(t, dir, "mounted", 32<<20, true)
			mnt := filepath.Join(dir, "mnt")
			os.Mkdir(mnt, 0o755)
			testutil.Run(t, "mount", dev, mnt)
			defer unix.Unmount(mnt, 0)
			refused(t, img, dev+" is mounted at "+mnt, "if="+other, "of="+img, "bs=1M", "conv=notrunc")
			// A new file on that filesystem, from the image itself.
			refused(t, img, "overlaps the input "+img, "if="+img, "of="+filepath.Join(mnt, "copy"), "bs=1M")
		})
	})
}
