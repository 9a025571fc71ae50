package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// sysvinitPackage is Debian's package holding /sbin/init of sysvinit.
const sysvinitPackage = "sysvinit-core"

// chooseInit settles Options.Init: for InitAuto it is sysvinit when the
// package is cached or apt-get can download it, busybox otherwise.
func chooseInit(ctx context.Context, o Options, logf func(string, ...any)) (string, error) {
	if o.Init == InitBusybox {
		return InitBusybox, nil
	}
	_, err := sysvinitDeb(ctx, o.CacheDir, logf)
	if err == nil {
		return InitSysvinit, nil
	}
	if o.Init == InitSysvinit {
		return "", err
	}
	logf("sandbox: falling back to busybox init (no re-exec in place): %v", err)
	return InitBusybox, nil
}

// sysvinitDeb returns the cached sysvinit-core .deb, downloading it with
// apt-get into cacheDir first if there is none.
func sysvinitDeb(ctx context.Context, cacheDir string, logf func(string, ...any)) (string, error) {
	glob := filepath.Join(cacheDir, sysvinitPackage+"_*.deb")
	if debs, _ := filepath.Glob(glob); len(debs) > 0 {
		sort.Strings(debs)
		return debs[len(debs)-1], nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("sandbox: cache for %s: %w", sysvinitPackage, err)
	}
	logf("sandbox: apt-get download %s into %s", sysvinitPackage, cacheDir)
	// Without a network apt can hang in connect; a minute is plenty for 200 kB.
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := commandIn(ctx, cacheDir, "apt-get", "download", "-q", sysvinitPackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("sandbox: apt-get download %s in %s: %w: %s", sysvinitPackage, cacheDir, err, out)
	}
	debs, _ := filepath.Glob(glob)
	if len(debs) == 0 {
		return "", fmt.Errorf("sandbox: apt-get download %s left no %s", sysvinitPackage, glob)
	}
	sort.Strings(debs)
	return debs[len(debs)-1], nil
}

// installSysvinit unpacks sysvinit-core into a scratch directory and
// installs its init (with telinit and runlevel) into the staged tree,
// along with the host's shared libraries it links against.
func installSysvinit(ctx context.Context, o Options, stage, scratch string, logf func(string, ...any)) error {
	deb, err := sysvinitDeb(ctx, o.CacheDir, logf)
	if err != nil {
		return err
	}
	x := filepath.Join(scratch, "sysvinit")
	if err := os.MkdirAll(x, 0o755); err != nil {
		return err
	}
	if _, err := run(ctx, "dpkg-deb", "-x", deb, x); err != nil {
		// busybox can unpack a .deb too, for hosts without dpkg.
		if _, err2 := run(ctx, "busybox", "dpkg-deb", "-x", deb, x); err2 != nil {
			return fmt.Errorf("sandbox: unpacking %s: %w", deb, err)
		}
	}
	for _, p := range []string{"sbin/init", "sbin/runlevel"} {
		if err := installProgram(stage, filepath.Join(x, p), "/"+p); err != nil {
			return fmt.Errorf("sandbox: installing sysvinit %s: %w", p, err)
		}
	}
	telinit := filepath.Join(stage, "sbin/telinit")
	if err := os.Remove(telinit); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Symlink("init", telinit)
}
