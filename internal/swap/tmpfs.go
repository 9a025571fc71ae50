package swap

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// EngineBinary is the name of rootswap's copy inside the engine tmpfs.
const EngineBinary = "rootswap"

// PrepareEngineDir mounts a fresh tmpfs at dir and copies the running
// binary into it, so that the process driving the swap depends on neither
// root: its executable, cwd and journal all live in this tmpfs, which
// travels with /run when the submounts are moved. It returns the path of
// the copy. An existing mount at dir is refused: another swap may be
// running.
func PrepareEngineDir(dir, self string, size int64) (string, error) {
	if _, err := os.Stat(JournalPath(dir)); err == nil {
		return "", fmt.Errorf("%s exists: a swap is running or left its journal (rootswap status; remove it with umount %s after checking)", JournalPath(dir), dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	opts := fmt.Sprintf("size=%d,mode=0700", size)
	// No noexec: the engine runs from here. nosuid/nodev: it needs neither.
	if err := unix.Mount("rootswap", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return "", &os.PathError{Op: "mount tmpfs (MS_NOSUID|MS_NODEV, " + opts + ")", Path: dir, Err: err}
	}
	dst := filepath.Join(dir, EngineBinary)
	if err := copyFile(self, dst, 0o700); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		return "", fmt.Errorf("copy %s to %s: %w", self, dst, err)
	}
	return dst, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// SelfExecutable is the file to copy: /proc/self/exe opened directly works
// even when the binary was deleted or replaced since it started.
func SelfExecutable(procRoot string) string { return filepath.Join(procRoot, "self", "exe") }
