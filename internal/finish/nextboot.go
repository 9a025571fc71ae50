package finish

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rootswap/rootswap/internal/bootguard"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// NextBoot is how finish sets up the first boot of the new root (GRUB
// with /boot/grub, as Debian lays it out): the new root is GRUB's entry
// for the next boot only, with the boot guard as its init and panic=N;
// the old root stays the default, with its own copy of the kernel and
// initramfs it booted with (both roots share /boot, and step 2
// regenerates the initramfs).
type NextBoot struct {
	Plain    bool          // the new root becomes the default at once (the old behaviour)
	Manual   bool          // confirm by `rootswap confirm --boot`, not by sshd answering
	Deadline time.Duration // the guard reboots into the old root unless confirmed by then
	Panic    int           // panic=N on the one-shot entry (the kernel's and the initramfs's)
	Release  string        // the running kernel's release; empty: uname
	Self     string        // the binary copied as the guard; empty: Env.Self, else this executable
}

// nextBoot is what planNextBoot decided.
type nextBoot struct {
	skip     string // why the next boot is not guarded; empty: it is
	release  string
	kind     string // the init system the confirmation unit is for; empty: none
	self     string
	bootDev  string
	bootFS   string
	deadline time.Duration
	panic    int
}

// grubScript is /etc/grub.d/42_rootswap: grub.cfg sources the entries at
// boot time, so that finish can write them after the old root's relabel
// (its new UUID) without running update-grub again.
const (
	grubScript     = "/etc/grub.d/42_rootswap"
	grubScriptText = `#!/bin/sh
# rootswap finish: the first boot of a new root, and the way back to the
# old one (see rootswap status).
cat <<'RS_EOF'
if [ -f "$prefix/rootswap.cfg" ]; then
  source "$prefix/rootswap.cfg"
fi
RS_EOF
`
)

func (p *Plan) planNextBoot(mounts mountinfo.Table) {
	nb := p.cfg.NextBoot
	n := &nextBoot{deadline: nb.Deadline, panic: nb.Panic}
	p.next = n
	if n.deadline <= 0 {
		n.deadline = 10 * time.Minute
	}
	if n.panic <= 0 {
		n.panic = 10
	}
	m, _ := mounts.Containing("/boot")
	switch {
	case nb.Plain:
		n.skip = "--first-boot plain"
	case p.Boot == nil || p.Boot.Config != "/boot/grub/grub.cfg":
		n.skip = "handled for GRUB with /boot/grub only"
	case p.OldAction == "wipe":
		n.skip = "--wipe-old erases the way back"
	case p.Old.FS.UUID == "":
		n.skip = "the old root has no filesystem UUID to boot it by"
	case m.Point != "/boot":
		n.skip = "/boot is not a filesystem of its own that both roots share"
	case !strings.HasPrefix(m.FSType, "ext"):
		n.skip = "GRUB cannot clear its one-shot next_entry on /boot's " + m.FSType
	}
	if st := StackOf(p.cfg.Env.SysRoot, m.Dev()).Needs(); n.skip == "" && st != "" {
		n.skip = "GRUB cannot clear its one-shot next_entry on /boot on " + st
	}
	if n.skip != "" {
		return
	}
	n.bootDev, n.bootFS = m.Source, m.FSType
	n.release = nb.Release
	if n.release == "" {
		var u unix.Utsname
		unix.Uname(&u)
		n.release = unix.ByteSliceToString(u.Release[:])
	}
	for _, f := range []string{"vmlinuz-", "initrd.img-"} {
		if !exists(p.root, "boot/"+f+n.release) && !exists(p.root, "boot/rootswap/"+f+n.release) {
			n.skip = "no /boot/" + f + n.release + " (the running kernel's) to keep for the old root"
			return
		}
	}
	switch {
	case exists(p.root, "run/systemd/system"):
		n.kind = "systemd"
	case exists(p.root, "etc/init.d") && findTool(p.root, "update-rc.d"):
		n.kind = "sysv"
	case exists(p.root, "etc/runlevels") && findTool(p.root, "openrc-run"):
		n.kind = "openrc"
	case !nb.Manual:
		n.skip = "no systemd, update-rc.d or OpenRC for the confirmation unit (--boot-confirm manual needs none)"
		return
	}
	n.self = nb.Self
	if n.self == "" {
		n.self = p.cfg.Env.Self
	}
	if n.self == "" {
		n.self, _ = os.Executable()
	}
}

