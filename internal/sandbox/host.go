package sandbox

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// busyboxPackage is Debian's statically linked busybox: one file, no
// libraries to copy along.
const busyboxPackage = "busybox-static"

// findBusybox returns the busybox the server's tree is built from and its
// stage script runs under: the host's in PATH when there is one, else
// busybox-static's from the cache, downloaded first when needed.
func findBusybox(ctx context.Context, cacheDir string, logf func(string, ...any)) (string, error) {
	if p, err := exec.LookPath("busybox"); err == nil {
		return p, nil
	}
	p, err := packageFile(ctx, cacheDir, busyboxPackage, "bin/busybox", logf)
	if err != nil {
		return "", fmt.Errorf("sandbox: busybox is not in PATH and could not be fetched (%w); install it with apt-get install %s, or put %s's .deb into %s",
			err, busyboxPackage, busyboxPackage, cacheDir)
	}
	return p, nil
}

// toolPackage name the Debian (bookworm) package of each host program
// the sandbox may run.
func toolPackage(s string) string {
	switch s {
	case "losetup":
		return "mount"
	case "nsenter":
		return "util-linux"
	case "mkfs.ext3", "e2fsck", "resize2fs", "tune2fs", "dumpe2fs":
		return "e2fsprogs"
	}
	return ""
}

// checkHost finds, before Build makes anything, every host program the
// sandbox will need and is missing, and names the packages to install in
// one error.
func (o Options) checkHost() error {
	var c hostCheck
	for _, t := range []string{"losetup", "mkfs.ext3", "nsenter"} {
		c.tool(t, "")
	}
	for _, t := range o.HostTools {
		c.tool(t, ", a host tool copied into the server")
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		if why := fetchBlocker(o.CacheDir, busyboxPackage); why != "" {
			c.missing = append(c.missing, fmt.Sprintf("busybox: not in PATH, and %s cannot be fetched: %s (Debian package %s)", busyboxPackage, why, busyboxPackage))
			c.add(busyboxPackage)
		}
	}
	// InitAuto falls back to busybox init by itself; only an explicit
	// sysvinit must have its package.
	if o.Init == InitSysvinit {
		if why := fetchBlocker(o.CacheDir, sysvinitPackage); why != "" {
			// Not to install: sysvinit-core would replace the host's init.
			c.missing = append(c.missing, fmt.Sprintf("init sysvinit: %s cannot be fetched: %s; copy its .deb into %s (do not install it on this host: it replaces the host's init), or use init busybox",
				sysvinitPackage, why, o.CacheDir))
		}
	}
	if len(c.missing) == 0 {
		return nil
	}
	msg := "sandbox: this host lacks what the sandbox server needs:\n  " + strings.Join(c.missing, "\n  ")
	if len(c.packages) > 0 {
		msg += "\ninstall with: apt-get install " + strings.Join(c.packages, " ")
	}
	return fmt.Errorf("%s", msg)
}

// fetchBlocker says why packageFile cannot get pkg ("no apt-get in
// PATH"), or "" when it can: unpacked in the cache, or with the programs
// that fetch and unpack it.
func fetchBlocker(cacheDir, pkg string) string {
	deb := cachedDeb(cacheDir, pkg)
	if deb != "" && unpacked(deb) {
		return ""
	}
	var need []string
	if deb == "" {
		need = append(need, "apt-get")
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		need = append(need, "dpkg-deb") // else busybox dpkg-deb unpacks it
	}
	var lack []string
	for _, t := range need {
		if _, err := exec.LookPath(t); err != nil {
			lack = append(lack, "no "+t)
		}
	}
	if len(lack) == 0 {
		return ""
	}
	return strings.Join(lack, ", ") + " in PATH"
}

// hostCheck collects what checkHost finds missing.
type hostCheck struct {
	missing  []string // one line each: what, why, its package
	packages []string // to apt-get install, each once
}

func (c *hostCheck) tool(name, role string) {
	if _, err := exec.LookPath(name); err == nil {
		return
	}
	pkg := toolPackage(name)
	if pkg == "" {
		c.missing = append(c.missing, fmt.Sprintf("%s: not found in PATH%s (install the package that has it)", name, role))
		return
	}
	c.missing = append(c.missing, fmt.Sprintf("%s: not found in PATH%s (Debian package %s)", name, role, pkg))
	c.add(pkg)
}

func (c *hostCheck) add(pkg string) {
	if !slices.Contains(c.packages, pkg) {
		c.packages = append(c.packages, pkg)
	}
}
