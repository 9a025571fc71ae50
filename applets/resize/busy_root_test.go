package resize

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
)

// An ext4 mounted only in another mount namespace looks unmounted here:
// resize would run e2fsck and resize2fs offline on a mounted filesystem.
// Refused, naming the namespace.
func TestRefuseMountedElsewhere(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.ext4")
	dev := loopFS(t, 64<<20, "mkfs.ext4", "-q", "DEV", "32M")
	mnt := t.TempDir()
	pid := testutil.MountElsewhere(t, dev, mnt)
	before := detect(t, dev)
	var out bytes.Buffer
	err := resize(testEnv(&out), dev)
	want := dev + " is in use: " + dev + " is mounted at " + mnt + " (in the mount namespace of pid " + strconv.Itoa(pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("resize: %v, want %q\n%s", err, want, out.String())
	}
	if after := detect(t, dev); after.Size != before.Size {
		t.Errorf("the filesystem went from %d to %d bytes", before.Size, after.Size)
	}
}