// nextBootBefore runs before the initramfs is regenerated: the old
// root's kernel and initramfs are kept, the guard and the unit put on
// the new root, GRUB told to boot its saved default.
func (p *Plan) nextBootBefore(ctx context.Context, run Runner, act func(string)) error {
	n := p.next
	if n.skip != "" {
		act(fmt.Sprintf("first boot: the new root becomes the default at once (%s)", n.skip))
		return nil
	}
	dry := p.cfg.DryRun
	act(fmt.Sprintf("first boot: keep the old root's kernel and initramfs: /boot/vmlinuz-%[1]s, /boot/initrd.img-%[1]s -> %[2]s/", n.release, bootguard.BootDir))
	for _, f := range []string{"vmlinuz-", "initrd.img-"} {
		dst := filepath.Join(p.root, bootguard.BootDir, f+n.release)
		if dry || exists(dst, "") {
			continue // a second finish keeps the first copy: the image the old root booted
		}
		if err := copyFile(filepath.Join(p.root, "boot", f+n.release), dst, 0o600); err != nil {
			return fmt.Errorf("keeping the old root's %s: %w", f+n.release, err)
		}
	}
	act(fmt.Sprintf("first boot: the boot guard: %s -> %s on the new root (the one-shot entry's init=)", n.self, bootguard.GuardPath))
	if !dry {
		if err := copyFile(n.self, filepath.Join(p.root, bootguard.GuardPath), 0o755); err != nil {
			return fmt.Errorf("installing the boot guard: %w", err)
		}
	}
	act(fmt.Sprintf("first boot: GRUB_DEFAULT=saved in /etc/default/grub; %s makes grub.cfg source %s", grubScript, bootguard.GrubCfg))
	if !dry {
		if err := p.grubDefaultSaved(); err != nil {
			return err
		}
		if err := bootguard.WriteFile(filepath.Join(p.root, grubScript), []byte(grubScriptText), 0o755); err != nil {
			return err
		}
	}
	if n.kind == "" {
		act("first boot: no confirmation unit: `rootswap confirm --boot` confirms")
		return nil
	}
	var names []string
	units := bootguard.Units(n.kind)
	for _, u := range units {
		names = append(names, u.Path)
	}
	act(fmt.Sprintf("first boot: the confirmation unit (%s): %s", n.kind, strings.Join(names, ", ")))
	if dry {
		return nil
	}
	for _, u := range units {
		dst := filepath.Join(p.root, u.Path)
		if u.Link != "" {
			os.MkdirAll(filepath.Dir(dst), 0o755)
			os.Remove(dst)
			if err := os.Symlink(u.Link, dst); err != nil {
				return fmt.Errorf("enabling the confirmation unit: %w", err)
			}
		} else if err := bootguard.WriteFile(dst, []byte(u.Text), os.FileMode(u.Mode)); err != nil {
			return err
		}
	}
	if n.kind == "sysv" {
		argv := []string{"update-rc.d", bootguard.UnitName, "defaults"}
		act(fmt.Sprintf("first boot: %s", strings.Join(argv, " ")))
		if err := run(ctx, argv); err != nil {
			return fmt.Errorf("enabling the confirmation unit: %w", err)
		}
	}
	return nil
}

// grubDefaultSaved sets GRUB_DEFAULT=saved in /etc/default/grub, every
// other line kept: grub.cfg then boots grubenv's saved_entry, and
// next_entry once.
func (p *Plan) grubDefaultSaved() error {
	name := filepath.Join(p.root, "etc/default/grub")
	data, err := os.ReadFile(name)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var lines []string
	if len(data) > 0 {
		lines = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	found := false
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "GRUB_DEFAULT=") {
			lines[i], found = "GRUB_DEFAULT=saved", true
		}
	}
	if !found {
		lines = append(lines, "GRUB_DEFAULT=saved")
	}
	return bootguard.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// nextBootAfter runs last, once the old root is relabelled: the two
