package finish

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/fstools"
	"golang.org/x/sys/unix"
)

// tree copies the fixture tree testdata/boot/name into the root.
func (x *fixture) tree(name string) {
	x.t.Helper()
	dir := filepath.Join("testdata/boot", name)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		x.file(rel, string(b), 0o644)
		return err
	})
	if err != nil {
		x.t.Fatal(err)
	}
}

// wantTree compares each file of testdata/boot/name.want with the
// root's.
func (x *fixture) wantTree(name string) {
	x.t.Helper()
	dir := filepath.Join("testdata/boot", name+".want")
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		got, err := os.ReadFile(filepath.Join(x.root, rel))
		if err != nil || string(got) != string(want) {
			x.t.Errorf("/%s: %v\n%s\nwant:\n%s", rel, err, got, want)
		}
		return nil
	})
}

func (x *fixture) wantOut(lines ...string) {
	x.t.Helper()
	for _, l := range lines {
		if !strings.Contains(x.stdout.String(), l+"\n") {
			x.t.Errorf("output lacks %q:\n%s", l, x.stdout.String())
		}
	}
}

func (x *fixture) wantRan(want ...string) {
	x.t.Helper()
	if got := argvs(x.ran); !reflect.DeepEqual(got, want) {
		x.t.Errorf("commands %q, want %q", got, want)
	}
}

// wantRefused runs finish and wants an error with msg, nothing run,
// nothing changed.
func (x *fixture) wantRefused(msg string) {
	x.t.Helper()
	before := snapshot(x.t, x.root)
	if err := x.run(); err == nil || !strings.Contains(err.Error(), msg) {
		x.t.Fatalf("finish: %v, want %q", err, msg)
	}
	if d := diffSnapshots(before, snapshot(x.t, x.root)); len(d) > 0 || len(x.relabelled) > 0 {
		x.t.Errorf("refused, yet changed %q, relabelled %q", d, x.relabelled)
	}
	for _, c := range x.ran {
		if c[0] != "mdadm" {
			x.t.Errorf("refused, yet ran %q", c)
		}
	}
}

const blsCfg = "insmod blscfg\nblscfg\n"

// rhel is a RHEL host with dracut, grub2 and the tree testdata/boot/name.
func rhel(t *testing.T, name string) *fixture {
	x := newFixture(t)
	for _, p := range []string{"usr/sbin/update-grub", "usr/sbin/grub-install", "usr/sbin/update-initramfs", "boot/grub", "etc/initramfs-tools"} {
		os.RemoveAll(filepath.Join(x.root, p))
	}
	x.exe("usr/sbin/grub2-mkconfig")
	x.exe("usr/sbin/grub2-install")
	x.exe("usr/bin/dracut")
	x.dir("usr/lib/dracut/modules.d/90lvm")
	x.dir("boot/grub2")
	x.tree(name)
	x.grubCfg = blsCfg
	return x
}

const rhel9Rescue = "boot/loader/entries/4c5e8a1f0b2d4e6f8a9c1d3e5f7a9b0c-0-rescue.conf"

// TestRHEL9BLS: BLS entries without grubby are edited in place (modes
// kept), GRUB_CMDLINE_LINUX too; dracut gets rd.lvm.lv= for the new LV;
// the EFI stub is kept; every entry is checked.
func TestRHEL9BLS(t *testing.T) {
	x := rhel(t, "rhel9")
	os.Chmod(filepath.Join(x.root, rhel9Rescue), 0o600)
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v\n%s", err, x.stdout.String())
	}
	x.wantRan("dracut -f --regenerate-all", "grub2-mkconfig -o /boot/grub2/grub.cfg")
	x.wantTree("rhel9")
	if fi, err := os.Stat(filepath.Join(x.root, rhel9Rescue)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want 0600 kept", rhel9Rescue, fi, err)
	}
	if got := readTestdata(t, "boot/rhel9/boot/efi/EFI/redhat/grub.cfg"); string(mustRead(t, x.root, "boot/efi/EFI/redhat/grub.cfg")) != got {
		t.Errorf("the EFI stub changed")
	}
	x.wantOut("==> bootloader: EFI: /boot/efi/EFI/redhat/grub.cfg is a stub that reads /boot/grub2/grub.cfg: kept",
		"==> kernel arguments: options in /"+rhel9Rescue,
		"    + options root=/dev/mapper/sys-root ro crashkernel=1G-4G:192M,4G-64G:256M resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/swap rhgb quiet rd.lvm.lv=sys/root",
		"==> check: the root= of every kernel line of the BLS entries in /boot/loader/entries",
		"    2 kernel lines boot the new root (root=/dev/mapper/sys-root)")
	out := x.stdout.String()
	if strings.Index(out, "==> kernel arguments") > strings.Index(out, "==> initramfs") {
		t.Errorf("kernel arguments after the initramfs:\n%s", out)
	}

	x = rhel(t, "rhel9")
	x.cfg.DryRun = true
	before := snapshot(t, x.root)
	if err := x.run(); err != nil {
		t.Fatalf("finish --dry-run: %v", err)
	}
	if d := diffSnapshots(before, snapshot(t, x.root)); len(d) > 0 || len(x.ran) > 0 {
		t.Errorf("--dry-run changed %q, ran %q", d, x.ran)
	}
	x.wantOut("    + options root=/dev/mapper/sys-root ro crashkernel=1G-4G:192M,4G-64G:256M resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/swap rhgb quiet rd.lvm.lv=sys/root",
		"==> kernel arguments: GRUB_CMDLINE_LINUX in /etc/default/grub",
		"==> initramfs: dracut -f --regenerate-all (dracut; the new root needs LVM)")
}

