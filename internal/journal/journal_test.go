package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func clock() func() time.Time {
	t := time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

func TestRoundTripAndSummary(t *testing.T) {
	p := filepath.Join(t.TempDir(), "journal")
	j, err := Create(p, clock())
	if err != nil {
		t.Fatal(err)
	}
	var kmsg bytes.Buffer
	j.MirrorTo(&kmsg)
	for _, r := range []Record{
		{Kind: KindStart, PID: 42},
		{Kind: KindBegin, Step: "remount-ro", Describe: "remount / read-only"},
		{Kind: KindEnd, Step: "remount-ro"},
		{Kind: KindBegin, Step: "copy"},
		{Kind: KindEnd, Step: "copy"},
		{Kind: KindBegin, Step: "start-services"},
		{Kind: KindEnd, Step: "start-services"},
		{Kind: KindBegin, Step: "pivot"},
		{Kind: KindFail, Step: "pivot", Err: "EINVAL"},
	} {
		if err := j.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Create(p, clock()); err == nil {
		t.Error("Create over an existing journal succeeded")
	}
	j.Close()
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode %v, want 0600", fi.Mode().Perm())
	}
	recs, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(recs)
	if s.Phase != Running || s.Step != "pivot" || s.Err != "EINVAL" || s.EnginePID != 42 {
		t.Errorf("summary = %+v", s)
	}
	if d, ok := s.Window("remount-ro", "start-services"); !ok || d != 5*time.Second {
		t.Errorf("read-only window = %v %v, want 5s", d, ok)
	}
	if !strings.Contains(kmsg.String(), "rootswap: fail pivot: EINVAL") {
		t.Errorf("kmsg mirror = %q", kmsg.String())
	}
}

func TestTornLastLine(t *testing.T) {
	in := `{"kind":"start","pid":1}` + "\n" + `{"kind":"begin","step":"copy"}` + "\n" + `{"kind":"en`
	recs, err := Read(strings.NewReader(in))
	if err != nil || len(recs) != 2 {
		t.Fatalf("Read torn journal = %d records, %v; want 2, nil", len(recs), err)
	}
	_, err = Read(strings.NewReader("garbage\n" + in))
	if err == nil {
		t.Error("corrupt middle line accepted")
	}
}

func TestPhases(t *testing.T) {
	deadline := time.Date(2026, 1, 1, 0, 2, 0, 0, time.UTC)
	for _, tc := range []struct {
		recs []Record
		want Phase
	}{
		{[]Record{{Kind: KindStart}, {Kind: KindWait, Data: map[string]string{"deadline": deadline.Format(time.RFC3339Nano)}}}, WaitingConfirm},
		{[]Record{{Kind: KindStart}, {Kind: KindDone, Result: string(Succeeded)}}, Succeeded},
		{[]Record{{Kind: KindStart}, {Kind: KindRollback}, {Kind: KindUndo, Step: "x"}}, RollingBack},
		{[]Record{{Kind: KindStart}, {Kind: KindDone, Result: string(RolledBack)}}, RolledBack},
	} {
		s := Summarize(tc.recs)
		if s.Phase != tc.want {
			t.Errorf("Summarize(%v).Phase = %s, want %s", tc.recs, s.Phase, tc.want)
		}
		if tc.want == WaitingConfirm && !s.Deadline.Equal(deadline) {
			t.Errorf("deadline %v, want %v", s.Deadline, deadline)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add(`{"kind":"start","pid":1}` + "\n" + `{"kind":"done","result":"succeeded"}`)
	f.Fuzz(func(t *testing.T, s string) {
		recs, _ := Read(strings.NewReader(s))
		Summarize(recs)
	})
}

// A record torn by a kill in the middle of its write is cut off before
// the next append; before, the next record followed the fragment on the
// same line and every later read failed ("corrupt record: line 3").
func TestAppendAfterTornLine(t *testing.T) {
	for _, tc := range []struct{ name, tail string }{
		{"fragment", `{"kind":"en`},
		{"whole record without its newline", `{"kind":"end","step":"copy"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "journal")
			in := `{"kind":"start","pid":1}` + "\n" + `{"kind":"begin","step":"copy"}` + "\n" + tc.tail
			if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
				t.Fatal(err)
			}
			j, err := OpenAppend(p, clock())
			if err != nil {
				t.Fatal(err)
			}
			if err := j.Add(Record{Kind: KindRollback, Err: "asked for"}); err != nil {
				t.Fatal(err)
			}
			j.Close()
			recs, err := ReadFile(p)
			if err != nil {
				t.Fatalf("ReadFile after an append to a torn journal: %v", err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Kind)
			}
			want := "start begin rollback"
			if strings.HasPrefix(tc.tail, `{"kind":"end"`) {
				want = "start begin end rollback"
			}
			if strings.Join(got, " ") != want {
				t.Errorf("records %v, want %s", got, want)
			}
		})
	}
}

// Only a regular file of root's that nobody else may write is read: a
// journal is what rollback acts on. A FIFO must not hang the reader.
func TestUnsafeJournalsRefused(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := os.WriteFile(good, []byte(`{"kind":"start","pid":1}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(good, link)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	gw := filepath.Join(dir, "group-writable")
	os.WriteFile(gw, []byte(`{"kind":"start","pid":1}`+"\n"), 0o600)
	os.Chmod(gw, 0o620)
	cases := map[string]string{link: "symbolic link", fifo: "not a regular file", gw: "writable by group or others", dir: "not a regular file"}
	if os.Geteuid() == 0 {
		other := filepath.Join(dir, "other")
		os.WriteFile(other, []byte(`{"kind":"start","pid":1}`+"\n"), 0o600)
		os.Chown(other, 1000, 1000)
		cases[other] = "owned by uid 1000"
	}
	if _, err := ReadFile(good); err != nil {
		t.Fatalf("ReadFile(%s): %v", good, err)
	}
	for p, want := range cases {
		_, err := ReadFile(p)
		if err == nil || !strings.Contains(err.Error(), want) && !(want == "symbolic link" && errors.Is(err, syscall.ELOOP)) {
			t.Errorf("ReadFile(%s) = %v, want an error: %s", filepath.Base(p), err, want)
		}
		if j, err := OpenAppend(p, clock()); err == nil {
			j.Close()
			t.Errorf("OpenAppend(%s) accepted it", filepath.Base(p))
		}
	}
}

// A write that fails (ENOSPC: the tmpfs is full) is kept for the engine,
// which fails the step on it.
func TestWriteFailureKept(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	j := &Journal{f: full, now: clock()}
	defer j.Close()
	if err := j.Add(Record{Kind: KindBegin, Step: "pivot"}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Add to /dev/full = %v, want ENOSPC", err)
	}
	j.Add(Record{Kind: KindEnd, Step: "pivot"})
	if err := j.TakeErr(); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("TakeErr = %v, want the first ENOSPC", err)
	}
	if err := j.TakeErr(); err != nil {
		t.Errorf("TakeErr again = %v, want nil (taken)", err)
	}
}
