package swap

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rootswap/rootswap/internal/journal"
	"golang.org/x/sys/unix"
)

// openArchiveDir opens dir without following a symbolic link and checks
// what it opened: a directory of root's that nobody else can write. On
// Ubuntu /var/log is writable by the syslog group: whoever is in it could
// otherwise put a link at /var/log/rootswap and have root write through it.
func openArchiveDir(dir string) (*os.File, error) {
	d, err := journal.OpenChecked(dir, os.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return d.File, nil
}

func checkArchiveDir(dir string) error {
	d, err := openArchiveDir(dir)
	if err == nil {
		d.Close()
	}
	return err
}

// ArchiveJournal keeps the journal at path in dir, ArchiveDir (as
// STAMP.journal and last.journal, on whichever root is / now), so status
// answers after the engine's tmpfs is gone. Each file is written under a
// temporary name and renamed into place: a link planted at last.journal
// is replaced, never followed.
func ArchiveJournal(dir, path string, now time.Time) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	d, err := openArchiveDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	dfd := int(d.Fd())
	stamp := now.UTC().Format("20060102T150405Z")
	for _, name := range []string{stamp + ".journal", "last.journal"} {
		if err := writeAt(dfd, name, b); err != nil {
			return fmt.Errorf("archive %s: %w", filepath.Join(dir, name), err)
		}
	}
	return nil
}

func writeAt(dfd int, name string, b []byte) error {
	tmp := "." + name + ".tmp"
	unix.Unlinkat(dfd, tmp, 0)
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp, 0)
	}
	return err
}
