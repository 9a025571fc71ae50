package dd

import (
	"strings"
	"sync"
	"time"

	"github.com/rootswap/rootswap/internal/ddargs"
)

// tally is what a copy has done so far: record counts and bytes, and
// the clock they are measured against. The copy, SIGUSR1, SIGINT and
// status=progress all read it, under mu.
type tally struct {
	mu  sync.Mutex
	n   ddargs.Counts
	run int64 // bytes the engine has written in the run now under way
	// start is when copying began; next is when the next progress line
	// is due (one a second, on the second).
	start, next time.Time
	status      string
	err         *stderr
	now         func() time.Time
}

func newTally(r *runner) *tally {
	t := &tally{status: r.cfg.Status, err: r.err, now: r.now}
	t.start = t.now()
	t.next = t.start.Add(time.Second)
	return t
}

// summary prints the records lines and, unless status=noxfer, the
// transfer line; nothing with status=none. The caller holds mu.
func (t *tally) summary() {
	if t.status == "none" {
		return
	}
	t.err.endLine()
	t.err.write(t.n.Records())
	if t.status == "noxfer" {
		return
	}
	t.err.write(ddargs.Transfer(t.n.Bytes+t.run, t.now().Sub(t.start), false) + "\n")
}

// print is summary under the lock: SIGUSR1.
func (t *tally) print() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.summary()
}

// tick draws the status=progress line when it is due: "\r" and the
// transfer line in whole seconds, padded over the previous one. The
// caller holds mu.
func (t *tally) tick() {
	if t.status != "progress" {
		return
	}
	now := t.now()
	if now.Before(t.next) {
		return
	}
	for !now.Before(t.next) {
		t.next = t.next.Add(time.Second)
	}
	line := ddargs.Transfer(t.n.Bytes+t.run, now.Sub(t.start), true)
	pad := ""
	if d := t.err.progressLen - len(line); d > 0 {
		pad = strings.Repeat(" ", d)
	}
	t.err.write("\r" + line + pad)
	t.err.progressLen = len(line)
}

// add counts a block read (in) or written (out) of n bytes against a
// record of size bs: full or partial.
func countRecord(full, partial *int64, n, bs int64) {
	if n == bs {
		*full++
	} else if n > 0 {
		*partial++
	}
}
