package swap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const procSwaps = `Filename				Type		Size		Used		Priority
/swap.img                               file		2097148		524288		-2
/dev/sda3                               partition	1048572		0		5
/srv/my\040swap                         file		1024		4		7
`

func TestParseSwaps(t *testing.T) {
	got, err := ParseSwaps(strings.NewReader(procSwaps))
	if err != nil {
		t.Fatal(err)
	}
	want := []SwapArea{
		{Path: "/swap.img", Type: "file", Size: 2097148 << 10, Used: 512 << 20, Priority: -2},
		{Path: "/dev/sda3", Type: "partition", Size: 1048572 << 10, Used: 0, Priority: 5},
		{Path: "/srv/my swap", Type: "file", Size: 1 << 20, Used: 4 << 10, Priority: 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSwaps:\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"Filename Type Size Used Priority\n/x file 1 2\n", "/x file a 0 -1\n", "/x file 1 -5 -1\n"} {
		if _, err := ParseSwaps(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseSwaps(%q): no error", bad)
		}
	}
}

func FuzzParseSwaps(f *testing.F) {
	f.Add(procSwaps)
	f.Add("Filename Type Size Used Priority\n")
	f.Fuzz(func(t *testing.T, s string) {
		as, err := ParseSwaps(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, a := range as {
			if a.Size < 0 || a.Used < 0 || a.Path == "" {
				t.Fatalf("bad area %+v from %q", a, s)
			}
		}
	})
}

func TestSwapFlags(t *testing.T) {
	for _, tc := range []struct{ prio, want int }{{-2, 0}, {0, 0x8000}, {5, 0x8005}, {32767, 0xffff}} {
		if got := swapFlags(tc.prio); got != tc.want {
			t.Errorf("swapFlags(%d) = %#x, want %#x", tc.prio, got, tc.want)
		}
	}
}

// Only swap files on the root's filesystem are taken: not partitions,
// not files elsewhere.
func TestSwapFilesOn(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "swap.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(file, &st); err != nil {
		t.Fatal(err)
	}
	proc := t.TempDir()
	text := "Filename Type Size Used Priority\n" + file + " file 1024 0 -2\n/dev/null partition 1024 0 -3\n/nonexistent file 1024 0 -4\n"
	if err := os.WriteFile(filepath.Join(proc, "swaps"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := swapFilesOn(proc, st.Dev)
	if err != nil || len(got) != 1 || got[0].Path != file {
		t.Errorf("swapFilesOn = %+v, %v; want only %s", got, err, file)
	}
	if got, _ := swapFilesOn(proc, st.Dev+1); len(got) != 0 {
		t.Errorf("swapFilesOn(another dev) = %+v, want none", got)
	}
}

func TestCheckSwapFilesRefusesShortMemory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "swap.img")
	os.WriteFile(file, nil, 0o600)
	var st unix.Stat_t
	unix.Stat(file, &st)
	proc := t.TempDir()
	os.WriteFile(filepath.Join(proc, "swaps"), []byte("Filename Type Size Used Priority\n"+file+" file 2097152 1048576 -2\n"), 0o644)
	r := &Report{MemAvail: 900 << 20, MemNeeded: 40 << 20}
	if err := r.checkSwapFiles(proc, st.Dev); err != nil {
		t.Fatal(err)
	}
	want := "swapoff of the swap files on / must bring 1.0 GiB back into memory; with a margin of 102 MiB and the engine's 40 MiB that needs 1.1 GiB, but MemAvailable is 900 MiB"
	if len(r.Blockers) != 1 || r.Blockers[0].Problem != want {
		t.Errorf("blockers = %+v\nwant %q", r.Blockers, want)
	}
	r = &Report{MemAvail: 2 << 30, MemNeeded: 40 << 20}
	r.checkSwapFiles(proc, st.Dev)
	if len(r.Blockers) != 0 || len(r.SwapFiles) != 1 {
		t.Errorf("enough memory: blockers %+v, swap files %+v", r.Blockers, r.SwapFiles)
	}
}

type fakeSwapper struct {
	calls []string
	fail  error
}

func (f *fakeSwapper) Swapon(p string, flags int) error {
	f.calls = append(f.calls, fmt.Sprintf("swapon %s %#x", p, flags))
	return f.fail
}
func (f *fakeSwapper) Swapoff(p string) error {
	f.calls = append(f.calls, "swapoff "+p)
	return f.fail
}

// swapoff before the remount, swapon from the new root with the same
// priority; rollback walks both back.
func TestSwapSteps(t *testing.T) {
	sw := &fakeSwapper{}
	rt := &Runtime{Swap: sw, Report: &Report{SwapFiles: []SwapArea{{Path: "/swap.img", Type: "file", Priority: 3}}}}
	s := &State{}
	ctx := context.Background()
	off, on := &swapOff{rt}, &swapOn{rt}
	if !strings.Contains(off.Describe(s), "swapoff /swap.img (0 B used, priority 3)") || !strings.Contains(on.Describe(s), "swapon /swap.img (priority 3) from the new root") {
		t.Errorf("describe:\n%s\n%s", off.Describe(s), on.Describe(s))
	}
	if err := off.Do(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := on.Do(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := on.Undo(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := off.Undo(ctx, s); err != nil {
		t.Fatal(err)
	}
	want := []string{"swapoff /swap.img", "swapon /swap.img 0x8003", "swapoff /swap.img", "swapon /swap.img 0x8003"}
	if !reflect.DeepEqual(sw.calls, want) {
		t.Errorf("calls = %q, want %q", sw.calls, want)
	}
	if len(s.SwapOff)+len(s.SwapOn) != 0 {
		t.Errorf("state after undo: %+v %+v", s.SwapOff, s.SwapOn)
	}
	sw.fail = errors.New("ENOMEM")
	if err := off.Do(ctx, &State{}); err == nil || !strings.Contains(err.Error(), "/swap.img") {
		t.Errorf("failed swapoff: %v", err)
	}
}
