package lsof

import (
	"bufio"
	"encoding/json"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// table says how rows are printed: the COMMAND width limit (+c; 0 for
// the whole name) and whether names keep printable UTF-8 characters.
type table struct {
	cmdLimit int
	utf8     bool
}

// writeTable prints rows in lsof's layout: COMMAND and NAME left-aligned,
// the rest right-aligned (USER too, as lsof's printf does), the FD
// number right-aligned with its mode letter and a (never set) lock
// letter after it, so that greps like ' DEL ' and
// ' \(mem\|txt\|rtd\|cwd\) ' work unchanged. No rows, no header (lsof).
func (tb table) writeTable(w io.Writer, rows []row) error {
	if len(rows) == 0 {
		return nil
	}
	head := row{Command: "COMMAND", User: "USER", FD: "FD", Type: "TYPE", Device: "DEVICE", SizeOff: "SIZE/OFF", Node: "NODE", Name: "NAME"}
	wd := widths{len(head.Command), len("PID"), len(head.User), 4, len(head.Type), len(head.Device), len(head.SizeOff), len(head.Node), tb}
	for i := range rows {
		r := &rows[i]
		if i == 0 || r.Command != rows[i-1].Command {
			wd.cmd = max(wd.cmd, commandWidth(r.Command, tb.cmdLimit))
		}
		wd.pid = max(wd.pid, digits(r.PID))
		wd.user = max(wd.user, len(r.User))
		wd.fd = max(wd.fd, len(fdBase(r)))
		wd.typ = max(wd.typ, len(r.Type))
		wd.dev = max(wd.dev, len(r.Device))
		wd.size = max(wd.size, len(r.SizeOff))
		wd.node = max(wd.node, len(r.Node))
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(wd.line(nil, head.Command, []byte("PID"), head.User, head.FD, ' ', head.Type, head.Device, head.SizeOff, head.Node, head.Name))
	// The lines are formatted in parallel, a stretch of rows per CPU,
	// and written in order.
	workers := max(1, min(runtime.GOMAXPROCS(0), len(rows)/4096))
	out := make([][]byte, workers)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[k] = wd.format(rows[k*len(rows)/workers : (k+1)*len(rows)/workers])
		}()
	}
	wg.Wait()
	for _, b := range out {
		bw.Write(b)
	}
	return bw.Flush()
}

// widths are the table's column widths.
type widths struct {
	cmd, pid, user, fd, typ, dev, size, node int
	tb                                       table
}

// format returns the lines of rows.
func (wd widths) format(rows []row) []byte {
	b := make([]byte, 0, len(rows)*(wd.cmd+wd.pid+wd.user+wd.fd+wd.typ+wd.dev+wd.size+wd.node+40))
	var num [20]byte
	var lastCmd, cmd string
	for i := range rows {
		r := &rows[i]
		mode := byte(' ')
		if r.Mode != "" {
			mode = r.Mode[0]
		}
		if i == 0 || r.Command != lastCmd {
			lastCmd, cmd = r.Command, commandText(r.Command, wd.cmd)
		}
		pid := strconv.AppendInt(num[:0], int64(r.PID), 10)
		b = wd.line(b, cmd, pid, r.User, fdBase(r), mode, r.Type, r.Device, r.SizeOff, r.Node, r.Name)
	}
	return b
}

// line appends one line: COMMAND and NAME left-aligned, the rest
// right-aligned, the FD number right-aligned with its mode letter and a
// (never set) lock letter after it. cmd is already escaped; name is
// escaped here.
func (wd widths) line(b []byte, cmd string, pid []byte, usr, fd string, mode byte, typ, dev, size, node, name string) []byte {
	b = left(b, cmd, wd.cmd)
	b = pad(b, wd.pid-len(pid))
	b = append(b, pid...)
	b = append(b, ' ')
	b = right(b, usr, wd.user)
	b = pad(b, wd.fd-len(fd))
	b = append(b, fd...)
	b = append(b, mode, ' ', ' ')
	b = right(b, typ, wd.typ)
	b = right(b, dev, wd.dev)
	b = right(b, size, wd.size)
	b = right(b, node, wd.node)
	b = appendName(b, name, wd.tb.utf8)
	return append(b, '\n')
}

