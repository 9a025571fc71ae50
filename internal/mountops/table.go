package mountops

import (
	"errors"
	"io/fs"
	"path/filepath"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// ReadTable reads the calling thread's mount table (procRoot/thread-self:
// /proc/self would be the thread group leader's, which may sit in another
// mount namespace). Between pivot_root and the move of the submounts,
// proc is not at /proc but below the other root: when procRoot has no
// mountinfo, each of the roots given is tried as a prefix
// (/mnt/oldroot/proc). It returns the proc root it read from.
func ReadTable(procRoot string, roots ...string) (mountinfo.Table, string, error) {
	t, err := mountinfo.Read(procRoot, "thread-self")
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return t, procRoot, err
	}
	for _, r := range roots {
		alt := filepath.Join(r, procRoot)
		if t, err2 := mountinfo.Read(alt, "thread-self"); err2 == nil {
			return t, alt, nil
		}
	}
	return nil, procRoot, err
}
