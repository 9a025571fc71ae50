package finish

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/blockdev"
	"golang.org/x/sys/unix"
)

// sbinDirs are where distributions install the tools finish runs, in the
// order they are looked for under Root.
var sbinDirs = []string{"usr/sbin", "usr/bin", "sbin", "bin", "usr/local/sbin", "usr/local/bin"}

// findTool reports whether an executable named tool is installed under
// root.
func findTool(root, tool string) bool {
	for _, d := range sbinDirs {
		fi, err := os.Stat(filepath.Join(root, d, tool))
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

func exists(root, rel string) bool {
	_, err := os.Stat(filepath.Join(root, rel))
	return err == nil
}

// DevicePath is the name admins and boot loaders use for device dev:
// /dev/mapper/VG-LV for a device-mapper device (stable across boots,
// unlike dm-N), else /dev/NAME from sysfs ("!" in a sysfs name is a "/"
// in /dev: cciss!c0d0).
func DevicePath(sysRoot string, dev uint64) (string, error) {
	d, err := blockdev.Lookup(sysRoot, dev)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(d.Name, "dm-") {
		if name, err := os.ReadFile(sysBlock(sysRoot, dev, "dm", "name")); err == nil {
			if n := strings.TrimSpace(string(name)); n != "" {
				return "/dev/mapper/" + n, nil
			}
		}
	}
	return "/dev/" + strings.ReplaceAll(d.Name, "!", "/"), nil
}

func sysBlock(sysRoot string, dev uint64, elem ...string) string {
	return filepath.Join(append([]string{sysRoot, "dev", "block", strconv.FormatUint(uint64(unix.Major(dev)), 10) + ":" + strconv.FormatUint(uint64(unix.Minor(dev)), 10)}, elem...)...)
}

// Stack is what the kernel must assemble before it can mount a device:
// the device-mapper and md layers under it, found through sysfs slaves.
type Stack struct {
	LVM  bool     // an LVM logical volume is in the stack
	MD   bool     // an md RAID is in the stack
	Dm   bool     // a device-mapper device that is not LVM (crypt, multipath)
	Path []string // the sysfs names from the device down, for messages
	// Layers are the devices of the stack, from the top, for what the
	// initramfs must be told (rd.lvm.lv=, rd.md.uuid=, crypttab).
	Layers []Layer
}

// Layer is one device of a stack.
type Layer struct {
	Path   string   // /dev/mapper/sys-root, /dev/md0, /dev/sda3
	Kind   byte     // 'l' an LVM LV, 'm' md, 'c' LUKS, 'd' other dm, 0 a disk or partition
	Name   string   // the dm name of a dm device
	UUID   string   // the LUKS UUID of a LUKS device
	Slaves []string // the /dev paths of the devices under it
}

// Needs is the stack in words: "LVM, md", or "" for a plain device.
func (s Stack) Needs() string {
	var w []string
	if s.LVM {
		w = append(w, "LVM")
	}
	if s.MD {
		w = append(w, "md RAID")
	}
	if s.Dm {
		w = append(w, "device-mapper")
	}
	return strings.Join(w, ", ")
}

// StackOf walks down the slaves of dev in sysfs.
func StackOf(sysRoot string, dev uint64) Stack {
	var s Stack
	d, err := blockdev.Lookup(sysRoot, dev)
	if err != nil {
		return s
	}
	seen := map[string]bool{}
	var walk func(name, dir string) string
	walk = func(name, dir string) string {
		l := Layer{Path: "/dev/" + strings.ReplaceAll(name, "!", "/")}
		if dm, err := os.ReadFile(filepath.Join(dir, "dm", "name")); err == nil {
			l.Name = strings.TrimSpace(string(dm))
			l.Path, l.Kind = "/dev/mapper/"+l.Name, 'd'
		}
		if seen[name] {
			return l.Path
		}
		seen[name] = true
		s.Path = append(s.Path, name)
		uuid, _ := os.ReadFile(filepath.Join(dir, "dm", "uuid"))
		u := string(uuid)
		switch {
		case strings.HasPrefix(u, "LVM-"):
			s.LVM, l.Kind = true, 'l'
		case l.Kind != 0:
			s.Dm = true
			// CRYPT-LUKS2-<32 hex digits>-<name>
			if h := strings.Split(u, "-"); len(h) > 2 && strings.HasPrefix(u, "CRYPT-LUKS") && len(h[2]) == 32 {
				l.Kind, l.UUID = 'c', hexID(h[2], "-", 8, 12, 16, 20)
			}
		case strings.HasPrefix(name, "md"):
			s.MD, l.Kind = true, 'm'
		}
		ents, _ := os.ReadDir(filepath.Join(dir, "slaves"))
		i := len(s.Layers)
		s.Layers = append(s.Layers, l)
		for _, e := range ents {
			p := walk(e.Name(), filepath.Join(sysRoot, "class", "block", e.Name()))
			s.Layers[i].Slaves = append(s.Layers[i].Slaves, p)
		}
		return l.Path
	}
	walk(d.Name, sysBlock(sysRoot, dev))
	return s
}

// Generator is an initramfs generator and how to ask it for a new image.
type Generator struct {
	Name string   // initramfs-tools, dracut, mkinitcpio, genkernel
	Argv []string // the command that regenerates every installed kernel's image
	// Missing is what the image would lack for the new root's stack, in
	// words, with what to install; empty when nothing is missing.
	Missing string
}

// DetectGenerator finds the initramfs generator installed under root, by
// its files, not by the distribution's name: the first of
// initramfs-tools, dracut, mkinitcpio, genkernel. nil when none is.
func DetectGenerator(root string, st Stack) *Generator {
	switch {
	case findTool(root, "update-initramfs") && exists(root, "etc/initramfs-tools"):
		g := &Generator{Name: "initramfs-tools", Argv: []string{"update-initramfs", "-u", "-k", "all"}}
		g.Missing = missingHooks(root, st,
			"usr/share/initramfs-tools/hooks/lvm2", "lvm2",
			"usr/share/initramfs-tools/hooks/mdadm", "mdadm")
		return g
	case findTool(root, "dracut"):
		g := &Generator{Name: "dracut", Argv: []string{"dracut", "-f", "--regenerate-all"}}
		g.Missing = missingHooks(root, st,
			"usr/lib/dracut/modules.d/90lvm", "lvm2 (dracut's lvm module)",
			"usr/lib/dracut/modules.d/90mdraid", "mdadm (dracut's mdraid module)")
		return g
	case findTool(root, "mkinitcpio"):
		g := &Generator{Name: "mkinitcpio", Argv: []string{"mkinitcpio", "-P"}}
		g.Missing = missingHooks(root, st,
			"usr/lib/initcpio/install/lvm2", "lvm2",
			"usr/lib/initcpio/install/mdadm_udev", "mdadm")
		if g.Missing == "" {
			g.Missing = mkinitcpioHooks(root, st)
		}
		return g
	case findTool(root, "genkernel"):
		// genkernel builds LVM and md support in only when asked.
		argv := []string{"genkernel"}
		if st.LVM {
			argv = append(argv, "--lvm")
		}
		if st.MD {
			argv = append(argv, "--mdadm")
		}
		return &Generator{Name: "genkernel", Argv: append(argv, "--install", "initramfs")}
	}
	return nil
}

func missingHooks(root string, st Stack, lvmHook, lvmPkg, mdHook, mdPkg string) string {
	var miss []string
	if st.LVM && !exists(root, lvmHook) {
		miss = append(miss, "install "+lvmPkg+" first: the initramfs cannot find the root (on LVM; /"+lvmHook+" is missing)")
	}
	if st.MD && !exists(root, mdHook) {
		miss = append(miss, "install "+mdPkg+" first: the initramfs cannot find the root (on md RAID; /"+mdHook+" is missing)")
	}
	return strings.Join(miss, "; ")
}

// mkinitcpioHooks checks that HOOKS in /etc/mkinitcpio.conf names the
// hooks the stack needs: installing them is not enough there.
func mkinitcpioHooks(root string, st Stack) string {
	conf, err := os.ReadFile(filepath.Join(root, "etc/mkinitcpio.conf"))
	if err != nil {
		return ""
	}
	hooks := ""
	for _, line := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "HOOKS="); ok {
			hooks = v
		}
	}
	var miss []string
	if st.LVM && !strings.Contains(hooks, "lvm2") {
		miss = append(miss, "add lvm2 (or sd-lvm2) to HOOKS in /etc/mkinitcpio.conf first: the initramfs cannot find the root (on LVM)")
	}
	if st.MD && !strings.Contains(hooks, "mdadm") {
		miss = append(miss, "add mdadm_udev to HOOKS in /etc/mkinitcpio.conf first: the initramfs cannot find the root (on md RAID)")
	}
	return strings.Join(miss, "; ")
}

