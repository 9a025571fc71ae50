package finish

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/swap"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/fstab")

const backupName = "etc/fstab.rootswap-20240102T030405"

// TestFstabGolden runs finish on each fstab of testdata/fstab and compares
// the result with its .want file; the backup must be the original.
func TestFstabGolden(t *testing.T) {
	tests := []struct {
		name    string
		newFS   fstools.FS
		changed bool
		line    string // the ==> fstab line finish prints
	}{
		{"debian-label", fstools.FS{Type: "ext4", Label: "root", UUID: newUUID}, true,
			"==> fstab: / LABEL=root ext3 -> LABEL=root ext4 (backup /etc/fstab.rootswap-20240102T030405)"},
		{"uuid-differs", fstools.FS{Type: "ext4", Label: "root", UUID: newUUID}, true,
			"==> fstab: / UUID=" + oldUUID + " ext3 -> UUID=" + newUUID + " ext4 (backup /etc/fstab.rootswap-20240102T030405)"},
		{"devpath-tabs", fstools.FS{Type: "ext4", Label: "root", UUID: newUUID}, true,
			"==> fstab: / /dev/sda2 ext3 -> UUID=" + newUUID + " ext4 (backup /etc/fstab.rootswap-20240102T030405)"},
		{"label-differs", fstools.FS{Type: "ext4", Label: "root", UUID: newUUID}, true,
			"==> fstab: / LABEL=rootfs ext4 -> UUID=" + newUUID + " ext4 (backup /etc/fstab.rootswap-20240102T030405)"},
		{"label-escaped", fstools.FS{Type: "ext4", Label: "my root", UUID: newUUID}, true,
			`==> fstab: / LABEL=my\040root ext3 -> LABEL=my\040root ext4 (backup /etc/fstab.rootswap-20240102T030405)`},
		// A file-mode swap to a new type: ext's options go, the VFS's stay.
		{"to-xfs", fstools.FS{Type: "xfs", UUID: newUUID}, true,
			"==> fstab: / UUID=" + oldUUID + " ext3 -> UUID=" + newUUID + " xfs (options noatime,errors=remount-ro,data=ordered -> noatime) (backup /etc/fstab.rootswap-20240102T030405)"},
		{"unchanged", fstools.FS{Type: "ext4", Label: "root", UUID: newUUID}, false,
			"==> fstab: / UUID=" + newUUID + " ext4 already names the new root: unchanged"},
		{"no-root", fstools.FS{Type: "ext4", Label: "root", UUID: newUUID}, false,
			"==> fstab: no entry for / (the kernel command line names the root): unchanged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newFixture(t)
			in := readTestdata(t, "fstab/"+tc.name+".fstab")
			x.file("etc/fstab", in, 0o640)
			x.fs["/dev/mapper/sys-root"] = tc.newFS
			if err := x.run(); err != nil {
				t.Fatalf("finish: %v\n%s", err, x.stderr.String())
			}
			got, err := os.ReadFile(filepath.Join(x.root, "etc/fstab"))
			if err != nil {
				t.Fatal(err)
			}
			wantPath := filepath.Join("testdata/fstab", tc.name+".want")
			if *update && tc.changed {
				os.WriteFile(wantPath, got, 0o644)
			}
			want := in
			if tc.changed {
				want = readTestdata(t, "fstab/"+tc.name+".want")
			}
			if string(got) != want {
				t.Errorf("etc/fstab:\n%s\nwant:\n%s", got, want)
			}
			if !strings.Contains(x.stdout.String(), tc.line+"\n") {
				t.Errorf("output lacks %q:\n%s", tc.line, x.stdout.String())
			}
			backup, err := os.ReadFile(filepath.Join(x.root, backupName))
			switch {
			case tc.changed && err != nil:
				t.Errorf("no backup: %v", err)
			case tc.changed && string(backup) != in:
				t.Errorf("backup:\n%s\nwant the original:\n%s", backup, in)
			case !tc.changed && err == nil:
				t.Errorf("a backup was written though fstab did not change")
			}
			if fi, err := os.Stat(filepath.Join(x.root, "etc/fstab")); err != nil || fi.Mode().Perm() != 0o640 {
				t.Errorf("etc/fstab mode: %v %v, want 0640 kept", fi.Mode(), err)
			}
		})
	}
}

