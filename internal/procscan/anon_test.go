package procscan

import (
	"slices"
	"testing"
)

func TestParseAnonInfo(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want AnonInfo
	}{
		{"pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\neventfd-count:                0\neventfd-id: 3\neventfd-semaphore: 0\n",
			AnonInfo{EventfdID: 3, HasEventfdID: true}},
		{"pos:\t0\nflags:\t02000002\nmnt_id:\t4\nino:\t87761\nPid:\t22847\nNSpid:\t22847\n", AnonInfo{Pid: 22847, HasPid: true}},
		// A reaped process's pidfd: no pid, as lsof.
		{"Pid:\t-1\nNSpid:\t-1\n", AnonInfo{}},
		{"tfd:       18 events:       19 data:               12  pos:0 ino:40e sdev:10\ntfd:        7 events:       19 data:                7  pos:0 ino:a956a sdev:9\n",
			AnonInfo{TFDs: []int{18, 7}}},
		{"eventfd-id: 99999999999\ntfd: x events: 1\n", AnonInfo{}},
	} {
		got := ParseAnonInfo([]byte(tc.in))
		if got.EventfdID != tc.want.EventfdID || got.HasEventfdID != tc.want.HasEventfdID || got.Pid != tc.want.Pid ||
			got.HasPid != tc.want.HasPid || !slices.Equal(got.TFDs, tc.want.TFDs) {
			t.Errorf("ParseAnonInfo(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	var many []byte
	for i := range MaxTFDs + 5 {
		many = append(many, "tfd: "...)
		many = append(many, []byte(smallNumbers[i])...)
		many = append(many, " events: 19\n"...)
	}
	if got := ParseAnonInfo(many).TFDs; len(got) != MaxTFDs || got[MaxTFDs-1] != MaxTFDs-1 {
		t.Errorf("%d tfd lines kept %v, want the first %d", MaxTFDs+5, got, MaxTFDs)
	}
}

// TestScanAnon reads the details of eventfd, pidfd and eventpoll
// descriptors, and only with Describe.
func TestScanAnon(t *testing.T) {
	snap, err := Scan("testdata/proc", Options{Describe: true})
	if err != nil {
		t.Fatal(err)
	}
	p := proc(t, snap, 300)
	for _, tc := range []struct {
		fd   int
		want AnonInfo
	}{
		{9, AnonInfo{EventfdID: 12, HasEventfdID: true}},
		{10, AnonInfo{Pid: 42, HasPid: true}},
		{11, AnonInfo{TFDs: []int{9, 5}}},
	} {
		got := fd(t, p, tc.fd).Anon
		if got == nil || got.EventfdID != tc.want.EventfdID || got.HasEventfdID != tc.want.HasEventfdID ||
			got.Pid != tc.want.Pid || got.HasPid != tc.want.HasPid || !slices.Equal(got.TFDs, tc.want.TFDs) {
			t.Errorf("fd %d Anon = %+v, want %+v", tc.fd, got, tc.want)
		}
	}
	if a := fd(t, p, 5).Anon; a != nil {
		t.Errorf("a socket has Anon %+v", a)
	}
	snap, err = Scan("testdata/proc", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a := fd(t, proc(t, snap, 300), 9).Anon; a != nil {
		t.Errorf("Anon read without Describe: %+v", a)
	}
}

func FuzzParseAnonInfo(f *testing.F) {
	f.Add([]byte("eventfd-count:                0\neventfd-id: 3\n"))
	f.Add([]byte("Pid:\t22847\nNSpid:\t22847\n"))
	f.Add([]byte("tfd:       18 events:       19 data:               12  pos:0 ino:40e sdev:10\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := ParseAnonInfo(b)
		if len(a.TFDs) > MaxTFDs || a.EventfdID < 0 || a.Pid < 0 || !a.HasPid && a.Pid != 0 || !a.HasEventfdID && a.EventfdID != 0 {
			t.Fatalf("inconsistent %+v", a)
		}
		for _, v := range a.TFDs {
			if v < 0 {
				t.Fatalf("negative tfd in %+v", a)
			}
		}
	})
}
