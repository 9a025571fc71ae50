package swap

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ProtectEngine keeps the engine alive and in memory while the machine is
// half-swapped: the OOM killer never picks it (oom_score_adj -1000), and
// its pages are locked (mlockall MCL_CURRENT|MCL_FUTURE; with MCL_ONFAULT,
// so that Go's 64 MiB heap arenas are locked as they are used, not
// populated whole). Best effort: it returns what failed, for a note.
func ProtectEngine(procRoot string) []string {
	var notes []string
	if err := os.WriteFile(filepath.Join(procRoot, "self/oom_score_adj"), []byte("-1000"), 0); err != nil {
		notes = append(notes, "oom_score_adj -1000 not set: "+err.Error())
	}
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		notes = append(notes, "memory not locked (mlockall): "+err.Error())
	}
	return notes
}
