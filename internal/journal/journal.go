// Package journal is the swap's memory: an append-only file of JSON
// records, one a line, fsync'd after each, kept in the engine's tmpfs and
// mirrored to /dev/kmsg. status, rollback and the foreground follower
// rebuild everything they show from it, so a dropped SSH session or a
// killed engine loses nothing.
package journal

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Kinds of record.
const (
	KindStart    = "start"     // the run began; Data holds the options
	KindBegin    = "begin"     // a step started
	KindEnd      = "end"       // a step succeeded
	KindFail     = "fail"      // a step failed; Err says why
	KindUndo     = "undo"      // rollback started undoing a step
	KindUndone   = "undone"    // a step's undo succeeded
	KindUndoFail = "undo-fail" // a step's undo failed
	KindNote     = "note"      // something worth telling the admin
	KindWait     = "wait"      // waiting for confirmation until Data["deadline"]
	KindConfirm  = "confirm"   // the admin confirmed
	KindRollback = "rollback"  // rollback asked for (by a failure, a timeout or the admin)
	KindDone     = "done"      // the run ended; Result is succeeded, failed or rolled-back
	KindHolders  = "holders"   // what still holds the old root and what the engine does about it: Data["holders"], Data["finish"] (JSON)
)

// Record is one line of the journal.
type Record struct {
	Time     time.Time         `json:"time"`
	Kind     string            `json:"kind"`
	Step     string            `json:"step,omitempty"`
	Describe string            `json:"describe,omitempty"`
	Err      string            `json:"err,omitempty"`
	Result   string            `json:"result,omitempty"`
	PID      int               `json:"pid,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
}

// Journal appends records to an open file. It keeps the file descriptor
// (never the path) because the path changes meaning across pivot_root.
type Journal struct {
	mu   sync.Mutex
	f    *os.File
	kmsg io.Writer // nil: no mirror
	now  func() time.Time
}

// Create makes a new journal file at path (0600, must not exist).
func Create(path string, now func() time.Time) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &Journal{f: f, now: now}, nil
}

// OpenAppend reopens an existing journal for more records (rollback from
// a new session appends to the journal the dead engine left).
func OpenAppend(path string, now func() time.Time) (*Journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, err
	}
	return &Journal{f: f, now: now}, nil
}

// MirrorTo sends a one-line copy of every record to w (the kernel log), so
// that the story survives even when the tmpfs does not.
func (j *Journal) MirrorTo(w io.Writer) { j.kmsg = w }

// Add appends r, stamping its time, and syncs it to the file.
func (j *Journal) Add(r Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if r.Time.IsZero() {
		r.Time = j.now()
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := j.f.Write(b); err != nil {
		return fmt.Errorf("journal %s: %w", j.f.Name(), err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal %s: fsync: %w", j.f.Name(), err)
	}
	if j.kmsg != nil {
		// Best effort: the kernel log is a mirror, not the record.
		fmt.Fprintf(j.kmsg, "rootswap: %s\n", r.Line())
	}
	return nil
}

// Close closes the file.
func (j *Journal) Close() error { return j.f.Close() }

// File is the open journal file (the engine passes it to children).
func (j *Journal) File() *os.File { return j.f }

// Line is the record as one human line.
func (r Record) Line() string {
	var b strings.Builder
	b.WriteString(r.Kind)
	if r.Step != "" {
		b.WriteString(" " + r.Step)
	}
	if r.Describe != "" {
		b.WriteString(": " + r.Describe)
	}
	if r.Result != "" {
		b.WriteString(" " + r.Result)
	}
	if r.Err != "" {
		b.WriteString(": " + r.Err)
	}
	return b.String()
}

// ErrCorrupt reports a line that is not a record.
var ErrCorrupt = errors.New("journal: corrupt record")

// Read parses a journal. A torn last line (the engine died mid-write) is
// dropped; a bad line elsewhere is an error.
func Read(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	var bad error
	for n := 1; sc.Scan(); n++ {
		if bad != nil {
			return out, bad
		}
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			bad = fmt.Errorf("%w: line %d: %v", ErrCorrupt, n, err)
			continue
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}

// ReadFile reads the journal at path.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}
