package lsof

import (
	"bufio"
	"encoding/json"
	"io"
	"runtime"
	"strconv"
	"sync"

	"github.com/rootswap/rootswap/internal/procscan"
)

// writeTable prints rows in lsof's layout: COMMAND, USER and NAME
// left-aligned, the rest right-aligned, the FD number right-aligned
// with its mode letter and a (never set) lock letter after it, so that
// greps like ' DEL ' and ' \(mem\|txt\|rtd\|cwd\) ' work unchanged.
func writeTable(w io.Writer, rows []row) error {
	head := row{Command: "COMMAND", User: "USER", FD: "FD", Type: "TYPE", Device: "DEVICE", SizeOff: "SIZE/OFF", Node: "NODE", Name: "NAME"}
	wd := widths{len(head.Command), len("PID"), len(head.User), 4, len(head.Type), len(head.Device), len(head.SizeOff), len(head.Node)}
	for i := range rows {
		r := &rows[i]
		wd.cmd = max(wd.cmd, len(r.Command))
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
type widths struct{ cmd, pid, user, fd, typ, dev, size, node int }

// format returns the lines of rows.
func (wd widths) format(rows []row) []byte {
	b := make([]byte, 0, len(rows)*(wd.cmd+wd.pid+wd.user+wd.fd+wd.typ+wd.dev+wd.size+wd.node+40))
	var num [20]byte
	for i := range rows {
		r := &rows[i]
		mode := byte(' ')
		if r.Mode != "" {
			mode = r.Mode[0]
		}
		pid := strconv.AppendInt(num[:0], int64(r.PID), 10)
		b = wd.line(b, r.Command, pid, r.User, fdBase(r), mode, r.Type, r.Device, r.SizeOff, r.Node, r.Name)
	}
	return b
}

// line appends one line: COMMAND, USER and NAME left-aligned, the rest
// right-aligned, the FD number right-aligned with its mode letter and a
// (never set) lock letter after it.
func (wd widths) line(b []byte, cmd string, pid []byte, usr, fd string, mode byte, typ, dev, size, node, name string) []byte {
	b = left(b, cmd, wd.cmd)
	b = pad(b, wd.pid-len(pid))
	b = append(b, pid...)
	b = append(b, ' ')
	b = left(b, usr, wd.user)
	b = pad(b, wd.fd-len(fd))
	b = append(b, fd...)
	b = append(b, mode, ' ', ' ')
	b = right(b, typ, wd.typ)
	b = right(b, dev, wd.dev)
	b = right(b, size, wd.size)
	b = right(b, node, wd.node)
	b = append(b, name...)
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

// writeJSON prints one JSON object per row and line (JSON lines), so
// that output can be streamed, grepped and fed to jq -c alike.
func writeJSON(w io.Writer, rows []row) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	for i := range rows {
		rows[i].Flags = procscan.FlagNames(rows[i].flags)
		if err := enc.Encode(&rows[i]); err != nil {
			return err
		}
	}
	return bw.Flush()
}
