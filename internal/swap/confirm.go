package swap

import (
	"fmt"

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