func mustRead(t *testing.T, root, rel string) []byte {
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRHEL8Grubby: EFI with the real grub.cfg on the ESP (RHEL 8):
// grub2-mkconfig writes it; the entries say $kernelopts, which grubenv
// holds; grubby updates the entries.
func TestRHEL8Grubby(t *testing.T) {
	x := rhel(t, "rhel8")
	x.exe("usr/sbin/grubby")
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v\n%s", err, x.stdout.String())
	}
	x.wantRan("grubby --update-kernel=ALL --args=root=/dev/mapper/sys-root rd.lvm.lv=sys/root",
		"dracut -f --regenerate-all", "grub2-mkconfig -o /boot/efi/EFI/redhat/grub.cfg")
	x.wantTree("rhel8")
	if n := len(mustRead(t, x.root, "boot/efi/EFI/redhat/grubenv")); n != 1024 {
		t.Errorf("grubenv is %d bytes, want 1024", n)
	}
	x.wantOut("==> bootloader: EFI: GRUB reads /boot/efi/EFI/redhat/grub.cfg: grub2-mkconfig writes it",
		"    1 kernel lines boot the new root (root=/dev/mapper/sys-root)")
}

// TestBLSCheckAfter: an entry grubby left on the old root fails the
// check, and the old root stays as it is.
func TestBLSCheckAfter(t *testing.T) {
	x := rhel(t, "rhel9")
	x.exe("usr/sbin/grubby") // the fake one changes nothing
	err := x.run()
	if err == nil || !strings.Contains(err.Error(), "would not boot the new root /dev/mapper/sys-root: /"+rhel9Rescue+": root=/dev/sda2 is not the new root") {
		t.Fatalf("finish: %v, want the check to fail", err)
	}
	if len(x.relabelled) > 0 {
		t.Errorf("relabelled %q after the check failed", x.relabelled)
	}
	x.wantRan("grubby --update-kernel=ALL --args=root=/dev/mapper/sys-root rd.lvm.lv=sys/root", "dracut -f --regenerate-all", "grub2-mkconfig -o /boot/grub2/grub.cfg")
}

// TestBootRefusals: the layouts finish cannot handle safely stop it
// before any change.
func TestBootRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) *fixture
		want  string
	}{
		{"BLS without entries", func(t *testing.T) *fixture {
			x := rhel(t, "rhel9")
			os.RemoveAll(filepath.Join(x.root, "boot/loader/entries"))
			return x
		}, "GRUB reads BLS entries (blscfg) but /boot/loader/entries has none"},
		{"BLS entry without root=", func(t *testing.T) *fixture {
			x := rhel(t, "rhel8") // $kernelopts, and no grubenv to expand it
			os.Remove(filepath.Join(x.root, "boot/efi/EFI/redhat/grubenv"))
			return x
		}, "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e-4.18.0-513.el8.x86_64.conf: no root=; finish cannot fix that"},
		{"RHEL EFI grub-install", func(t *testing.T) *fixture {
			x := rhel(t, "rhel9")
			x.cfg.GrubInstall = "efi"
			return x
		}, "reinstall the shim-x64 and grub2-efi-x64 packages instead"},
		{"RHEL EFI stub on the old root", func(t *testing.T) *fixture {
			x := rhel(t, "rhel9")
			x.file("boot/efi/EFI/redhat/grub.cfg", "search --no-floppy --fs-uuid --set=dev "+oldUUID+"\nset prefix=($dev)/boot/grub2\nconfigfile $prefix/grub.cfg\n", 0o700)
			return x
		}, "finds GRUB's files by the old root's UUID " + oldUUID + ", which finish changes: point its search"},
		{"Debian EFI stub on the old root", func(t *testing.T) *fixture {
			x := newFixture(t)
			x.file("boot/efi/EFI/debian/grub.cfg", debianStub(oldUUID), 0o700)
			return x
		}, "run finish with --grub-install efi"},
		{"EFI partition not mounted", func(t *testing.T) *fixture {
			x := newFixture(t)
			x.file("etc/fstab", "LABEL=root / ext3 defaults 0 1\nUUID=1A2B-3C4D /boot/efi vfat umask=0077 0 1\n", 0o644)
			return x
		}, "/boot/efi is in /etc/fstab (UUID=1A2B-3C4D) but not mounted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.setup(t).wantRefused(tc.want) })
	}
}