// TestFstabOtherLinesUntouched checks the golden files themselves: every
// line but the / entry is the input's, byte for byte.
func TestFstabOtherLinesUntouched(t *testing.T) {
	for _, name := range []string{"debian-label", "uuid-differs", "devpath-tabs", "label-differs", "label-escaped"} {
		in := strings.SplitAfter(readTestdata(t, "fstab/"+name+".fstab"), "\n")
		out := strings.SplitAfter(readTestdata(t, "fstab/"+name+".want"), "\n")
		if len(in) != len(out) {
			t.Errorf("%s: %d lines, want %d", name, len(out), len(in))
			continue
		}
		rootLine := ParseFstab([]byte(strings.Join(in, ""))).Root()[0].Line
		for i := range in {
			if i != rootLine && in[i] != out[i] {
				t.Errorf("%s line %d changed: %q -> %q", name, i+1, in[i], out[i])
			}
		}
	}
}

// TestDebianLVM is the story's finish: the commands, in order, the grub.cfg
// check, the relabel of the old root.
func TestDebianLVM(t *testing.T) {
	x := newFixture(t)
	x.cfg.GrubInstall = "/dev/sda"
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v\n%s%s", err, x.stdout.String(), x.stderr.String())
	}
	want := []string{"update-initramfs -u -k all", "update-grub", "grub-install /dev/sda"}
	if got := argvs(x.ran); !reflect.DeepEqual(got, want) {
		t.Errorf("commands %q, want %q", got, want)
	}
	if got, want := argvs(x.relabelled), []string{"/dev/sda2 --label oldroot"}; !reflect.DeepEqual(got, want) {
		t.Errorf("tune2fs-relabel calls %q, want %q", got, want)
	}
	out := x.stdout.String()
	for _, line := range []string{
		"finish: / is /dev/mapper/sys-root: ext4 filesystem, label \"root\", UUID " + newUUID + ", 3.0 GiB (on LVM: dm-0 on sda3)",
		"finish: the old root is /dev/sda2: ext3 filesystem, label \"root\", UUID " + oldUUID + ", 2.0 GiB (from the swap journal /var/log/rootswap/last.journal)",
		"==> initramfs: update-initramfs -u -k all (initramfs-tools; the new root needs LVM)",
		"==> bootloader: update-grub (writes /boot/grub/grub.cfg)",
		"==> bootloader: grub-install /dev/sda",
		"    2 of 2 kernel lines boot the new root (the first: root=/dev/mapper/sys-root)",
		"==> old root: relabel /dev/sda2 to oldroot with a new random UUID (tune2fs-relabel /dev/sda2 --label oldroot), so that LABEL=root and UUID=" + oldUUID + " find only the new root",
		"finish: done; the next boot comes up on /dev/mapper/sys-root",
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
	}
	// Actions come in the order that keeps the old root a fallback longest.
	order := []string{"==> fstab", "==> initramfs", "==> bootloader: update-grub", "==> check", "==> old root"}
	last := -1
	for _, o := range order {
		i := strings.Index(out, o)
		if i < last {
			t.Errorf("%q printed out of order:\n%s", o, out)
		}
		last = i
	}
}

// TestGrubCheck runs the root= check on generated configurations.
func TestGrubCheck(t *testing.T) {
	tests := []struct {
		name, root string
		ok         bool
	}{
		{"lvm path", "root=/dev/mapper/sys-root", true},
		{"vg/lv path", "root=/dev/sys/root", true},
		{"new uuid", "root=UUID=" + newUUID, true},
		{"new uuid upper case", "root=UUID=" + strings.ToUpper(newUUID), true},
		{"label both carry", "root=LABEL=root", true},
		{"old device", "root=/dev/sda2", false},
		{"old uuid", "root=UUID=" + oldUUID, false},
		{"old uuid quoted", "'root=UUID=" + oldUUID + "'", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newFixture(t)
			x.grubCfg = grubCfgFor(tc.root)
			err := x.run()
			if tc.ok && err != nil {
				t.Fatalf("finish: %v", err)
			}
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "still boots the old root /dev/sda2") {
					t.Fatalf("finish: %v, want the old-root failure", err)
				}
				if len(x.relabelled) != 0 {
					t.Errorf("the old root was relabelled after the check failed: %q", x.relabelled)
				}
			}
		})
	}
}

