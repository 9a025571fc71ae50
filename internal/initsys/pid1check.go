package initsys

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitPaths are where the init binaries of a root live; PID 1 re-executes
// from one of them: sysvinit execs /sbin/init, systemd its compiled-in
// /usr/lib/systemd/systemd (/lib/systemd/systemd before merged /usr),
// openrc-init itself by name through PATH.
var InitPaths = []string{
	"/sbin/init",
	"/usr/lib/systemd/systemd",
	"/lib/systemd/systemd",
	"/sbin/openrc-init",
	"/usr/sbin/openrc-init",
}

// FileID is a file's identity: device and inode.
type FileID struct {
	Dev uint64
	Ino uint64
}

func (f FileID) String() string {
	return fmt.Sprintf("dev %d:%d ino %d", unix.Major(f.Dev), unix.Minor(f.Dev), f.Ino)
}

func fileID(p string) (FileID, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return FileID{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return FileID{}, &os.PathError{Op: "stat", Path: p, Err: fmt.Errorf("no device/inode")}
	}
	return FileID{Dev: uint64(st.Dev), Ino: st.Ino}, nil
}

// PID1State says whether PID 1 runs the init binary of our root.
type PID1State struct {
	ExeText string // link text of /proc/1/exe: where our root sees PID 1's binary
	Exe     FileID // identity of PID 1's binary (stat through /proc/1/exe)
	Current bool   // Exe is one of the init binaries of our root
	Path    string // the init path of our root that matched
	// Checked lists the init paths of our root and their identities, for
	// the message when nothing matched.
	Checked []string
}

// CheckPID1 tells whether PID 1 runs from the current root, by identity:
// stat("/proc/1/exe") follows the magic link to PID 1's binary (allowed:
// it is a local file, init's own binary) and its dev+ino is compared with
// stat of the init paths in our root (root prefixed: "/" live), plus PID
// 1's argv[0] when absolute. The link text cannot decide this: after
// pivot_root it reads "/mnt/oldroot/usr/lib/systemd/systemd", a path that
// resolves fine in our root to the old binary, and it gains " (deleted)"
// when the binary was replaced. Before the re-exec PID 1's binary is the
// old root's inode and matches none of ours; after, it is one of them.
//
// If PID 1 already ran our root's binary before a re-exec request, this
// cannot tell whether the re-exec happened (same PID, same file).
func CheckPID1(procRoot, root string) (PID1State, error) {
	c := Config{ProcRoot: procRoot, Root: root}
	var st PID1State
	st.ExeText, _ = os.Readlink(c.proc("1", "exe"))
	id, err := fileID(c.proc("1", "exe"))
	if err != nil {
		return st, fmt.Errorf("identifying PID 1's binary: %w", err)
	}
	st.Exe = id
	paths := InitPaths
	if p, err := ReadPID1(procRoot); err == nil && filepath.IsAbs(p.Argv0()) {
		paths = append([]string{filepath.Clean(p.Argv0())}, InitPaths...)
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		cand, err := fileID(c.path(p))
		if err != nil {
			continue
		}
		if cand == id {
			st.Current, st.Path = true, p
			return st, nil
		}
		st.Checked = append(st.Checked, p+" ("+cand.String()+")")
	}
	return st, nil
}

// Summary is one line for messages: what PID 1 runs and whether it is ours.
func (s PID1State) Summary() string {
	if s.Current {
		return fmt.Sprintf("PID 1 runs %s of this root (%s)", s.Path, s.Exe)
	}
	checked := "no init binary found in this root"
	if len(s.Checked) > 0 {
		checked = "this root has " + strings.Join(s.Checked, ", ")
	}
	text := s.ExeText
	if text == "" {
		text = "an unreadable path"
	}
	return fmt.Sprintf("PID 1 runs %s (%s), not an init binary of this root: %s", text, s.Exe, checked)
}
