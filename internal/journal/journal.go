// Package journal is the swap's memory: an append-only file of JSON
// records, one a line, fsync'd after each, kept in the engine's tmpfs and
// mirrored to /dev/kmsg. status, rollback and the foreground follower
// rebuild everything they show from it, so a dropped SSH session or a
// killed engine loses nothing.
package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
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
	KindIntent   = "intent"    // a mount, move, unmount, remount or pivot_root about to be made: Data["op"], ["source"], ["target"], ["state"]
	KindOutcome  = "outcome"   // how that operation ended: Err empty when done
	KindProgress = "progress"  // where a copy stands: Describe is swap.CopyProgress as JSON; not mirrored to the kernel log
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
	err  error // the first failed write since TakeErr
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
// a new session appends to the journal the dead engine left). A torn last
// line (the engine died in the middle of a write) is cut off first:
// appended after the fragment, the next record would make a corrupt line
// in the middle, and every later read would fail on it.
func OpenAppend(path string, now func() time.Time) (*Journal, error) {
	f, err := open(path, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return nil, err
	}
	if err := repairTail(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: repairing its torn last line: %w", path, err)
	}
	return &Journal{f: f, now: now}, nil
}

// open opens a journal, refused unless OpenChecked accepts it as a
// regular file. Records are what rollback acts on: a journal someone else
// could write would be a way to make root run things.
func open(path string, flag int) (*os.File, error) {
	f, err := OpenChecked(path, flag)
	if err == nil && !f.mode.IsRegular() {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w: not a regular file (%v)", path, ErrUnsafe, f.mode.Type())
	}
	if err != nil {
		return nil, err
	}
	return f.File, nil
}

// Checked is a file OpenChecked opened, with its mode.
type Checked struct {
	*os.File
	mode os.FileMode
}

// OpenChecked opens path without following a symbolic link and without
// blocking (a FIFO would hang the reader), then checks what it opened: it
// must be root's (or the caller's) and writable by nobody else. The
// journal and its archive directory are opened so.
func OpenChecked(path string, flag int) (Checked, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return Checked{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return Checked{}, err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case st == nil:
	case st.Uid != 0 && int(st.Uid) != os.Geteuid():
		err = fmt.Errorf("%w: owned by uid %d, not root", ErrUnsafe, st.Uid)
	case fi.Mode()&0o022 != 0:
		err = fmt.Errorf("%w: writable by group or others (mode %v)", ErrUnsafe, fi.Mode())
	}
	if err != nil {
		f.Close()
		return Checked{}, fmt.Errorf("%s: %w", path, err)
	}
	return Checked{f, fi.Mode()}, nil
}

// ErrUnsafe refuses a journal that is not a regular file of root's
// writable by root alone.
var ErrUnsafe = errors.New("refused")

// repairTail makes the file end with a whole record: a last line without
// its newline is completed when it is a whole record, else cut off.
func repairTail(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	// Records are small; a tail longer than the read limit is corrupt
	// anyway and cut back to the last newline found.
	n := min(fi.Size(), 4<<20)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, fi.Size()-n); err != nil {
		return err
	}
	if buf[n-1] == '\n' {
		return nil
	}
	nl := int64(bytes.LastIndexByte(buf, '\n')) + 1 // 0: no newline in the tail
	var rec Record
	if json.Unmarshal(buf[nl:], &rec) == nil {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return err
		}
	} else if err := f.Truncate(fi.Size() - n + nl); err != nil {
		return err
	}
	return f.Sync()
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
		return j.failed(fmt.Errorf("journal %s: %w", j.f.Name(), err))
	}
	if err := j.f.Sync(); err != nil {
		return j.failed(fmt.Errorf("journal %s: fsync: %w", j.f.Name(), err))
	}
	if j.kmsg != nil && r.Kind != KindProgress {
		// Best effort: the kernel log is a mirror, not the record.
		fmt.Fprintf(j.kmsg, "rootswap: %s\n", r.Line())
	}
	return nil
}

func (j *Journal) failed(err error) error {
	if j.err == nil {
		j.err = err
	}
	return err
}

// TakeErr returns the first write that failed since the last call, and
// forgets it. The engine asks after each step: a step whose records could
// not be written has failed, whatever it did (ENOSPC in the tmpfs).
func (j *Journal) TakeErr() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.err
	j.err = nil
	return err
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

// ReadFile reads the journal at path, refused unless it is a regular file
// of root's that nobody else can write (see open).
func ReadFile(path string) ([]Record, error) {
	f, err := open(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f)
}