// TestGrubCheckNoKernel fails when the generated grub.cfg boots nothing.
func TestGrubCheckNoKernel(t *testing.T) {
	x := newFixture(t)
	x.grubCfg = "set timeout=5\n"
	if err := x.run(); err == nil || !strings.Contains(err.Error(), "no kernel (linux) lines") {
		t.Fatalf("finish: %v, want no kernel lines", err)
	}
}

// TestRefuseOldMounted: the old root still mounted, here or in another
// mount namespace, stops finish before anything changes.
func TestRefuseOldMounted(t *testing.T) {
	tests := []struct {
		name  string
		setup func(x *fixture)
		want  string
	}{
		{"own namespace", func(x *fixture) {
			x.writeProc(mountsAfterSwap + "50 29 8:2 / /mnt/oldroot ro,relatime - ext3 /dev/sda2 ro\n")
		}, "still mounted at /mnt/oldroot"},
		{"another namespace", func(x *fixture) {
			os.MkdirAll(filepath.Join(x.proc, "self", "ns"), 0o755)
			os.Symlink("mnt:[4026531841]", filepath.Join(x.proc, "self", "ns", "mnt"))
			task := filepath.Join(x.proc, "612", "task", "612")
			os.MkdirAll(filepath.Join(task, "ns"), 0o755)
			os.Symlink("mnt:[4026532201]", filepath.Join(task, "ns", "mnt"))
			os.WriteFile(filepath.Join(task, "comm"), []byte("systemd-timesyn\n"), 0o644)
			os.WriteFile(filepath.Join(task, "mountinfo"), []byte("300 299 8:2 / /mnt/oldroot rw,relatime - ext3 /dev/sda2 rw\n"), 0o644)
		}, "still mounted at /mnt/oldroot (in the mount namespace of pid 612, systemd-timesyn)"},
		{"held", func(x *fixture) { x.busy["/dev/sda2"] = true }, "is held by the kernel"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newFixture(t)
			tc.setup(x)
			before := snapshot(t, x.root)
			err := x.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("finish: %v, want %q", err, tc.want)
			}
			if d := diffSnapshots(before, snapshot(t, x.root)); len(d) > 0 {
				t.Errorf("the tree changed: %q", d)
			}
			if len(x.ran) != 0 || len(x.relabelled) != 0 {
				t.Errorf("ran %q, relabelled %q; want nothing", x.ran, x.relabelled)
			}
		})
	}
}

// TestDryRun prints every action and changes nothing.
func TestDryRun(t *testing.T) {
	for _, wipe := range []bool{false, true} {
		x := newFixture(t)
		x.cfg.DryRun, x.cfg.WipeOld, x.cfg.GrubInstall = true, wipe, "/dev/sda"
		x.tools["wipefs"] = true
		before := snapshot(t, x.root)
		if err := x.run(); err != nil {
			t.Fatalf("finish --dry-run: %v", err)
		}
		if d := diffSnapshots(before, snapshot(t, x.root)); len(d) > 0 {
			t.Errorf("--dry-run changed the tree: %q", d)
		}
		if len(x.ran) != 0 || len(x.relabelled) != 0 {
			t.Errorf("--dry-run ran %q, relabelled %q", x.ran, x.relabelled)
		}
		out := x.stdout.String()
		old := "==> old root: relabel /dev/sda2"
		if wipe {
			old = "==> old root: erase every signature of /dev/sda2 (ext3 filesystem, label \"root\", UUID " + oldUUID + ", 2.0 GiB): wipefs -a /dev/sda2"
		}
		for _, want := range []string{"==> fstab: / LABEL=root ext3 -> LABEL=root ext4", "==> initramfs: update-initramfs -u -k all",
			"==> bootloader: update-grub", "==> bootloader: grub-install /dev/sda", "==> check:", old, "finish: dry run: nothing was changed"} {
			if !strings.Contains(out, want) {
				t.Errorf("--dry-run output lacks %q:\n%s", want, out)
			}
		}
	}
}

