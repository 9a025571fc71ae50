package finish

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// planEFI finds GRUB's grub.cfg on an EFI system partition (/boot/efi or
// /efi, EFI/<distribution>/grub.cfg). RHEL 8 and Fedora before 34 keep
// the real configuration there, and grub2-mkconfig must write it; Debian,
// Fedora 34+ and RHEL 9 keep a stub that finds /boot by its UUID and
// reads /boot/grub(2)/grub.cfg: the stub is kept, but it must not look
// for the old root.
func (p *Plan) planEFI() error {
	b := p.Boot
	if b == nil {
		return nil
	}
	m, _ := filepath.Glob(filepath.Join(p.root, "boot/efi/EFI/*/grub.cfg"))
	m2, _ := filepath.Glob(filepath.Join(p.root, "efi/EFI/*/grub.cfg"))
	if m = append(m, m2...); len(m) == 0 {
		return nil
	}
	cfg, err := os.ReadFile(m[0])
	if err != nil {
		return err
	}
	file := display(p.root, m[0])
	s, old := string(cfg), p.Old.FS.UUID // both as blkid prints them: lower case
	grub2 := b.Mkconfig[0] == "grub2-mkconfig"
	note := file + " is a stub that reads " + b.Config + ": kept"
	switch {
	case strings.Contains(s, "menuentry") || strings.Contains(s, "blscfg") || !strings.Contains(s, "configfile"):
		note = file + " is not the stub that reads " + b.Config + ": left alone"
		if grub2 {
			b.Config = file
			b.Mkconfig = []string{b.Mkconfig[0], "-o", file}
			note = "GRUB reads " + file + ": grub2-mkconfig writes it"
		}
	case old != "" && old != p.New.FS.UUID && strings.Contains(s, old):
		msg := file + " finds GRUB's files by the old root's UUID " + old + ", which finish changes: "
		if grub2 {
			return errors.New(msg + "point its search at the filesystem holding /boot first")
		}
		if p.cfg.GrubInstall == "" {
			return errors.New(msg + "run finish with --grub-install efi (grub-install --target=x86_64-efi writes it anew)")
		}
	}
	p.Pre = append(p.Pre, Action{What: "bootloader: EFI: " + note})
	if p.cfg.GrubInstall == "" {
		return nil
	}
	if grub2 {
		// RHEL's grub2-install refuses EFI: it would replace the signed
		// shim and GRUB that Secure Boot accepts.
		return errors.New("--grub-install: on EFI, reinstall the shim-x64 and grub2-efi-x64 packages instead (grub2-install would break Secure Boot)")
	}
	esp, _, _ := strings.Cut(file, "/EFI/")
	b.InstallArgs = []string{"--target=x86_64-efi", "--efi-directory=" + esp}
	return nil
}
