// Package caplog keeps the engine's log within a fixed share of its tmpfs:
// the journal lives beside it and must always have room, whatever a flood
// of log lines (a lifeline under attack) writes.
package caplog

import (
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Writer appends to a log file and frees all but its newest bytes by
// punching holes at the start: offsets stay valid, so a reader following
// the file (run's foreground) goes on where it was, and the file's name
// and descriptors do not change across the pivot.
type Writer struct {
	mu      sync.Mutex
	f       *os.File
	keep    int64 // bytes of the newest log kept in memory
	punched int64 // the file is a hole up to here
	since   int64 // bytes written since the last look at the size
	full    bool  // holes cannot be punched: writes stop at 2*keep
}

// New writes to f (opened O_APPEND) and keeps about keep bytes of it.
func New(f *os.File, keep int64) *Writer { return &Writer{f: f, keep: keep} }

// Share is 1/n of the filesystem at dir, at least 64 KiB.
func Share(dir string, n int64) int64 {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return 1 << 20
	}
	return max(int64(st.Blocks)*st.Bsize/n, 64<<10)
}

// Write appends p; every keep/4 bytes it punches out what lies more than
// keep bytes before the end (4 KiB aligned), so the file never holds more
// than about 1.25*keep bytes of memory.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full {
		return len(p), nil // dropped: the journal's room comes first
	}
	n, err := w.f.Write(p)
	if w.since += int64(n); w.since < w.keep/4 {
		return n, err
	}
	w.since = 0
	fi, serr := w.f.Stat()
	if serr != nil {
		return n, err
	}
	end := (fi.Size() - w.keep) &^ 4095
	if end <= w.punched {
		return n, err
	}
	if unix.Fallocate(int(w.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, w.punched, end-w.punched) == nil {
		w.punched = end
	} else if fi.Size()-w.punched > 2*w.keep {
		w.f.Write([]byte("log: cannot punch holes here; the rest of the log is dropped\n"))
		w.full = true
	}
	return n, err
}
