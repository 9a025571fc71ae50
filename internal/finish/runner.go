package finish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/fstools"
	"golang.org/x/sys/unix"
)

// Runner runs one of the distribution's tools (update-initramfs,
// update-grub, grub-install, wipefs) to completion. Tests replace it with
// one that records argv.
type Runner func(ctx context.Context, argv []string) error

// defaultPath is used when PATH is empty: the tools live in sbin, which
// an SSH command's environment may lack.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func searchPath(env *cli.Env) string {
	getenv := env.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	p := getenv("PATH")
	if p == "" {
		return defaultPath
	}
	// sbin may be missing from a user's PATH; the tools are there.
	return p + ":" + defaultPath
}

func lookPath(env *cli.Env, tool string) (string, bool) {
	for _, dir := range filepath.SplitList(searchPath(env)) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, tool)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// ExecRunner runs the tools on the live system with their output passed
// straight through to the applet's streams.
func ExecRunner(env *cli.Env) Runner {
	return func(ctx context.Context, argv []string) error {
		path, ok := lookPath(env, argv[0])
		if !ok {
			return errors.New(argv[0] + " not found in PATH (" + searchPath(env) + ")")
		}
		cmd := exec.CommandContext(ctx, path, argv[1:]...)
		cmd.Stdout, cmd.Stderr = env.Stdout, env.Stderr
		cmd.Env = append(os.Environ(), "PATH="+searchPath(env))
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		return nil
	}
}

// Devices is how finish looks at block devices; tier-1 tests replace it
// with maps.
type Devices struct {
	// Rdev is the device number of the block device node at path.
	Rdev func(path string) (uint64, error)
	// Detect says what the device at path holds.
	Detect func(path string) (fstools.FS, error)
	// InUse reports whether the kernel holds the device (O_EXCL refused).
	InUse func(path string) (bool, error)
	// Size is the device's size in bytes.
	Size func(path string) (int64, error)
	// HasTool reports whether a tool is in PATH on the live system.
	HasTool func(tool string) bool
	// Relabel labels the old root oldroot with a new random UUID.
	Relabel fstools.RelabelFunc
}

// LiveDevices are the real block devices.
func LiveDevices(env *cli.Env) Devices {
	return Devices{
		Rdev: func(path string) (uint64, error) {
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil {
				return 0, &os.PathError{Op: "stat", Path: path, Err: err}
			}
			if st.Mode&unix.S_IFMT != unix.S_IFBLK {
				return 0, errors.New(path + ": not a block device")
			}
			return st.Rdev, nil
		},
		Detect: fstools.DetectPath,
		InUse:  blockdev.InUse,
		Size:   blockdev.FileSize,
		HasTool: func(tool string) bool {
			_, ok := lookPath(env, tool)
			return ok
		},
		Relabel: fstools.RelabelOldRoot,
	}
}
