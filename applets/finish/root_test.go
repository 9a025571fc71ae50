package finish

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/finish"
	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// loops is the story on loop devices: an old ext3 root labelled root and
// its copy, a new ext4 with the same label and UUID (a block copy keeps
// both), with a host tree whose / is the new one.
type loops struct {
	oldDev, newDev string
	oldFS          fstools.FS
	root, proc     string
	out            bytes.Buffer
}

func setup(t *testing.T) *loops {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.ext3", "mkfs.ext4", "tune2fs", "blkid", "losetup")
	dir := t.TempDir()
	l := &loops{root: t.TempDir(), proc: t.TempDir()}
	oldImg := testutil.Image(t, dir, "old.img", 64<<20)
	newImg := testutil.Image(t, dir, "new.img", 96<<20)
	testutil.Run(t, "mkfs.ext3", "-q", "-F", "-L", "root", oldImg)
	l.oldDev = testutil.Loop(t, oldImg)
	var err error
	if l.oldFS, err = fstools.DetectPath(l.oldDev); err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "mkfs.ext4", "-q", "-F", "-L", "root", "-U", l.oldFS.UUID, newImg)
	l.newDev = testutil.Loop(t, newImg)

	// / is the new loop device, as the mount table after a swap says.
	var st unix.Stat_t
	if err := unix.Stat(l.newDev, &st); err != nil {
		t.Fatal(err)
	}
	mi := fmt.Sprintf("29 1 %d:%d / / rw,relatime shared:1 - ext4 %s rw\n", unix.Major(st.Rdev), unix.Minor(st.Rdev), l.newDev)
	os.MkdirAll(filepath.Join(l.proc, "self"), 0o755)
	if err := os.WriteFile(filepath.Join(l.proc, "self", "mountinfo"), []byte(mi), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(l.root, "etc"), 0o755)
	if err := os.WriteFile(filepath.Join(l.root, "etc/fstab"), []byte("LABEL=root / ext3 errors=remount-ro 0 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *loops) config() *finish.Config {
	env := &cli.Env{
		Stdin: strings.NewReader(""), Stdout: &l.out, Stderr: &l.out,
		ProcRoot: l.proc, SysRoot: "/sys", Now: time.Now, Getenv: os.Getenv,
	}
	return &finish.Config{Env: env, Root: l.root, Old: l.oldDev}
}

func blkid(t *testing.T, dev, tag string) string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", tag, dev).Output()
	return strings.TrimSpace(string(out))
}

// TestRootRelabelOld: finish relabels the old root for real, so that
// LABEL=root and its UUID find only the new root.
func TestRootRelabelOld(t *testing.T) {
	l := setup(t)
	if err := finish.Run(context.Background(), l.config()); err != nil {
		t.Fatalf("finish: %v\n%s", err, l.out.String())
	}
	t.Logf("finish said:\n%s", l.out.String())
	after, err := fstools.DetectPath(l.oldDev)
	if err != nil {
		t.Fatal(err)
	}
	if after.Label != "oldroot" || after.UUID == l.oldFS.UUID || after.Type != "ext3" {
		t.Errorf("old root after finish: %s; want ext3 labelled oldroot with a UUID other than %s", after, l.oldFS.UUID)
	}
	if got := blkid(t, l.oldDev, "LABEL"); got != "oldroot" {
		t.Errorf("blkid LABEL of the old root = %q, want oldroot", got)
	}
	if got := blkid(t, l.oldDev, "UUID"); got == l.oldFS.UUID || got != after.UUID {
		t.Errorf("blkid UUID of the old root = %q (was %s, DetectPath says %s)", got, l.oldFS.UUID, after.UUID)
	}
	fstab, _ := os.ReadFile(filepath.Join(l.root, "etc/fstab"))
	if want := "LABEL=root / ext4 errors=remount-ro 0 1\n"; string(fstab) != want {
		t.Errorf("fstab %q, want %q", fstab, want)
	}
	backups, _ := filepath.Glob(filepath.Join(l.root, "etc/fstab.rootswap-*"))
	if len(backups) != 1 {
		t.Errorf("backups %q, want one", backups)
	}
}

// TestRootWipeOld: --wipe-old leaves no signature on the old root, with
// wipefs and with the native zeroing.
func TestRootWipeOld(t *testing.T) {
	for _, native := range []bool{false, true} {
		t.Run(fmt.Sprintf("native=%v", native), func(t *testing.T) {
			l := setup(t)
			cfg := l.config()
			cfg.WipeOld, cfg.Yes = true, true
			cfg.Devices = finish.LiveDevices(cfg.Env)
			if native {
				cfg.Devices.HasTool = func(string) bool { return false }
			} else {
				testutil.RequireTool(t, "wipefs")
			}
			if err := finish.Run(context.Background(), cfg); err != nil {
				t.Fatalf("finish --wipe-old: %v\n%s", err, l.out.String())
			}
			after, err := fstools.DetectPath(l.oldDev)
			if err != nil {
				t.Fatal(err)
			}
			if after.Type != "" {
				t.Errorf("old root after --wipe-old: %s, want no signature", after)
			}
			if out, err := exec.Command("blkid", "-p", l.oldDev).CombinedOutput(); err == nil {
				t.Errorf("blkid -p still finds something: %s", out)
			}
			how := "wipefs -a " + l.oldDev
			if native {
				how = "zero its superblock natively"
			}
			if !strings.Contains(l.out.String(), how) {
				t.Errorf("output does not say %q:\n%s", how, l.out.String())
			}
		})
	}
}

// TestRootRefuseHeld: an old root mounted where the mount table finish
// reads does not show it is still refused (the kernel's O_EXCL says so),
// and nothing changes.
func TestRootRefuseHeld(t *testing.T) {
	l := setup(t)
	mnt := t.TempDir()
	testutil.InMountNS(t, func() {
		if err := unix.Mount(l.oldDev, mnt, "ext3", unix.MS_RDONLY, ""); err != nil {
			t.Errorf("mount %s: %v", l.oldDev, err)
			return
		}
		defer unix.Unmount(mnt, 0)
		cfg := l.config()
		cfg.WipeOld, cfg.Yes = true, true
		err := finish.Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "held by the kernel") {
			t.Errorf("finish on a mounted old root: %v", err)
		}
	})
	if after, _ := fstools.DetectPath(l.oldDev); after.Label != "root" || after.UUID != l.oldFS.UUID {
		t.Errorf("the old root changed: %s", after)
	}
	if fstab, _ := os.ReadFile(filepath.Join(l.root, "etc/fstab")); string(fstab) != "LABEL=root / ext3 errors=remount-ro 0 1\n" {
		t.Errorf("fstab changed: %q", fstab)
	}
}
