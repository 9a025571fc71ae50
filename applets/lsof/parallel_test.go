package lsof

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"

	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// bigSnapshot has enough processes and rows for listRows and writeTable
// to split their work across CPUs; process i holds i%7 descriptors, so
// the runs' stretches are unevenly filled.
func bigSnapshot() *procscan.Snapshot {
	snap := &procscan.Snapshot{}
	for i := range 3000 {
		p := &procscan.Process{PID: 100 + i, Comm: fmt.Sprintf("d%d", i%13), UID: 0,
			Cwd: procscan.Link{Name: "/"}, Root: procscan.Link{Name: "/"}}
		for n := range i % 7 {
			p.FDs = append(p.FDs, procscan.FD{
				Num: 3 + n, Name: fmt.Sprintf("/var/log/f%d", n), Kind: procscan.KindFile,
				Info: procscan.FDInfo{Pos: int64(n), Flags: unix.O_WRONLY, HasFlags: true}, HasInfo: true,
				Stat: &procscan.Stat{Mode: unix.S_IFREG | 0o644, Size: int64(10 * n), Ino: uint64(1000 + n), Dev: unix.Mkdev(8, 1)},
			})
		}
		snap.Procs = append(snap.Procs, p)
	}
	return snap
}

// TestRowsInParallel: the rows and the table built on every CPU are the
// ones a single pass in process order makes.
func TestRowsInParallel(t *testing.T) {
	snap := bigSnapshot()
	f, k := newFilter(&options{}, nil, nil, nil), &kernelDevs{}
	got := listRows(snap, f, newUsers(false), k)
	var want []row
	u, c := newUsers(false), newTexts()
	for _, p := range snap.Procs {
		u.name(p.UID)
		want = procRows(snap, p, f, u, c, k, want)
	}
	if len(got) != len(want) || len(want) < 9000 {
		t.Fatalf("got %d rows, want %d (and at least 9000)", len(got), len(want))
	}
	if !reflect.DeepEqual(got, want) {
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("row %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
	}

	var tab bytes.Buffer
	if err := (table{cmdLimit: defaultCmdWidth}).writeTable(&tab, got); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(tab.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != len(want)+1 {
		t.Fatalf("table has %d lines, want %d", len(lines), len(want)+1)
	}
	// Every line is as wide as the header up to NAME, and in row order.
	for i, r := range want {
		f := bytes.Fields(lines[i+1])
		if string(f[1]) != itoa(r.PID) || string(f[len(f)-1]) != r.Name {
			t.Fatalf("line %d = %q, want pid %d and %s", i+1, lines[i+1], r.PID, r.Name)
		}
	}
}