// TestLVMHookMissing refuses without lvm2's initramfs hook, unless --force.
func TestLVMHookMissing(t *testing.T) {
	x := newFixture(t)
	os.Remove(filepath.Join(x.root, "usr/share/initramfs-tools/hooks/lvm2"))
	before := snapshot(t, x.root)
	err := x.run()
	if err == nil || !strings.Contains(err.Error(), "install lvm2 first: the initramfs cannot find the root") {
		t.Fatalf("finish: %v, want the lvm2 refusal", err)
	}
	if d := diffSnapshots(before, snapshot(t, x.root)); len(d) > 0 || len(x.ran) > 0 {
		t.Errorf("refused, yet changed %q and ran %q", d, x.ran)
	}

	x = newFixture(t)
	os.Remove(filepath.Join(x.root, "usr/share/initramfs-tools/hooks/lvm2"))
	x.cfg.Force = true
	if err := x.run(); err != nil {
		t.Fatalf("finish --force: %v", err)
	}
	if !strings.Contains(x.stderr.String(), "WARNING: initramfs-tools: install lvm2 first") {
		t.Errorf("--force gave no loud warning:\n%s", x.stderr.String())
	}
}

// TestWipeOld erases the old root's signatures after the admin typed its
// name; a wrong answer changes nothing.
func TestWipeOld(t *testing.T) {
	x := newFixture(t)
	x.cfg.WipeOld = true
	x.tools["wipefs"] = true
	x.stdin = "/dev/sda2\n"
	if err := x.run(); err != nil {
		t.Fatalf("finish --wipe-old: %v", err)
	}
	want := []string{"update-initramfs -u -k all", "update-grub", "wipefs -a /dev/sda2"}
	if got := argvs(x.ran); !reflect.DeepEqual(got, want) {
		t.Errorf("commands %q, want %q", got, want)
	}
	if len(x.relabelled) != 0 {
		t.Errorf("relabelled %q as well as wiped", x.relabelled)
	}
	if !strings.Contains(x.stdout.String(), "type /dev/sda2 to go on") {
		t.Errorf("no confirmation asked:\n%s", x.stdout.String())
	}

	for _, answer := range []string{"yes\n", "", "/dev/sda3\n"} {
		x := newFixture(t)
		x.cfg.WipeOld = true
		x.tools["wipefs"] = true
		x.stdin = answer
		before := snapshot(t, x.root)
		err := x.run()
		if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("answer %q: %v, want a refusal", answer, err)
		}
		if d := diffSnapshots(before, snapshot(t, x.root)); len(d) > 0 || len(x.ran) > 0 {
			t.Errorf("answer %q: changed %q, ran %q", answer, d, x.ran)
		}
	}

	x = newFixture(t)
	x.cfg.WipeOld, x.cfg.Yes = true, true
	x.tools["wipefs"] = true
	if err := x.run(); err != nil {
		t.Fatalf("finish --wipe-old --yes: %v", err)
	}
	if strings.Contains(x.stdout.String(), "to go on") {
		t.Errorf("--yes still asked")
	}
}

// TestJournalPhases: only a swap that succeeded (and was confirmed) is
// finished.
func TestJournalPhases(t *testing.T) {
	ok := succeeded(8, 2)
	waiting := append(append([]journal.Record{}, ok[:3]...), journal.Record{Kind: journal.KindWait})
	rolledBack := append(append([]journal.Record{}, ok[:3]...), journal.Record{Kind: journal.KindDone, Result: string(journal.RolledBack)})
	tests := []struct {
		name string
		recs []journal.Record
		want string
	}{
		{"waiting", waiting, "run `rootswap confirm` first"},
		{"rolled back", rolledBack, "ended rolled-back: there is nothing to finish"},
		{"no state", []journal.Record{{Kind: journal.KindDone, Result: string(journal.Succeeded)}}, "name it with --old DEV"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := newFixture(t)
			x.journal(tc.recs)
			if err := x.run(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("finish: %v, want %q", err, tc.want)
			}
		})
	}
	x := newFixture(t)
	os.RemoveAll(filepath.Join(x.root, swap.ArchiveDir))
	if err := x.run(); err == nil || !strings.Contains(err.Error(), "no swap journal found") {
		t.Fatalf("finish without a journal: %v", err)
	}
	x.cfg.Old = "/dev/sda2"
	x.stdout.Reset()
	if err := x.run(); err != nil {
		t.Fatalf("finish --old /dev/sda2 without a journal: %v", err)
	}
	if !strings.Contains(x.stdout.String(), "(from --old)") {
		t.Errorf("output does not say where the old root came from:\n%s", x.stdout.String())
	}
}

