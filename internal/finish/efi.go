package finish

import (
	"fmt"
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
	esp, dir := "", ""
	var cfg []byte
	for _, e := range []string{"boot/efi", "efi"} {
		ents, _ := os.ReadDir(filepath.Join(p.root, e, "EFI"))
		for _, d := range ents {
			data, err := os.ReadFile(filepath.Join(p.root, e, "EFI", d.Name(), "grub.cfg"))
			if err == nil && !strings.EqualFold(d.Name(), "BOOT") {
				esp, dir, cfg = "/"+e, "/"+e+"/EFI/"+d.Name(), data
				break
			}
		}
		if dir != "" {
			break
		}
	}
	if dir == "" {
		return nil
	}
	s := string(cfg)
	grub2 := b.Mkconfig[0] == "grub2-mkconfig"
	stub := strings.Contains(s, "configfile") && !strings.Contains(s, "menuentry") && !strings.Contains(s, "blscfg")
	note := func(format string, a ...any) {
		p.Pre = append(p.Pre, Action{What: "bootloader: EFI: " + fmt.Sprintf(format, a...)})
	}
	old := strings.ToLower(p.Old.FS.UUID)
	switch {
	case !stub && grub2:
		b.Config = dir + "/grub.cfg"
		b.Mkconfig = []string{b.Mkconfig[0], "-o", b.Config}
		note("GRUB reads %s: %s writes it", b.Config, b.Mkconfig[0])
	case !stub:
		note("%s/grub.cfg is not the stub that reads %s: left alone", dir, b.Config)
	case old != "" && old != strings.ToLower(p.New.FS.UUID) && strings.Contains(strings.ToLower(s), old):
		if grub2 {
			return fmt.Errorf("%s/grub.cfg finds GRUB's files by the old root's UUID %s, which finish changes: point its search at the filesystem holding /boot (UUID %s) first", dir, p.Old.FS.UUID, p.New.FS.UUID)
		}
		if p.cfg.GrubInstall == "" {
			return fmt.Errorf("%s/grub.cfg finds GRUB's files by the old root's UUID %s, which finish changes: run finish with --grub-install efi (grub-install --target=x86_64-efi writes it anew)", dir, p.Old.FS.UUID)
		}
	default:
		note("%s/grub.cfg is a stub that reads %s: kept", dir, b.Config)
	}
	if p.cfg.GrubInstall == "" {
		return nil
	}
	if grub2 {
		// RHEL's grub2-install refuses EFI: it would replace the signed
		// shim and GRUB that Secure Boot accepts.
		return fmt.Errorf("--grub-install %s: on EFI, reinstall the shim-x64 and grub2-efi-x64 packages instead (grub2-install would break Secure Boot)", p.cfg.GrubInstall)
	}
	if b.Install == "" {
		return fmt.Errorf("--grub-install %s: grub-install is not installed", p.cfg.GrubInstall)
	}
	b.InstallArgs = []string{"--target=x86_64-efi", "--efi-directory=" + esp}
	return nil
}
