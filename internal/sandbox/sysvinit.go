package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// sysvinitPackage is Debian's package holding /sbin/init of sysvinit.
const sysvinitPackage = "sysvinit-core"

// chooseInit settles Options.Init: for InitAuto it is sysvinit when the
// package is cached or apt-get can download it, busybox otherwise.
func chooseInit(ctx context.Context, o Options, logf func(string, ...any)) (string, error) {
	if o.Init == InitBusybox {
		return InitBusybox, nil
	}
	_, err := packageFile(ctx, o.CacheDir, sysvinitPackage, "sbin/init", logf)
	if err == nil {
		return InitSysvinit, nil
	}
	if o.Init == InitSysvinit {
		return "", err
	}
	logf("sandbox: falling back to busybox init (no re-exec in place): %v", err)
	return InitBusybox, nil
}

// installSysvinit installs sysvinit-core's init (with telinit and
// runlevel) into the staged tree, along with the host's shared libraries
// it links against.
func installSysvinit(ctx context.Context, o Options, stage string, logf func(string, ...any)) error {
	for _, p := range []string{"sbin/init", "sbin/runlevel"} {
		src, err := packageFile(ctx, o.CacheDir, sysvinitPackage, p, logf)
		if err != nil {
			return err
		}
		if err := installProgram(stage, src, "/"+p); err != nil {
			return fmt.Errorf("sandbox: installing sysvinit %s: %w", p, err)
		}
	}
	telinit := filepath.Join(stage, "sbin/telinit")
	if err := os.Remove(telinit); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Symlink("init", telinit)
}
