package swap

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"time"

	"github.com/rootswap/rootswap/internal/journal"
)

// Follow copies the engine's log to w and watches the journal until the
// pivot is done and sshd is back (the admin's session may go: new logins
// work) or the run ends. Both files are read through descriptors opened
// before the pivot, because their paths change meaning during it.
// It returns the summary it stopped at.
func Follow(ctx context.Context, logf, jf *os.File, procRoot string, w io.Writer) journal.Summary {
	logR := bufio.NewReader(logf)
	var recs []journal.Record
	jr := bufio.NewReader(jf)
	var partial []byte
	for {
		for {
			line, err := logR.ReadString('\n')
			if len(line) > 0 {
				io.WriteString(w, line)
			}
			if err != nil {
				break
			}
		}
		for {
			b, err := jr.ReadBytes('\n')
			if err != nil {
				partial = append(partial, b...)
				break
			}
			b = append(partial, b...)
			partial = nil
			if rs, err := journal.Read(bytes.NewReader(b)); err == nil {
				recs = append(recs, rs...)
			}
		}
		s := journal.Summarize(recs)
		switch {
		case s.Phase == journal.Succeeded || s.Phase == journal.Failed || s.Phase == journal.RolledBack:
			return s
		case s.Phase == journal.WaitingConfirm:
			return s
		case stepDone(s, StepRestartSSHD):
			return s
		case s.EnginePID > 0 && !engineAlive(procRoot, s.EnginePID, s.Data) && procOK(procRoot):
			s.Phase, s.Err = journal.Failed, "the engine died"
			return s
		}
		select {
		case <-ctx.Done():
			return s
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func stepDone(s journal.Summary, name string) bool {
	for _, st := range s.Steps {
		if st.Name == name && st.Done {
			return true
		}
	}
	return false
}

// procOK: between the pivot and the move of /proc, /proc is an empty
// directory and every engine looks dead.
func procOK(procRoot string) bool {
	_, err := os.Stat(procRoot + "/self/stat")
	return err == nil
}