// Bootloader is an installed GRUB and how to regenerate its configuration.
type Bootloader struct {
	Mkconfig []string // update-grub, or grub-mkconfig -o /boot/grub/grub.cfg
	Config   string   // the generated file, absolute as on the host: /boot/grub/grub.cfg
	Install  string   // grub-install or grub2-install; empty when not installed
	// InstallArgs are grub-install's arguments on EFI (efi.go), where it
	// takes no disk; nil on BIOS.
	InstallArgs []string
}

// DetectBootloader finds GRUB under root: its config generator and its
// /boot directory must both be there (a grub package installed in a
// container without /boot/grub is not the boot loader). nil when none.
func DetectBootloader(root string) *Bootloader {
	install := func(tool string) string {
		if findTool(root, tool) {
			return tool
		}
		return ""
	}
	switch {
	case exists(root, "boot/grub") && findTool(root, "update-grub"):
		return &Bootloader{Mkconfig: []string{"update-grub"}, Config: "/boot/grub/grub.cfg", Install: install("grub-install")}
	case exists(root, "boot/grub") && findTool(root, "grub-mkconfig"):
		return &Bootloader{Mkconfig: []string{"grub-mkconfig", "-o", "/boot/grub/grub.cfg"}, Config: "/boot/grub/grub.cfg", Install: install("grub-install")}
	case exists(root, "boot/grub2") && findTool(root, "grub2-mkconfig"):
		return &Bootloader{Mkconfig: []string{"grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"}, Config: "/boot/grub2/grub.cfg", Install: install("grub2-install")}
	}
	return nil
}
