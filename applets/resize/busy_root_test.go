package resize

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/testutil"
)

// An ext4 mounted only in another mount namespace looks unmounted here:
// resize would run e2fsck and resize2fs offline on a mounted filesystem.
// Refused, naming the namespace.
func TestRefuseMountedElsewhere(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "unshare", "mkfs.ext4")
	dev := loopFS(t, 64<<20, "mkfs.ext4", "-q", "DEV", "32M")
	mnt := t.TempDir()
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", "mount "+dev+" "+mnt+" && exec sleep 600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	mi := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "mountinfo")
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(mi); strings.Contains(string(b), " "+mnt+" ") {
			break
		}
		if i == 500 {
			t.Fatalf("%s never showed the mount on %s", mi, mnt)
		}
		time.Sleep(10 * time.Millisecond)
	}
	before := detect(t, dev)
	var out bytes.Buffer
	err := resize(testEnv(&out), dev)
	want := dev + " is in use: " + dev + " is mounted at " + mnt + " (in the mount namespace of pid " + strconv.Itoa(cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("resize: %v, want %q\n%s", err, want, out.String())
	}
	if after := detect(t, dev); after.Size != before.Size {
		t.Errorf("the filesystem went from %d to %d bytes", before.Size, after.Size)
	}
}
