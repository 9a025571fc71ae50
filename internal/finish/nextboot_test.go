package finish

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/bootguard"
)

const release = "6.1.0-18-amd64"

// guardedFixture is the Debian fixture with what the first boot needs:
// the running kernel's image and initramfs in /boot, systemd running, an
// update-grub that runs /etc/grub.d/42_rootswap, an update-initramfs that
// rewrites the initramfs in place.
func guardedFixture(t *testing.T) *fixture {
	x := newFixture(t)
	x.file("boot/vmlinuz-"+release, "old kernel", 0o644)
	x.file("boot/initrd.img-"+release, "the initramfs the old root booted", 0o644)
	x.file("etc/default/grub", "GRUB_DEFAULT=0\nGRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n", 0o644)
	x.file("rootswap.bin", "the rootswap binary", 0o755)
	x.dir("run/systemd/system")
	x.cfg.NextBoot.Release = release
	x.cfg.NextBoot.Self = filepath.Join(x.root, "rootswap.bin")
	return x
}

func (x *fixture) guardedRun() error {
	c := x.config()
	inner := c.Run
	c.Run = func(ctx context.Context, argv []string) error {
		switch argv[0] {
		case "update-initramfs":
			x.file("boot/initrd.img-"+release, "regenerated on the new root", 0o644)
		case "update-grub":
			cfg := x.grubCfg
			if data, err := os.ReadFile(filepath.Join(x.root, grubScript)); err == nil && strings.Contains(string(data), "rootswap.cfg") {
				cfg += "### BEGIN /etc/grub.d/42_rootswap ###\nif [ -f \"$prefix/rootswap.cfg\" ]; then\n  source \"$prefix/rootswap.cfg\"\nfi\n"
			}
			x.grubCfg = cfg
		}
		return inner(ctx, argv)
	}
	return Run(context.Background(), c)
}

func (x *fixture) read(rel string) string {
	x.t.Helper()
	b, err := os.ReadFile(filepath.Join(x.root, rel))
	if err != nil {
		x.t.Fatal(err)
	}
	return string(b)
}

// TestFirstBootGuarded: the old root stays GRUB's default with its own
// initramfs (the one it booted, not the regenerated one) and its new
// UUID; the new root is next_entry, booted once through the guard.
func TestFirstBootGuarded(t *testing.T) {
	x := guardedFixture(t)
	if err := x.guardedRun(); err != nil {
		t.Fatalf("finish: %v\n%s%s", err, x.stdout.String(), x.stderr.String())
	}
	if got, want := x.read("boot/rootswap/initrd.img-"+release), "the initramfs the old root booted"; got != want {
		t.Errorf("kept initramfs %q, want %q", got, want)
	}
	if got, want := x.read("boot/rootswap/vmlinuz-"+release), "old kernel"; got != want {
		t.Errorf("kept kernel %q, want %q", got, want)
	}
	if got, want := x.read("sbin/rootswap-bootguard"), "the rootswap binary"; got != want {
		t.Errorf("guard %q, want %q", got, want)
	}
	if got := x.read("etc/default/grub"); got != "GRUB_DEFAULT=saved\nGRUB_TIMEOUT=0\nGRUB_CMDLINE_LINUX=\"console=ttyS0\"\n" {
		t.Errorf("/etc/default/grub:\n%s", got)
	}
	env, err := bootguard.ReadEnv(filepath.Join(x.root, "boot/grub/grubenv"))
	if err != nil {
		t.Fatal(err)
	}
	if env["saved_entry"] != "rootswap-old" || env["next_entry"] != "rootswap-new" {
		t.Errorf("grubenv %v, want saved_entry=rootswap-old next_entry=rootswap-new", env)
	}
	relabelled := "6a0e7d4b-93c1-4f8e-b2a5-0c9d8e7f6a51" // what the fake tune2fs-relabel gives
	want := `menuentry 'rootswap: the old root /dev/sda2 (the way back)' --id rootswap-old {
	load_video
	insmod ext2
	echo	'Loading Linux 6.1.0-18-amd64 ...'
	linux /rootswap/vmlinuz-6.1.0-18-amd64 root=UUID=` + relabelled + ` ro quiet
	echo	'Loading initial ramdisk ...'
	initrd /rootswap/initrd.img-6.1.0-18-amd64
}
menuentry 'rootswap: the first boot of the new root /dev/mapper/sys-root' --id rootswap-new {
	load_video
	insmod ext2
	echo	'Loading Linux 6.1.0-18-amd64 ...'
	linux /vmlinuz-6.1.0-18-amd64 root=/dev/mapper/sys-root ro quiet panic=10 init=/sbin/rootswap-bootguard
	echo	'Loading initial ramdisk ...'
	initrd /initrd.img-6.1.0-18-amd64
}
`
	if got := x.read("boot/grub/rootswap.cfg"); got != want {
		t.Errorf("rootswap.cfg:\n%s\nwant:\n%s", got, want)
	}
	rec, err := bootguard.ReadRecord(filepath.Join(x.root, bootguard.BootRecord))
	if err != nil {
		t.Fatal(err)
	}
	if rec["state"] != bootguard.Pending || rec["old_uuid"] != relabelled || rec["new_uuid"] != newUUID || rec["new_entry"] != "gnulinux-simple" ||
		rec["boot_dev"] != "/dev/sda1" || rec["deadline"] != "600" || rec["finished"] != "2024-01-02T03:04:05Z" {
		t.Errorf("record %v", rec)
	}
	if got, want := x.read(bootguard.RootRecord), string(rec.Marshal()); got != want {
		t.Errorf("the new root's copy of the record differs:\n%s", got)
	}
	if got := x.read("etc/systemd/system/rootswap-firstboot.service"); !strings.Contains(got, "ExecStart=/sbin/rootswap-bootguard confirm") {
		t.Errorf("unit:\n%s", got)
	}
	if l, err := os.Readlink(filepath.Join(x.root, "etc/systemd/system/multi-user.target.wants/rootswap-firstboot.service")); err != nil || l != "/etc/systemd/system/rootswap-firstboot.service" {
		t.Errorf("unit not enabled: %q %v", l, err)
	}
	out := x.stdout.String()
	// The old initramfs is kept before the generator runs, the entries
	// are written after the relabel.
	order := []string{"==> first boot: keep the old root's kernel", "==> initramfs", "==> old root: relabel", "==> first boot: grubenv"}
	last := -1
	for _, o := range order {
		i := strings.Index(out, o)
		if i < 0 || i < last {
			t.Errorf("%q missing or out of order:\n%s", o, out)
		}
		last = i
	}
}