// TestOldIsNewOrUnder refuses when the old root is the root itself or
// lies under it (the PV of the new root's volume).
func TestOldIsNewOrUnder(t *testing.T) {
	x := newFixture(t)
	x.cfg.Old = "/dev/dm-0"
	if err := x.run(); err == nil || !strings.Contains(err.Error(), "is still on the old root") {
		t.Errorf("--old /dev/dm-0: %v", err)
	}
	x = newFixture(t)
	x.cfg.Old = "/dev/sda3"
	x.fs["/dev/sda3"] = fstools.FS{Type: "LVM2_member"}
	if err := x.run(); err == nil || !strings.Contains(err.Error(), "share storage") {
		t.Errorf("--old /dev/sda3: %v", err)
	}
}

// TestBootNotMounted refuses when /boot is in fstab but not mounted.
func TestBootNotMounted(t *testing.T) {
	x := newFixture(t)
	x.writeProc(strings.Replace(mountsAfterSwap, "40 29 8:1 / /boot rw,relatime shared:17 - ext2 /dev/sda1 rw\n", "", 1))
	if err := x.run(); err == nil || !strings.Contains(err.Error(), "/boot is in /etc/fstab (LABEL=boot) but not mounted") {
		t.Fatalf("finish: %v", err)
	}
}

// TestRerun: a second finish finds everything done and changes nothing
// of fstab or the old root.
func TestRerun(t *testing.T) {
	x := newFixture(t)
	if err := x.run(); err != nil {
		t.Fatal(err)
	}
	fstab := snapshot(t, filepath.Join(x.root, "etc"))
	x.ran, x.relabelled = nil, nil
	x.stdout.Reset()
	if err := x.run(); err != nil {
		t.Fatalf("second finish: %v", err)
	}
	if d := diffSnapshots(fstab, snapshot(t, filepath.Join(x.root, "etc"))); len(d) > 0 {
		t.Errorf("second finish changed /etc: %q", d)
	}
	if len(x.relabelled) != 0 {
		t.Errorf("second finish relabelled again: %q", x.relabelled)
	}
	if !strings.Contains(x.stdout.String(), "already relabelled") {
		t.Errorf("output:\n%s", x.stdout.String())
	}
}

// TestSameUUID is the block copy's case: old and new carry the same UUID
// and label until the old one is relabelled; root=UUID= then names the
// new root, and the relabel makes it unique.
func TestSameUUID(t *testing.T) {
	x := newFixture(t)
	old := x.fs["/dev/sda2"]
	old.UUID = newUUID
	x.fs["/dev/sda2"] = old
	x.grubCfg = grubCfgFor("root=UUID=" + newUUID)
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if len(x.relabelled) != 1 {
		t.Errorf("relabelled %q, want the old root once", x.relabelled)
	}
}

