package finish

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func tree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, strings.TrimSuffix(f, "/"))
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		content, mode := "#!/bin/sh\n", os.FileMode(0o755)
		if k, v, ok := strings.Cut(f, "="); ok {
			p, content, mode = filepath.Join(root, k), v, 0o644
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetectGenerator(t *testing.T) {
	lvm, md := Stack{LVM: true}, Stack{MD: true}
	tests := []struct {
		name    string
		files   []string
		stack   Stack
		argv    []string // nil: none detected
		missing string
	}{
		{"initramfs-tools", []string{"usr/sbin/update-initramfs", "etc/initramfs-tools/", "usr/share/initramfs-tools/hooks/lvm2"}, lvm,
			[]string{"update-initramfs", "-u", "-k", "all"}, ""},
		{"initramfs-tools merged /sbin", []string{"sbin/update-initramfs", "etc/initramfs-tools/"}, Stack{},
			[]string{"update-initramfs", "-u", "-k", "all"}, ""},
		{"initramfs-tools without lvm2", []string{"usr/sbin/update-initramfs", "etc/initramfs-tools/"}, lvm,
			[]string{"update-initramfs", "-u", "-k", "all"}, "install lvm2 first: the initramfs cannot find the root"},
		{"initramfs-tools without mdadm", []string{"usr/sbin/update-initramfs", "etc/initramfs-tools/"}, md,
			[]string{"update-initramfs", "-u", "-k", "all"}, "install mdadm first"},
		{"update-initramfs alone is not initramfs-tools", []string{"usr/sbin/update-initramfs"}, Stack{}, nil, ""},
		{"dracut", []string{"usr/bin/dracut", "usr/lib/dracut/modules.d/90lvm/"}, lvm,
			[]string{"dracut", "-f", "--regenerate-all"}, ""},
		{"dracut without lvm module", []string{"usr/bin/dracut"}, lvm,
			[]string{"dracut", "-f", "--regenerate-all"}, "install lvm2 (dracut's lvm module) first"},
		{"mkinitcpio", []string{"usr/bin/mkinitcpio", "usr/lib/initcpio/install/lvm2", "etc/mkinitcpio.conf=HOOKS=(base udev block lvm2 filesystems)\n"}, lvm,
			[]string{"mkinitcpio", "-P"}, ""},
		{"mkinitcpio without the hook in HOOKS", []string{"usr/bin/mkinitcpio", "usr/lib/initcpio/install/lvm2", "etc/mkinitcpio.conf=HOOKS=(base udev block filesystems)\n"}, lvm,
			[]string{"mkinitcpio", "-P"}, "add lvm2 (or sd-lvm2) to HOOKS"},
		{"genkernel on LVM and md", []string{"usr/bin/genkernel"}, Stack{LVM: true, MD: true},
			[]string{"genkernel", "--lvm", "--mdadm", "--install", "initramfs"}, ""},
		{"nothing", []string{"etc/initramfs-tools/", "usr/sbin/grub-install"}, Stack{}, nil, ""},
		{"not executable", []string{"usr/bin/dracut=not a program"}, Stack{}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := DetectGenerator(tree(t, tc.files...), tc.stack)
			if tc.argv == nil {
				if g != nil {
					t.Fatalf("found %+v, want none", g)
				}
				return
			}
			if g == nil {
				t.Fatalf("found none, want %q", tc.argv)
			}
			if !reflect.DeepEqual(g.Argv, tc.argv) {
				t.Errorf("argv %q, want %q", g.Argv, tc.argv)
			}
			if tc.missing == "" && g.Missing != "" || !strings.Contains(g.Missing, tc.missing) {
				t.Errorf("missing %q, want %q", g.Missing, tc.missing)
			}
		})
	}
}

func TestDetectBootloader(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  *Bootloader
	}{
		{"debian", []string{"usr/sbin/update-grub", "usr/sbin/grub-mkconfig", "usr/sbin/grub-install", "boot/grub/"},
			&Bootloader{Mkconfig: []string{"update-grub"}, Config: "/boot/grub/grub.cfg", Install: "grub-install"}},
		{"arch", []string{"usr/bin/grub-mkconfig", "boot/grub/"},
			&Bootloader{Mkconfig: []string{"grub-mkconfig", "-o", "/boot/grub/grub.cfg"}, Config: "/boot/grub/grub.cfg"}},
		{"fedora", []string{"usr/sbin/grub2-mkconfig", "usr/sbin/grub2-install", "boot/grub2/"},
			&Bootloader{Mkconfig: []string{"grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"}, Config: "/boot/grub2/grub.cfg", Install: "grub2-install"}},
		{"grub installed, /boot/grub absent", []string{"usr/sbin/update-grub", "boot/"}, nil},
		{"nothing", []string{"boot/grub/"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := DetectBootloader(tree(t, tc.files...))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDevicePathAndStack(t *testing.T) {
	sys := materialize(t)
	tests := []struct {
		dev   uint64
		path  string
		needs string
	}{
		{unix.Mkdev(253, 0), "/dev/mapper/sys-root", "LVM"},
		{unix.Mkdev(8, 2), "/dev/sda2", ""},
		{unix.Mkdev(253, 1), "/dev/mapper/cryptroot", "md RAID, device-mapper"},
		{unix.Mkdev(9, 0), "/dev/md0", "md RAID"},
	}
	for _, tc := range tests {
		got, err := DevicePath(sys, tc.dev)
		if err != nil || got != tc.path {
			t.Errorf("DevicePath(%d:%d) = %q, %v; want %q", unix.Major(tc.dev), unix.Minor(tc.dev), got, err, tc.path)
		}
		if got := StackOf(sys, tc.dev).Needs(); got != tc.needs {
			t.Errorf("StackOf(%s).Needs() = %q, want %q", tc.path, got, tc.needs)
		}
	}
	if _, err := DevicePath(sys, unix.Mkdev(8, 99)); err == nil {
		t.Errorf("DevicePath of a device missing from sysfs: no error")
	}
}