func debianStub(uuid string) string {
	return "search.fs_uuid " + uuid + " root hd0,gpt2\nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n"
}

// TestDebianEFI: update-grub writes /boot/grub/grub.cfg and the ESP's
// stub is kept; grub-install --target=x86_64-efi only when asked.
func TestDebianEFI(t *testing.T) {
	x := newFixture(t)
	x.file("boot/efi/EFI/debian/grub.cfg", debianStub("5e1c0f3a-7b2d-4c8e-9f1a-2b3c4d5e6f70"), 0o700)
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	x.wantRan("update-initramfs -u -k all", "update-grub")
	x.wantOut("==> bootloader: EFI: /boot/efi/EFI/debian/grub.cfg is a stub that reads /boot/grub/grub.cfg: kept")

	x = newFixture(t)
	x.file("boot/efi/EFI/debian/grub.cfg", debianStub(oldUUID), 0o700)
	x.cfg.GrubInstall = "efi"
	if err := x.run(); err != nil {
		t.Fatalf("finish --grub-install efi: %v", err)
	}
	x.wantRan("update-initramfs -u -k all", "update-grub", "grub-install --target=x86_64-efi --efi-directory=/boot/efi")
}

// noGrub takes GRUB off the Debian fixture.
func noGrub(t *testing.T) *fixture {
	x := newFixture(t)
	os.RemoveAll(filepath.Join(x.root, "boot/grub"))
	os.Remove(filepath.Join(x.root, "usr/sbin/update-grub"))
	return x
}

// TestSystemdBoot edits the loader entries' options and the template of
// new kernels' command lines.
func TestSystemdBoot(t *testing.T) {
	x := noGrub(t)
	x.exe("usr/bin/bootctl")
	x.tree("sdboot")
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	x.wantRan("update-initramfs -u -k all")
	x.wantTree("sdboot")
	x.wantOut("==> check: the root= of every kernel line of the systemd-boot entries in /efi/loader/entries",
		"    1 kernel lines boot the new root (root=/dev/mapper/sys-root)")
}

// TestExtlinux edits every APPEND line; the old type's rootflags= and
// rootfstype= go with it.
func TestExtlinux(t *testing.T) {
	x := noGrub(t)
	x.tree("extlinux")
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	x.wantTree("extlinux")
	x.wantOut("    2 kernel lines boot the new root (root=/dev/mapper/sys-root)")
}

// mdLUKS is a host whose new root is LUKS (cryptroot) on md0 (sdb1),
// with dracut and no boot loader finish knows.
func mdLUKS(t *testing.T) *fixture {
	x := noGrub(t)
	x.writeProc(strings.Replace(mountsAfterSwap, "253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/sys-root", "253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/cryptroot", 1))
	x.fs["/dev/mapper/cryptroot"] = fstools.FS{Type: "ext4", Label: "root", UUID: newUUID}
	x.fs["/dev/sdb1"] = fstools.FS{Type: "linux_raid_member", UUID: "a1b2c3d4-e5f6-0718-293a-4b5c6d7e8f90"}
	x.rdev["/dev/mapper/cryptroot"] = unix.Mkdev(253, 1)
	os.RemoveAll(filepath.Join(x.root, "etc/initramfs-tools"))
	os.Remove(filepath.Join(x.root, "usr/sbin/update-initramfs"))
	x.exe("usr/bin/dracut")
	x.dir("usr/lib/dracut/modules.d/90mdraid")
	x.tools["mdadm"] = true
	x.outputs = map[string]string{"mdadm --detail --scan": "ARRAY /dev/md0 metadata=1.2 name=host:0 UUID=a1b2c3d4:e5f60718:293a4b5c:6d7e8f90\n"}
	x.file("etc/mdadm/mdadm.conf", mdadmConf, 0o644)
	x.file("etc/crypttab", "# <target name> <source device> <key file> <options>\ncryptroot UUID=0f4e2c7a-9b1d-4e3f-8a6b-5c4d3e2f1a0b none luks,discard\n", 0o644)
	return x
}