// entries (the old root by its new UUID as the default, the new root
// once), the record, and grubenv, which arms it all.
func (p *Plan) nextBootAfter(act func(string)) error {
	n := p.next
	if n.skip != "" {
		return nil
	}
	oldUUID := p.Old.FS.UUID
	if p.OldAction == "relabel" {
		oldUUID = "(its new UUID)"
		if !p.cfg.DryRun {
			fs, err := p.cfg.Devices.Detect(p.Old.Path)
			if err != nil {
				return err
			}
			oldUUID = fs.UUID
		}
	}
	args := fmt.Sprintf("panic=%d init=%s", n.panic, bootguard.GuardPath)
	act(fmt.Sprintf("first boot: %s: %s boots the old root %s (root=UUID=%s), GRUB's default; %s boots the new root once with %s",
		bootguard.GrubCfg, bootguard.OldEntry, p.Old.Path, oldUUID, bootguard.NewEntry, args))
	act(fmt.Sprintf("first boot: grubenv: saved_entry=%s next_entry=%s", bootguard.OldEntry, bootguard.NewEntry))
	if p.cfg.DryRun {
		return nil
	}
	cfg, err := os.ReadFile(filepath.Join(p.root, p.Boot.Config))
	if err != nil {
		return err
	}
	if !strings.Contains(string(cfg), "rootswap.cfg") {
		return fmt.Errorf("%s does not source rootswap.cfg: %s did not run (is /etc/grub.d/ honoured?); GRUB's default is unchanged", p.Boot.Config, grubScript)
	}
	id, body := firstEntry(cfg)
	if body == nil {
		return fmt.Errorf("%s has no menuentry to copy for the first boot", p.Boot.Config)
	}
	if id == "" {
		id = "0"
	}
	entries := entry("rootswap: the old root "+p.Old.Path+" (the way back)", bootguard.OldEntry, body, func(w []string) []string {
		return oldKernelWords(w, n.release, oldUUID)
	}) + entry("rootswap: the first boot of the new root "+p.New.Path, bootguard.NewEntry, body, func(w []string) []string {
		if isKernelCommand(w[0]) {
			return append(w, strings.Fields(args)...)
		}
		return w
	})
	rec := bootguard.Record{
		"state": bootguard.Pending, "finished": bootguard.Stamp(p.cfg.Env.Now()),
		"new": p.New.Path, "new_uuid": p.New.FS.UUID, "new_entry": id,
		"old": p.Old.Path, "old_uuid": oldUUID,
		"init": "/sbin/init", "deadline": strconv.Itoa(int(n.deadline / time.Second)), "ssh_port": "22",
		"boot_dev": n.bootDev, "boot_fs": n.bootFS,
	}
	if p.cfg.NextBoot.Manual {
		rec["confirm"] = "manual"
	}
	if err := bootguard.WriteFile(filepath.Join(p.root, bootguard.GrubCfg), []byte(entries), 0o644); err != nil {
		return err
	}
	for _, f := range []string{bootguard.RootRecord, bootguard.BootRecord} {
		if err := bootguard.WriteFile(filepath.Join(p.root, f), rec.Marshal(), 0o644); err != nil {
			return err
		}
	}
	bootguard.AppendLog(filepath.Join(p.root, bootguard.BootLog), p.cfg.Env.Now(),
		fmt.Sprintf("finish: the next boot tries the new root %s once (%s); the old root %s is the default", p.New.Path, bootguard.NewEntry, p.Old.Path))
	return bootguard.EditEnv(filepath.Join(p.root, bootguard.GrubEnv),
		"saved_entry", bootguard.OldEntry, "next_entry", bootguard.NewEntry)
}

// oldKernelWords points a linux/initrd line of the new root's entry at
// the old root and the kernel and initramfs kept for it.
func oldKernelWords(w []string, release, uuid string) []string {
	switch {
	case isKernelCommand(w[0]) && len(w) > 1:
		w[1] = path.Join(path.Dir(w[1]), "rootswap", "vmlinuz-"+release)
		for i := 2; i < len(w); i++ {
			if strings.HasPrefix(w[i], "root=") {
				w[i] = "root=UUID=" + uuid
			}
		}
	case strings.HasPrefix(w[0], "initrd") && len(w) > 1:
		w = []string{w[0], path.Join(path.Dir(w[1]), "rootswap", "initrd.img-"+release)}
	}
	return w
}

// firstEntry is the id and body lines of grub.cfg's first top-level
// menuentry (the one GRUB_DEFAULT=0 booted).
func firstEntry(cfg []byte) (string, []string) {
	lines := strings.Split(string(cfg), "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "menuentry ") {
			continue
		}
		id := ""
		w := grubWords(l)
		for j := 0; j+1 < len(w); j++ {
			if w[j] == "$menuentry_id_option" || w[j] == "--id" {
				id = w[j+1]
			}
		}
		for k := i + 1; k < len(lines); k++ {
			if lines[k] == "}" {
				return id, lines[i+1 : k]
			}
		}
		return id, nil
	}
	return "", nil
}

// entry writes a menuentry from body, its linux and initrd lines passed
// through edit; savedefault is dropped (it would make the entry the
// from a boot the guard may undo).
func entry(title, id string, body []string, edit func([]string) []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "menuentry '%s' --id %s {\n", title, id)
	for _, l := range body {
		w := grubWords(l)
		if len(w) > 0 && (w[0] == "savedefault" || w[0] == "recordfail") {
			continue
		}
		if len(w) > 0 && (isKernelCommand(w[0]) || strings.HasPrefix(w[0], "initrd")) {
			w = edit(w)
			for i := range w {
				w[i] = grubQuote(w[i])
			}
			l = "\t" + strings.Join(w, " ")
		}
		b.WriteString(l + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func grubQuote(s string) string {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/=.,:_+-@", c)) {
			return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
		}
	}
	return s
}

// copyFile copies src to dst through a synced temporary file.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	os.MkdirAll(filepath.Dir(dst), 0o755)
	tmp := dst + ".rootswap.tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
}

func (n *nextBoot) confirmHow(manual bool) string {
	if manual {
		return "by `rootswap confirm --boot`"
	}
	return "/ mounted from the new root and sshd answering"
}