// TestNoBootloaderNoInitramfs: a host without GRUB or a generator (a
// plain root on a partition) gets fstab and the relabel, and is told.
func TestNoBootloaderNoInitramfs(t *testing.T) {
	x := newFixture(t)
	for _, p := range []string{"usr/sbin", "etc/initramfs-tools", "boot/grub"} {
		os.RemoveAll(filepath.Join(x.root, p))
	}
	x.writeProc(strings.Replace(mountsAfterSwap, "253:0", "8:17", 1))
	x.fs["/dev/sdb1"] = x.fs["/dev/mapper/sys-root"]
	if err := x.run(); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if len(x.ran) != 0 {
		t.Errorf("ran %q", x.ran)
	}
	out := x.stdout.String()
	for _, want := range []string{"==> initramfs: no generator installed", "==> bootloader: no GRUB found", "==> old root: relabel /dev/sda2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// On LVM the same host is refused: nothing would assemble the root.
	x = newFixture(t)
	os.RemoveAll(filepath.Join(x.root, "usr/sbin"))
	if err := x.run(); err == nil || !strings.Contains(err.Error(), "no initramfs generator is installed") {
		t.Errorf("LVM root without a generator: %v", err)
	}
}

// TestCommandFails stops at the failing command, before the old root.
func TestCommandFails(t *testing.T) {
	x := newFixture(t)
	x.failCommand = "update-initramfs"
	err := x.run()
	if err == nil || !strings.Contains(err.Error(), "regenerating the initramfs") {
		t.Fatalf("finish: %v", err)
	}
	if got := argvs(x.ran); !reflect.DeepEqual(got, []string{"update-initramfs -u -k all"}) {
		t.Errorf("ran %q after the failure", got)
	}
	if len(x.relabelled) != 0 {
		t.Errorf("relabelled after a failure")
	}
}

// relabelledBySwap is the journal of a swap whose relabel-old step gave
// the old root (8:2) the label oldroot and relabelledUUID.
func relabelledBySwap() []journal.Record {
	recs := succeeded(8, 2)
	st, _ := swap.Unmarshal(recs[2].Data["state"])
	st.OldRelabelled = relabelledUUID
	recs[2].Data = map[string]string{"state": st.Marshal()}
	return recs
}

// TestRelabelledBySwap: finish finds the old root relabelled by the swap,
// as its journal says, leaves it alone, and a second finish changes
// nothing either.
func TestRelabelledBySwap(t *testing.T) {
	x := newFixture(t)
	x.journal(relabelledBySwap())
	x.fs["/dev/sda2"] = fstools.FS{Type: "ext3", Label: OldLabel, UUID: relabelledUUID, Size: 2 << 30}
	for run := 1; run <= 2; run++ {
		etc := snapshot(t, filepath.Join(x.root, "etc"))
		x.stdout.Reset()
		if err := x.run(); err != nil {
			t.Fatalf("finish #%d: %v\n%s", run, err, x.stderr.String())
		}
		if len(x.relabelled) != 0 {
			t.Errorf("finish #%d relabelled %q again", run, x.relabelled)
		}
		want := "==> old root: /dev/sda2 already relabelled by the swap's relabel-old step (label \"oldroot\", UUID " + relabelledUUID + "): left alone\n"
		if !strings.Contains(x.stdout.String(), want) {
			t.Errorf("finish #%d output lacks %q:\n%s", run, want, x.stdout.String())
		}
		if d := diffSnapshots(etc, snapshot(t, filepath.Join(x.root, "etc"))); run == 2 && len(d) > 0 {
			t.Errorf("the second finish changed /etc: %q", d)
		}
	}
}

// TestDryRunRebootNow: --dry-run says what the boot loader's root= and
// fstab's / find with the identities as they are.
func TestDryRunRebootNow(t *testing.T) {
	for _, tc := range []struct {
		name, oldLabel, root string
		want                 []string
	}{
		{"duplicate label", "root", "root=LABEL=root", []string{
			"finish: a reboot now: the boot loader's first root=LABEL=root finds both roots: either may come up",
			"finish: a reboot now: fstab's / LABEL=root finds both roots: either may come up"}},
		{"relabelled", OldLabel, "root=LABEL=root", []string{
			"finish: a reboot now: the boot loader's first root=LABEL=root finds only the new root",
			"finish: a reboot now: fstab's / LABEL=root finds only the new root"}},
		{"old uuid", OldLabel, "root=UUID=" + oldUUID, []string{
			"finish: a reboot now: the boot loader's first root=UUID=" + oldUUID + " finds only the old root (/ as frozen for the copy)"}},
		{"missing", OldLabel, "root=/dev/sdz9", []string{
			"finish: a reboot now: the boot loader's first root=/dev/sdz9 finds neither root: the boot would stop there"}},
	} {
		x := newFixture(t)
		x.cfg.DryRun = true
		old := x.fs["/dev/sda2"]
		old.Label = tc.oldLabel
		x.fs["/dev/sda2"] = old
		x.file("boot/grub/grub.cfg", grubCfgFor(tc.root), 0o444)
		if err := x.run(); err != nil {
			t.Fatalf("%s: finish --dry-run: %v", tc.name, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(x.stdout.String(), w+"\n") {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, x.stdout.String())
			}
		}
	}
}
