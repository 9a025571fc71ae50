package swap

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/journal"
)

// Default places. The engine's tmpfs sits under /run so that it travels
// with /run when the submounts are moved after the pivot.
const (
	DefaultEngineDir = "/run/rootswap"
	DefaultNewRoot   = "/mnt/newroot"
	DefaultPutOld    = "mnt/oldroot"
	// ArchiveDir keeps finished journals on the (new) root, so status
	// still answers after the engine's tmpfs is gone.
	ArchiveDir = "/var/log/rootswap"
)

// JournalPath is the live journal in the engine's tmpfs.
func JournalPath(engineDir string) string { return filepath.Join(engineDir, "journal") }

// FindJournal returns the live journal if there is one, else the newest
// archived one.
func FindJournal(engineDir string) (string, error) {
	live := JournalPath(engineDir)
	if _, err := os.Stat(live); err == nil {
		return live, nil
	}
	// Between the pivot and the move of /run, the tmpfs sits below the
	// old root; during a rollback, between the pivot back and the move
	// of /run, below the new root.
	for _, under := range []string{DefaultPutOld, DefaultNewRoot} {
		if p := filepath.Join("/", under, live); exists(p) {
			return p, nil
		}
	}
	last := filepath.Join(ArchiveDir, "last.journal")
	if _, err := os.Stat(last); err == nil {
		return last, nil
	}
	return "", errors.New("no swap journal found (looked for " + live + " and " + last + "): no swap has run on this host")
}

// Status is a journal summary plus whether its engine is still alive.
type Status struct {
	journal.Summary
	Path        string
	EngineAlive bool
	// Holders is what held the old root when release last looked (empty
	// once it is released); Finish, the commands to finish the release
	// by hand when the engine stopped waiting.
	Holders []OldRootHolder
	Finish  []string
}

// LoadStatus reads the journal at path and checks the engine's pid in
// procRoot. A journal with no end whose engine is gone is reported as
// failed in the step it was running: the engine died (SIGKILL, OOM).
func LoadStatus(procRoot, path string) (Status, error) {
	recs, err := journal.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	st := Status{Summary: journal.Summarize(recs), Path: path}
	for _, r := range recs {
		if r.Kind == journal.KindHolders {
			st.Holders, st.Finish = nil, nil
			json.Unmarshal([]byte(r.Data["holders"]), &st.Holders)
			json.Unmarshal([]byte(r.Data["finish"]), &st.Finish)
		}
	}
	st.EngineAlive = engineAlive(procRoot, st.EnginePID)
	ended := st.Phase == journal.Succeeded || st.Phase == journal.Failed || st.Phase == journal.RolledBack
	if !ended && !st.EngineAlive {
		st.Phase = journal.Failed
		if st.Err == "" {
			st.Err = "the engine (pid " + strconv.Itoa(st.EnginePID) + ") died without finishing; run `rootswap rollback` to undo its steps"
		}
	}
	return st, nil
}

func engineAlive(procRoot string, pid int) bool {
	if pid <= 0 {
		return false
	}
	comm, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "comm"))
	return err == nil && strings.HasPrefix(strings.TrimSpace(string(comm)), "rootswap")
}

// Step names that status and the windows refer to.
const (
	StepStopServices  = "stop-services"
	StepRemountRO     = "remount-ro"
	StepCopy          = "copy"
	StepPivot         = "pivot"
	StepMoveMounts    = "move-mounts"
	StepRestartSSHD   = "restart-sshd"
	StepStartServices = "start-services"
)

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// LiveProcRoot is procRoot when procfs is mounted there, else the procfs
// still below the old root (between the pivot and the move of /proc).
func LiveProcRoot(procRoot string) string {
	if exists(filepath.Join(procRoot, "self/stat")) {
		return procRoot
	}
	if p := filepath.Join("/", DefaultPutOld, "proc"); exists(filepath.Join(p, "self/stat")) {
		return p
	}
	return procRoot
}

// CurrentStatus finds the journal (path, or the live or archived one when
// empty) and loads its status, with procfs wherever it is right now. It is
// what status, confirm and rollback all start with.
func CurrentStatus(procRoot, path string) (Status, error) {
	if path == "" {
		var err error
		if path, err = FindJournal(DefaultEngineDir); err != nil {
			return Status{}, err
		}
	}
	return LoadStatus(LiveProcRoot(procRoot), path)
}