// digits is the width of n in decimal.
func digits(n int) int {
	w := 1
	if n < 0 {
		w, n = 2, -n
	}
	for ; n >= 10; n /= 10 {
		w++
	}
	return w
}

// fdBase is the FD column without the mode letter.
func fdBase(r *row) string {
	if r.Mode != "" || (len(r.FD) > 0 && r.FD[len(r.FD)-1] == ' ') {
		return r.FD[:len(r.FD)-1]
	}
	return r.FD
}

func left(b []byte, s string, w int) []byte {
	b = append(b, s...)
	return pad(b, w-len(s)+1)
}

func right(b []byte, s string, w int) []byte {
	b = pad(b, w-len(s))
	b = append(b, s...)
	return append(b, ' ')
}

func pad(b []byte, n int) []byte {
	for ; n > 0; n-- {
		b = append(b, ' ')
	}
	return b
}

// writePIDs prints the PIDs of rows, sorted, once each, one per line
// (lsof -t).
func writePIDs(w io.Writer, rows []row) error {
	pids := make([]int, 0, len(rows))
	for i := range rows {
		if i == 0 || rows[i].PID != rows[i-1].PID {
			pids = append(pids, rows[i].PID)
		}
	}
	slices.Sort(pids)
	pids = slices.Compact(pids)
	b := make([]byte, 0, len(pids)*8)
	for _, p := range pids {
		b = strconv.AppendInt(b, int64(p), 10)
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}

// jsonRow is one --json line. Numbers are JSON numbers; a field that
// does not apply to the file is left out (a pipe has no size, cwd no
// descriptor number, a file on NFS no inode).
type jsonRow struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	Command string  `json:"command"`
	PID     int     `json:"pid"`
	UID     int     `json:"uid"`
	User    string  `json:"user"`
	FD      string  `json:"fd"`               // the FD column: "cwd", "txt", "mem", "DEL", "3w"
	FDNum   *int    `json:"fd_num,omitempty"` // 3 for "3w"
	Mode    string  `json:"mode,omitempty"`   // "r", "w", "u" for descriptors
	Type    string  `json:"type"`
	Device  string  `json:"device,omitempty"` // the DEVICE column: "8,2"
	Major   *uint32 `json:"major,omitempty"`
	Minor   *uint32 `json:"minor,omitempty"`
	Size    *int64  `json:"size,omitempty"`
	Offset  *int64  `json:"offset,omitempty"`
	Node    *uint64 `json:"node,omitempty"` // the inode number
	Name    string  `json:"name"`           // as the table's NAME before escaping, " (deleted)" included
	Deleted bool    `json:"deleted"`
	Flags   string  `json:"flags,omitempty"` // O_APPEND|O_CLOEXEC...
	MntID   int     `json:"mnt_id,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// writeJSON prints one JSON object per row and line (JSON lines), so
// that output can be streamed, grepped and fed to jq -c alike. JSON
// escapes control characters itself: names are given unescaped.
func writeJSON(w io.Writer, rows []row) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	for i := range rows {
		r := &rows[i]
		j := jsonRow{Command: r.Command, PID: r.PID, UID: r.UID, User: strings.TrimSpace(r.User), FD: r.FD, Mode: r.Mode,
			Type: r.Type, Device: r.Device, Name: r.Name, Deleted: r.Deleted, Flags: procscan.FlagNames(r.flags),
			MntID: r.MntID, Note: r.Note}
		if r.fdNum >= 0 {
			j.FDNum = &r.fdNum
		}
		if r.hasDev {
			major, minor := unix.Major(r.dev), unix.Minor(r.dev)
			j.Major, j.Minor = &major, &minor
		}
		switch r.sizeKind {
		case isSize:
			j.Size = &r.sizeOff
		case isOffset:
			j.Offset = &r.sizeOff
		}
		if r.hasIno {
			j.Node = &r.ino
		}
		if err := enc.Encode(&j); err != nil {
			return err
		}
	}
	return bw.Flush()
}
