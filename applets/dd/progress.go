package dd

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"
)

// progress draws "copy 1.2 GB of 4.0 GB (30%), 210 MB/s, 13 seconds left"
// on stderr: redrawn in place once a second on a terminal, a new line
// every 5 seconds otherwise (a log, a journal, a pipe to the SSH client).
type progress struct {
	w        io.Writer
	tty      bool
	now      func() time.Time
	start    time.Time
	last     time.Time
	phase    string
	phaseAt  time.Time
	drawn    int // length of the line on screen, tty only
	mu       sync.Mutex
	interval time.Duration
}

func newProgress(w io.Writer, now func() time.Time) *progress {
	p := &progress{w: w, now: now, interval: 5 * time.Second}
	if f, ok := w.(*os.File); ok {
		if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
			p.tty, p.interval = true, time.Second
		}
	}
	p.start = now()
	p.last = p.start
	return p
}

// update is called often; it draws at most once per interval.
func (p *progress) update(phase string, done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.now()
	if phase != p.phase {
		p.phase, p.phaseAt = phase, t
	}
	if t.Sub(p.last) < p.interval {
		return
	}
	p.last = t
	p.draw(line(phase, done, total, t.Sub(p.phaseAt), t))
}

func line(phase string, done, total int64, elapsed time.Duration, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", phase, humanize.Bytes(uint64(done)))
	if total > 0 {
		fmt.Fprintf(&b, " of %s (%d%%)", humanize.Bytes(uint64(total)), done*100/total)
	}
	if s := elapsed.Seconds(); s > 0 {
		rate := float64(done) / s
		fmt.Fprintf(&b, ", %s/s", humanize.Bytes(uint64(rate)))
		if total > 0 && rate > 0 && done < total {
			eta := time.Duration(float64(total-done) / rate * float64(time.Second))
			fmt.Fprintf(&b, ", %s", humanize.RelTime(now, now.Add(eta), "left", "left"))
		}
	}
	return b.String()
}

func (p *progress) draw(s string) {
	if !p.tty {
		fmt.Fprintln(p.w, s)
		return
	}
	pad := ""
	if n := p.drawn - len(s); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprintf(p.w, "\r%s%s", s, pad)
	p.drawn = len(s)
}

// end finishes the line drawn in place so that what follows starts on a
// line of its own, as GNU dd does before its summary.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn > 0 {
		fmt.Fprintln(p.w)
		p.drawn = 0
	}
}
