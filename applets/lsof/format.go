package lsof

import (
	"bufio"
	"encoding/json"
	"io"
	"strconv"
	"unsafe"

	"github.com/rootswap/rootswap/internal/procscan"
)

// writeTable prints rows in lsof's layout: COMMAND, USER and NAME
// left-aligned, the rest right-aligned, the FD number right-aligned
// with its mode letter and a (never set) lock letter after it, so that
// greps like ' DEL ' and ' \(mem\|txt\|rtd\|cwd\) ' work unchanged.
func writeTable(w io.Writer, rows []row) error {
	head := row{Command: "COMMAND", User: "USER", FD: "FD", Type: "TYPE", Device: "DEVICE", SizeOff: "SIZE/OFF", Node: "NODE", Name: "NAME"}
	wCmd, wPID, wUser, wFD, wType, wDev, wSize, wNode := len(head.Command), len("PID"), len(head.User), 4, len(head.Type), len(head.Device), len(head.SizeOff), len(head.Node)
	for i := range rows {
		r := &rows[i]
		wCmd = max(wCmd, len(r.Command))
		wPID = max(wPID, digits(r.PID))
		wUser = max(wUser, len(r.User))
		wFD = max(wFD, len(fdBase(r)))
		wType = max(wType, len(r.Type))
		wDev = max(wDev, len(r.Device))
		wSize = max(wSize, len(r.SizeOff))
		wNode = max(wNode, len(r.Node))
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var b []byte
	var num [20]byte
	line := func(cmd, pid, usr, fd string, mode byte, typ, dev, size, node, name string) {
		b = b[:0]
		b = left(b, cmd, wCmd)
		b = right(b, pid, wPID)
		b = left(b, usr, wUser)
		b = pad(b, wFD-len(fd))
		b = append(b, fd...)
		b = append(b, mode, ' ', ' ')
		b = right(b, typ, wType)
		b = right(b, dev, wDev)
		b = right(b, size, wSize)
		b = right(b, node, wNode)
		b = append(b, name...)
		b = append(b, '\n')
		bw.Write(b)
	}
	line(head.Command, "PID", head.User, head.FD, ' ', head.Type, head.Device, head.SizeOff, head.Node, head.Name)
	for i := range rows {
		r := &rows[i]
		mode := byte(' ')
		if r.Mode != "" {
			mode = r.Mode[0]
		}
		pid := strconv.AppendInt(num[:0], int64(r.PID), 10)
		line(r.Command, unsafeString(pid), r.User, fdBase(r), mode, r.Type, r.Device, r.SizeOff, r.Node, r.Name)
	}
	return bw.Flush()
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

// unsafeString views b as a string for the moment it is copied out.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

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