const mdadmConf = `# mdadm.conf
HOMEHOST <system>
MAILADDR root
ARRAY /dev/md/1 metadata=1.2 UUID=11111111:22222222:33333333:44444444 name=host:1
ARRAY /dev/md0 UUID=a1b2c3d4:e5f60718:293a4b5c:6d7e8f90
`

// TestMDLUKSDracut: mdadm.conf gets the running array (the admin's lines
// kept) before dracut runs; dracut gets rd.luks.uuid= and rd.md.uuid= in
// its conf.d, the boot loader having no command line finish edits.
func TestMDLUKSDracut(t *testing.T) {
	x := mdLUKS(t)
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v\n%s", err, x.stderr.String())
	}
	x.wantRan("mdadm --detail --scan", "dracut -f --regenerate-all")
	want := strings.Replace(mdadmConf, "ARRAY /dev/md0 UUID=a1b2c3d4:e5f60718:293a4b5c:6d7e8f90", "ARRAY /dev/md0 metadata=1.2 name=host:0 UUID=a1b2c3d4:e5f60718:293a4b5c:6d7e8f90", 1)
	if got := string(mustRead(t, x.root, "etc/mdadm/mdadm.conf")); got != want {
		t.Errorf("mdadm.conf:\n%s\nwant:\n%s", got, want)
	}
	if got, want := string(mustRead(t, x.root, "etc/dracut.conf.d/90-rootswap.conf")),
		"# rootswap finish: what dracut needs to find the root\nkernel_cmdline=\"rd.luks.uuid=0f4e2c7a-9b1d-4e3f-8a6b-5c4d3e2f1a0b rd.md.uuid=a1b2c3d4:e5f60718:293a4b5c:6d7e8f90\"\n"; got != want {
		t.Errorf("dracut conf.d:\n%s\nwant:\n%s", got, want)
	}
	out := x.stdout.String()
	if i := strings.Index(out, "==> mdadm: the arrays of mdadm --detail --scan in /etc/mdadm/mdadm.conf\n"); i < 0 || i > strings.Index(out, "==> initramfs") {
		t.Errorf("mdadm.conf not refreshed before the initramfs:\n%s", out)
	}

	// A new array is appended; /etc/mdadm.conf where /etc/mdadm is not.
	x = mdLUKS(t)
	os.RemoveAll(filepath.Join(x.root, "etc/mdadm"))
	x.file("etc/mdadm.conf", "MAILADDR root", 0o600)
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if got, want := string(mustRead(t, x.root, "etc/mdadm.conf")), "MAILADDR root\nARRAY /dev/md0 metadata=1.2 name=host:0 UUID=a1b2c3d4:e5f60718:293a4b5c:6d7e8f90\n"; got != want {
		t.Errorf("mdadm.conf:\n%s\nwant:\n%s", got, want)
	}

	x = mdLUKS(t)
	x.file("etc/crypttab", "othercrypt UUID=9e8d7c6b-5a49-3827-1605-f4e3d2c1b0a9 none luks\n", 0o644)
	x.wantRefused("the new root is on LUKS and /etc/crypttab has no line for it: the initramfs would not unlock it; add \"cryptroot UUID=0f4e2c7a-9b1d-4e3f-8a6b-5c4d3e2f1a0b none luks\" first")

	x = mdLUKS(t)
	x.tools["mdadm"] = false
	x.wantRefused("the new root is on md RAID and mdadm is not installed")
}

