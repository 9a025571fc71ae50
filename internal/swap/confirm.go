package swap

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rootswap/rootswap/internal/journal"
)

// ConfirmState reads the journal for the admin's answer to the confirm
// wait: a confirm record (true), a rollback request (an error), or
// nothing yet.
func ConfirmState(path string) (bool, error) {
	recs, err := journal.ReadFile(path)
	if err != nil {
		return false, nil // unreadable for a moment: ask again
	}
	waiting := false
	for _, r := range recs {
		switch r.Kind {
		case journal.KindWait:
			waiting = true
		case journal.KindConfirm:
			if waiting {
				return true, nil
			}
		case journal.KindRollback:
			if waiting {
				return false, fmt.Errorf("%w by the admin", ErrRollbackRequested)
			}
		}
	}
	return false, nil
}

// CheckNewLogin refuses a confirmation that proves nothing: one from the
// session that started the swap (its shell and sshd still run from the old
// root) or from the engine itself (the lifeline's shell runs in-process).
// The session's pids are in the engine directory's config.json.
func CheckNewLogin(procRoot, engineDir string, enginePID int) error {
	mine := Ancestors(procRoot, os.Getpid())
	if mine[enginePID] {
		return errors.New("confirm from the lifeline proves nothing about sshd: log in through the host's sshd (a new session) and confirm there, or roll back")
	}
	b, err := os.ReadFile(filepath.Join(engineDir, "config.json"))
	if err != nil {
		return nil // an archived journal: no session to compare with
	}
	var cfg struct {
		Session []int `json:"session"`
	}
	if json.Unmarshal(b, &cfg) != nil {
		return nil
	}
	for _, pid := range cfg.Session {
		if mine[pid] {
			return fmt.Errorf("this shell is the session that started the swap (pid %d): its login proves nothing; open a NEW ssh login and confirm there", pid)
		}
	}
	return nil
}
