package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Debian packages the sandbox takes programs from (sysvinit's init, a
// static busybox) are fetched with apt-get download into the cache
// directory and unpacked there once:
//
//	CacheDir/PKG_VERSION_ARCH.deb   as apt-get download names it
//	CacheDir/PKG_VERSION_ARCH/      its tree, from dpkg-deb -x
//
// Both appear by rename from a temporary directory next to them, so a
// concurrent Build (go test runs packages in parallel) never sees half a
// file.

// fetchTimeout bounds apt-get download: without a network apt can hang in
// connect; a minute is plenty for the 1 MB these packages are.
const fetchTimeout = time.Minute

// unpackTimeout bounds dpkg-deb -x.
const unpackTimeout = time.Minute

// packageFile returns the host path of file (relative to the package's
// root, like "bin/busybox") of Debian package pkg, unpacked under
// cacheDir; the .deb is downloaded with apt-get first when cacheDir has
// none. It is the one way the sandbox gets a program from a package.
func packageFile(ctx context.Context, cacheDir, pkg, file string, logf func(string, ...any)) (string, error) {
	deb := cachedDeb(cacheDir, pkg)
	if deb == "" {
		var err error
		if deb, err = downloadDeb(ctx, cacheDir, pkg, logf); err != nil {
			return "", err
		}
	}
	tree := strings.TrimSuffix(deb, ".deb")
	if _, err := os.Stat(tree); errors.Is(err, fs.ErrNotExist) {
		if err := unpackDeb(ctx, deb, tree); err != nil {
			return "", err
		}
	} else if err != nil {
		return "", fmt.Errorf("sandbox: unpacked %s: %w", pkg, err)
	}
	p := filepath.Join(tree, file)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("sandbox: %s has no %s: %w", deb, file, err)
	}
	return p, nil
}

// cachedDeb is the newest .deb of pkg in cacheDir, or "".
func cachedDeb(cacheDir, pkg string) string {
	debs, _ := filepath.Glob(filepath.Join(cacheDir, pkg+"_*.deb"))
	if len(debs) == 0 {
		return ""
	}
	sort.Strings(debs)
	return debs[len(debs)-1]
}

// unpacked says whether deb's tree is in the cache already.
func unpacked(deb string) bool {
	fi, err := os.Stat(strings.TrimSuffix(deb, ".deb"))
	return err == nil && fi.IsDir()
}

// downloadDeb runs apt-get download pkg in a temporary directory under
// cacheDir and moves the .deb into cacheDir.
func downloadDeb(ctx context.Context, cacheDir, pkg string, logf func(string, ...any)) (string, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("sandbox: cache directory for %s: %w", pkg, err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".download-")
	if err != nil {
		return "", fmt.Errorf("sandbox: cache directory for %s: %w", pkg, err)
	}
	defer os.RemoveAll(tmp)
	logf("sandbox: apt-get download %s into %s", pkg, cacheDir)
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", pkg)
	cmd.Dir = tmp
	// apt-get's http method is a child of its own that holds the output
	// pipe: the timeout kills the whole group, and Wait does not wait for
	// the pipe longer than WaitDelay.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %s", ctx.Err(), fetchTimeout)
		}
		hint := ""
		if bytes.Contains(out, []byte("Unable to locate package")) {
			hint = " (apt knows no such package: run apt-get update first)"
		}
		return "", fmt.Errorf("sandbox: apt-get download %s into %s: %w%s: %s", pkg, cacheDir, err, hint, aptErrors(out))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("sandbox: apt-get download %s left no %s_*.deb in %s: %s", pkg, pkg, tmp, strings.TrimSpace(string(out)))
	}
	deb := filepath.Join(cacheDir, filepath.Base(debs[0]))
	if err := os.Rename(debs[0], deb); err != nil {
		return "", fmt.Errorf("sandbox: caching %s: %w", deb, err)
	}
	return deb, nil
}

// aptErrors picks apt's "E:" lines from its output, the reason it
// failed, without the progress and warnings around them; all of it when
// there are none.
func aptErrors(out []byte) string {
	var errs []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "E: ") {
			errs = append(errs, strings.TrimSpace(line))
		}
	}
	if len(errs) == 0 {
		return strings.TrimSpace(string(out))
	}
	return strings.Join(errs, "; ")
}

// unpackDeb extracts deb into the directory tree, which must not exist.
func unpackDeb(ctx context.Context, deb, tree string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(tree), ".unpack-")
	if err != nil {
		return fmt.Errorf("sandbox: unpacking %s: %w", deb, err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, unpackTimeout)
	defer cancel()
	if _, err := run(ctx, "dpkg-deb", "-x", deb, tmp); err != nil {
		// busybox can unpack a .deb too, for hosts without dpkg.
		if _, err2 := run(ctx, "busybox", "dpkg-deb", "-x", deb, tmp); err2 != nil {
			return fmt.Errorf("sandbox: unpacking %s (remove it to download it again): %w", deb, err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, tree); err != nil {
		if unpacked(deb) {
			return nil // a concurrent Build was first
		}
		return fmt.Errorf("sandbox: unpacking %s: %w", deb, err)
	}
	return nil
}
