package swap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
)

// TestCanonicalDevice: a device-mapper device is named /dev/mapper/NAME
// whichever of its names it is given (dm-N, the mapper node), as mount(8)
// shows it; a plain device by its /dev name.
func TestCanonicalDevice(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "dmsetup", "blockdev")
	loop := testutil.Loop(t, testutil.Image(t, t.TempDir(), "img", 8<<20))
	link := filepath.Join(t.TempDir(), "lv")
	os.Symlink(loop, link)
	for _, p := range []string{loop, link} {
		if got := CanonicalDevice("/sys", p); got != loop {
			t.Errorf("CanonicalDevice(%s) = %s, want %s", p, got, loop)
		}
	}
	if _, err := os.Stat("/sys/class/misc/device-mapper"); err != nil {
		t.Skipf("no device-mapper in this kernel (%v): the dm names are not tested", err)
	}
	name := fmt.Sprintf("rootswap-test-%d", os.Getpid())
	sectors := strings.TrimSpace(testutil.Run(t, "blockdev", "--getsz", loop))
	testutil.Run(t, "dmsetup", "create", name, "--table", "0 "+sectors+" linear "+loop+" 0")
	t.Cleanup(func() { exec.Command("dmsetup", "remove", name).Run() })
	dm := strings.TrimSpace(testutil.Run(t, "dmsetup", "info", "-c", "--noheadings", "-o", "blkdevname", name))
	want := "/dev/mapper/" + name
	for _, p := range []string{"/dev/" + dm, want} {
		if _, err := os.Stat(p); err != nil {
			t.Logf("%s: %v", p, err)
			continue
		}
		if got := CanonicalDevice("/sys", p); got != want {
			t.Errorf("CanonicalDevice(%s) = %s, want %s", p, got, want)
		}
	}
}
