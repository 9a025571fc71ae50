package swap

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/filecopy"
	"github.com/rootswap/rootswap/internal/journal"
	"golang.org/x/sys/unix"
)

// CopyProgress is where a file-mode copy pass stands: journaled every
// 2 s (the record's step is its step), shown by status while it runs.
type CopyProgress struct {
	Round int `json:"round"` // 1 live, 2 the frozen delta
	// Bytes and Files copied, Entries looked at; the totals are what /
	// holds (statfs: used blocks and inodes), for the ETA.
	Bytes        int64   `json:"bytes"`
	Files        int64   `json:"files"`
	Entries      int64   `json:"entries"`
	TotalBytes   int64   `json:"total_bytes"`
	TotalEntries int64   `json:"total_entries"`
	Rate         float64 `json:"rate"`        // bytes copied a second
	ETA          float64 `json:"eta_seconds"` // -1: unknown
	// Phase is a block copy's: "copy" or "verify" (its read-back);
	// empty for a file copy.
	Phase string    `json:"phase,omitempty"`
	_     [0]func() // not comparable: no equality function
}

func (p *CopyProgress) String() string {
	if p.Phase != "" {
		pct := 0.0
		if p.TotalBytes > 0 {
			pct = 100 * float64(p.Bytes) / float64(p.TotalBytes)
		}
		return fmt.Sprintf("round %d: %s %s of %s (%.0f%%), %s/s, ETA %.0fs", p.Round, p.Phase,
			humanize.IBytes(uint64(p.Bytes)), humanize.IBytes(uint64(p.TotalBytes)), pct, humanize.IBytes(uint64(p.Rate)), p.ETA)
	}
	return fmt.Sprintf("round %d: %s of ~%s, %d files, %d of ~%d entries, %s/s, ETA %.0fs", p.Round,
		humanize.IBytes(uint64(p.Bytes)), humanize.IBytes(uint64(p.TotalBytes)), p.Files, p.Entries, p.TotalEntries,
		humanize.IBytes(uint64(p.Rate)), p.ETA)
}

// copyProgress reports a file copy pass (round n, of the tree at root)
// every 2 s to the log and the journal. The ETA of the first pass goes
// by the mean of the shares of bytes and of entries done (in the e2e
// guest, with 62 s left, the further share alone said 32 s, the mean
// 80 s; near the end 8 s and 15 s for 11 s); the delta's by the
// entries: it mostly looks.
func copyProgress(rt *Runtime, step string, n int, root string) func(filecopy.Stats) {
	var fs unix.Statfs_t
	unix.Statfs(root, &fs)
	start := rt.Now()
	last := start
	p := &CopyProgress{Round: n, TotalBytes: int64(fs.Blocks-fs.Bfree) * fs.Bsize, TotalEntries: int64(fs.Files - fs.Ffree)}
	return func(c filecopy.Stats) {
		now := rt.Now()
		if now.Sub(last) < 2*time.Second {
			return
		}
		last = now
		el := now.Sub(start).Seconds()
		p.Bytes, p.Files, p.Entries = c.Bytes, c.Files, c.Seen
		p.Rate, p.ETA = float64(c.Bytes)/el, -1
		f := float64(c.Seen) / float64(max(p.TotalEntries, 1))
		if n == 1 {
			f = (f + float64(c.Bytes)/float64(max(p.TotalBytes, 1))) / 2
		}
		if f > 0 && f < 1 {
			p.ETA = el * (1 - f) / f
		}
		rt.logf("    copy %s", p)
		if rt.Journal != nil {
			b, _ := json.Marshal(p)
			rt.Journal.Add(journal.Record{Kind: journal.KindProgress, Step: step, Describe: string(b)})
		}
	}
}

// blockProgress reports a block copy every 2 s and at the end of each
// phase, to the log and the journal (status shows it): bytes, rate and
// ETA of the phase, as dd does. where says the step that runs and the
// round's number.
func blockProgress(rt *Runtime, where func() (step string, round int)) func(blockcopy.Phase, int64, int64) {
	var last, start time.Time
	var mu sync.Mutex // the copy's writer and its read-back call it
	p := &CopyProgress{}
	clock := time.Now
	if rt.Now != nil {
		clock = rt.Now
	}
	return func(phase blockcopy.Phase, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		now := clock()
		if start.IsZero() || phase.String() != p.Phase || done < p.Bytes {
			start, last = now, time.Time{} // a new phase or round
		}
		p.Phase, p.Bytes, p.TotalBytes = phase.String(), done, total
		if now.Sub(last) < 2*time.Second && done != total {
			return
		}
		last = now
		step, round := where()
		p.Round, p.Rate, p.ETA = round, 0, -1
		if el := now.Sub(start).Seconds(); el > 0 && done > 0 {
			p.Rate = float64(done) / el
			p.ETA = float64(total-done) / p.Rate
		}
		rt.logf("    copy %s", p)
		if rt.Journal != nil {
			b, _ := json.Marshal(p)
			rt.Journal.Add(journal.Record{Kind: journal.KindProgress, Step: step, Describe: string(b)})
		}
	}
}