// TestLVMDevicesFile adds the new PV to LVM's devices file when it is
// missing there and the file is in use.
func TestLVMDevicesFile(t *testing.T) {
	const header = "# LVM uses devices listed in this file.\nVERSION=1.1.2\nIDTYPE=sys_wwid IDNAME=naa.6001405 DEVNAME=/dev/sdb PVID=K2pW0o4LyrnHq2jUzc0TjA9bW9t8Vb3n PART=1\n"
	tests := []struct {
		name, devices, conf string
		want                []string
	}{
		{"missing", header, "", []string{"lvmdevices --adddev /dev/sda3", "update-initramfs -u -k all", "update-grub"}},
		{"listed", header + "IDTYPE=devname IDNAME=/dev/sda3 DEVNAME=/dev/sda3 PVID=Zq3kXc0n0aV2hY0Jd8lB6fQ1pR3sT5uW PART=3\n", "", []string{"update-initramfs -u -k all", "update-grub"}},
		{"not in use", header, "devices {\n\tuse_devicesfile = 0\n}\n", []string{"update-initramfs -u -k all", "update-grub"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newFixture(t)
			x.fs["/dev/sda3"] = fstools.FS{Type: "LVM2_member", UUID: "Zq3kXc-0n0a-V2hY-0Jd8-lB6f-Q1pR-3sT5uW"}
			x.tools["lvmdevices"] = true
			x.file("etc/lvm/devices/system.devices", tc.devices, 0o644)
			x.file("etc/lvm/lvm.conf", tc.conf, 0o644)
			if err := x.run(); err != nil {
				t.Fatalf("finish: %v", err)
			}
			x.wantRan(tc.want...)
		})
	}
	x := newFixture(t)
	x.file("etc/lvm/devices/system.devices", header, 0o644)
	x.wantRefused("the new root's PV /dev/sda3 is not in /etc/lvm/devices/system.devices and lvmdevices is not installed")
}

// TestLVMFilter refuses when lvm.conf's filter would hide the new PV.
func TestLVMFilter(t *testing.T) {
	tests := []struct{ name, conf, refusal string }{
		{"global_filter rejects", "devices {\n\tglobal_filter = [ \"a|^/dev/sdb|\", \"r|.*|\" ]\n}\n",
			`/etc/lvm/lvm.conf's global_filter rejects the new root's PV /dev/sda3 ("r|.*|")`},
		{"filter over lines", "devices {\n\tfilter = [\n\t\t\"r|/dev/sda3|\",\n\t\t\"a|.*|\" ]\n}\n",
			`/etc/lvm/lvm.conf's filter rejects the new root's PV /dev/sda3 ("r|/dev/sda3|")`},
		{"accepted first", "devices {\n\tfilter = [ \"a|^/dev/sda3$|\", \"r|.*|\" ]\n}\n", ""},
		{"commented out", "devices {\n\t# filter = [ \"r|.*|\" ]\n}\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newFixture(t)
			x.file("etc/lvm/lvm.conf", tc.conf, 0o644)
			if tc.refusal != "" {
				x.wantRefused(tc.refusal)
				return
			}
			if err := x.run(); err != nil {
				t.Fatalf("finish: %v", err)
			}
		})
	}
}

func TestLVName(t *testing.T) {
	for in, want := range map[string]string{"sys-root": "sys/root", "my--vg-lv--1": "my-vg/lv-1", "rhel-root": "rhel/root"} {
		if got := lvName(in); got != want {
			t.Errorf("lvName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDebianDracut: GRUB's template of kernel lines gets rd.lvm.lv= for
// dracut; without one, dracut's conf.d does.
func TestDebianDracut(t *testing.T) {
	for _, grub := range []bool{true, false} {
		x := newFixture(t)
		os.RemoveAll(filepath.Join(x.root, "etc/initramfs-tools"))
		x.exe("usr/bin/dracut")
		x.dir("usr/lib/dracut/modules.d/90lvm")
		path, want := "etc/dracut.conf.d/90-rootswap.conf", "# rootswap finish: what dracut needs to find the root\nkernel_cmdline=\"rd.lvm.lv=sys/root\"\n"
		if grub {
			x.file("etc/default/grub", "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"\"\n", 0o644)
			path, want = "etc/default/grub", "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX=\"rd.lvm.lv=sys/root\"\n"
		}
		if err := x.run(); err != nil {
			t.Fatalf("finish: %v", err)
		}
		x.wantRan("dracut -f --regenerate-all", "update-grub")
		if got := string(mustRead(t, x.root, path)); got != want {
			t.Errorf("/%s:\n%s\nwant:\n%s", path, got, want)
		}
	}
}

// TestNamesDevicePaths: root= as MAJ:MIN, and a device path with colons
// in it, which is no MAJ:MIN.
func TestNamesDevicePaths(t *testing.T) {
	x := newFixture(t)
	byPath := "/dev/disk/by-path/pci-0000:00:1f.2-ata-1-part2"
	x.rdev[byPath] = unix.Mkdev(8, 2)
	p := &Plan{cfg: x.config()}
	old := Device{Path: "/dev/sda2", Dev: unix.Mkdev(8, 2)}
	for root, want := range map[string]bool{"8:2": true, "8:3": false, byPath: true, "/dev/sda3": false} {
		if got := p.names(old, root); got != want {
			t.Errorf("names(/dev/sda2, %q) = %v, want %v", root, got, want)
		}
	}
}
