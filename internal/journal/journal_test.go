package journal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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
