package sandbox

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/rootswap/rootswap/internal/elfdeps"
)

// libDirs are searched, in order, for the DT_NEEDED libraries of the
// programs copied into the server (Debian's multiarch layout first).
func libDirs() []string {
	return []string{
		"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
		"/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
		"/lib64", "/usr/lib64", "/lib", "/usr/lib",
	}
}

// elfDeps returns the program interpreter (empty for a static binary) and
// the host paths of every shared library prog needs, transitively, each
// once. Libraries are looked up by soname in libDirs, as ld.so would
// without an ld.so.cache; a missing one is an error.
func elfDeps(prog string, dirs []string) (interp string, libs []string, err error) {
	info, err := elfdeps.Read(prog)
	if err != nil {
		return "", nil, err
	}
	seen := map[string]bool{}
	var walk func(file string, needed []string) error
	walk = func(file string, needed []string) error {
		for _, soname := range needed {
			if seen[soname] {
				continue
			}
			seen[soname] = true
			path, err := findLib(soname, dirs)
			if err != nil {
				return fmt.Errorf("%s needs %s: %w", file, soname, err)
			}
			libs = append(libs, path)
			lib, err := elfdeps.Read(path)
			if err != nil {
				return err
			}
			if err := walk(path, lib.Needed); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(prog, info.Needed); err != nil {
		return "", nil, err
	}
	return info.Interp, libs, nil
}

func findLib(soname string, dirs []string) (string, error) {
	for _, d := range dirs {
		p := filepath.Join(d, soname)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %v", dirs)
}

// installProgram copies the host program src to root/dst along with its
// interpreter and shared libraries (each at its host path; symlinks are
// resolved so the tree holds plain files).
func installProgram(root, src, dst string) error {
	interp, libs, err := elfDeps(src, libDirs())
	if err != nil {
		return err
	}
	if err := copyFile(src, filepath.Join(root, dst), 0o755); err != nil {
		return err
	}
	if interp != "" {
		libs = append(libs, interp)
	}
	for _, lib := range libs {
		if err := copyFile(lib, filepath.Join(root, lib), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src's content (following symlinks) to dst, replacing
// whatever dst was (a busybox applet link, typically).
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