// TestFirstBootKeepsFirstCopy: a second finish does not replace the
// kept initramfs with the regenerated one.
func TestFirstBootKeepsFirstCopy(t *testing.T) {
	x := guardedFixture(t)
	x.file("boot/rootswap/initrd.img-"+release, "kept by the first finish", 0o600)
	if err := x.guardedRun(); err != nil {
		t.Fatalf("finish: %v\n%s", err, x.stderr.String())
	}
	if got, want := x.read("boot/rootswap/initrd.img-"+release), "kept by the first finish"; got != want {
		t.Errorf("kept initramfs %q, want %q", got, want)
	}
}

// TestFirstBootPlain: where the way back cannot be kept, the new root
// becomes the default at once, as before, and says why.
func TestFirstBootPlain(t *testing.T) {
	for name, tc := range map[string]struct {
		prep func(x *fixture)
		why  string
	}{
		"asked":        {func(x *fixture) { x.cfg.NextBoot.Plain = true }, "--first-boot plain"},
		"wipe":         {func(x *fixture) { x.cfg.WipeOld, x.cfg.Yes = true, true; x.tools["wipefs"] = true }, "--wipe-old erases the way back"},
		"no initramfs": {func(x *fixture) { os.Remove(filepath.Join(x.root, "boot/initrd.img-"+release)) }, "no /boot/initrd.img-" + release},
		"no unit":      {func(x *fixture) { os.Remove(filepath.Join(x.root, "run/systemd/system")) }, "no systemd, update-rc.d or OpenRC"},
		"boot on vfat": {func(x *fixture) { x.writeProc(strings.ReplaceAll(mountsAfterSwap, "ext2 /dev/sda1", "vfat /dev/sda1")) }, "GRUB cannot clear its one-shot next_entry on /boot's vfat"},
	} {
		t.Run(name, func(t *testing.T) {
			x := guardedFixture(t)
			tc.prep(x)
			if err := x.guardedRun(); err != nil {
				t.Fatalf("finish: %v\n%s", err, x.stderr.String())
			}
			if out := x.stdout.String(); !strings.Contains(out, "==> first boot: the new root becomes the default at once ("+tc.why) {
				t.Errorf("output lacks the reason %q:\n%s", tc.why, out)
			}
			if _, err := os.Stat(filepath.Join(x.root, "boot/grub/grubenv")); err == nil {
				t.Errorf("grubenv written")
			}
			if _, err := os.Stat(filepath.Join(x.root, "sbin/rootswap-bootguard")); err == nil {
				t.Errorf("guard installed")
			}
		})
	}
}

// TestFirstBootSysv: without systemd the unit is an LSB script enabled
// by update-rc.d.
func TestFirstBootSysv(t *testing.T) {
	x := guardedFixture(t)
	os.Remove(filepath.Join(x.root, "run/systemd/system"))
	x.exe("usr/sbin/update-rc.d")
	x.dir("etc/init.d")
	if err := x.guardedRun(); err != nil {
		t.Fatalf("finish: %v\n%s", err, x.stderr.String())
	}
	if got := x.read("etc/init.d/rootswap-firstboot"); !strings.Contains(got, "# Provides:          rootswap-firstboot") {
		t.Errorf("script:\n%s", got)
	}
	if got := strings.Join(argvs(x.ran), "; "); !strings.Contains(got, "update-rc.d rootswap-firstboot defaults") {
		t.Errorf("commands %s", got)
	}
}

// TestFirstBootDryRun changes nothing.
func TestFirstBootDryRun(t *testing.T) {
	x := guardedFixture(t)
	x.cfg.DryRun = true
	before := snapshot(t, x.root)
	if err := x.guardedRun(); err != nil {
		t.Fatal(err)
	}
	if d := diffSnapshots(before, snapshot(t, x.root)); len(d) > 0 {
		t.Errorf("dry run changed %v", d)
	}
	if out := x.stdout.String(); !strings.Contains(out, "==> first boot: grubenv: saved_entry=rootswap-old next_entry=rootswap-new") {
		t.Errorf("dry run does not say what it would do:\n%s", out)
	}
}
