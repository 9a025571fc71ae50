package fsck

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// fsck -y on the backing file of a mounted xfs ran xfs_repair on it
// behind the kernel's back: refused, whichever way the loop device is
// mounted; -n still checks.
func TestRefuseRepairBackingFileOfMounted(t *testing.T) {
	testutil.RequireTool(t, "xfs_repair")
	img := image(t, 320<<20, "mkfs.xfs", "-q")
	testutil.InMountNS(t, func() {
		dev := testutil.Loop(t, img)
		mnt := t.TempDir()
		if err := unix.Mount(dev, mnt, "xfs", unix.MS_RDONLY, ""); err != nil {
			t.Errorf("mount: %v", err)
			return
		}
		defer unix.Unmount(mnt, 0)
		before, _ := os.ReadFile(img)
		for _, mode := range []string{"-y", "-p"} {
			var out bytes.Buffer
			err := fsck(t, testEnv(&out), img, mode)
			if err == nil || !strings.Contains(err.Error(), img+" is in use: "+dev+" is mounted at "+mnt) {
				t.Errorf("fsck %s on the backing file of a mounted xfs: %v, want a refusal naming %s\n%s", mode, err, mnt, out.String())
			}
			if strings.Contains(out.String(), "running") {
				t.Errorf("the checker ran:\n%s", out.String())
			}
		}
		if after, _ := os.ReadFile(img); !bytes.Equal(before, after) {
			t.Errorf("%s changed", img)
		}
		var out bytes.Buffer
		if err := fsck(t, testEnv(&out), img, "-n"); err != nil && strings.Contains(err.Error(), "in use") {
			t.Errorf("fsck -n refused: %v", err)
		}
	})
}
