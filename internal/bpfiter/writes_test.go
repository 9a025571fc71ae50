package bpfiter

import (
	"slices"
	"strings"
	"testing"
)

// TestGoldenWrites compares the write-tracking programs, built against
// the synthetic BTF and a fixed geometry, with their listings.
func TestGoldenWrites(t *testing.T) {
	s := synthetic()
	s["request.cmd_flags"], s["request.q"], s["request.__sector"] = 24, 0, 48
	s["request_queue.disk"], s["gendisk.major"], s["gendisk.first_minor"] = 96, 0, 4
	g := writesGeom{Major: 8, Minor: 0, Start: 2048, Len: 1 << 33, Shift: 5, BitmapFD: 7, CtlFD: 8}
	for _, tc := range []struct {
		name  string
		build func() ([]byte, error)
	}{
		{"writes", func() ([]byte, error) { return writesRawProgram(s, g) }},
		{"writes_tp", func() ([]byte, error) {
			return writesTPProgram(tpFormat{ID: 1, Dev: 8, Sector: 16, NrSector: 24, RWBS: 34}, g)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := tc.build()
			if err != nil {
				t.Fatal(err)
			}
			got := DisasmWrites(prog)
			if strings.Contains(got, "unknown") {
				t.Errorf("listing has an instruction it cannot spell:\n%s", got)
			}
			checkGolden(t, tc.name, got)
		})
	}
}

// TestWritesProgramNeedsEveryField: a BTF without a field the raw
// program reads fails the build instead of reading offset 0.
func TestWritesProgramNeedsEveryField(t *testing.T) {
	full := synthBTF{"request.cmd_flags": 24, "request.q": 8, "request.__sector": 48,
		"request_queue.disk": 96, "gendisk.major": 0, "gendisk.first_minor": 4}
	for field := range full {
		s := synthBTF{}
		for k, v := range full {
			if k != field {
				s[k] = v
			}
		}
		if _, err := writesRawProgram(s, writesGeom{}); err == nil {
			t.Errorf("without %s the program built", field)
		}
	}
}

const rqCompleteFormat = `name: block_rq_complete
ID: 2107
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:dev_t dev;	offset:8;	size:4;	signed:0;
	field:sector_t sector;	offset:16;	size:8;	signed:0;
	field:unsigned int nr_sector;	offset:24;	size:4;	signed:0;
	field:int error;	offset:28;	size:4;	signed:1;
	field:unsigned short ioprio;	offset:32;	size:2;	signed:0;
	field:char rwbs[10];	offset:34;	size:10;	signed:0;
	field:__data_loc char[] cmd;	offset:44;	size:4;	signed:0;
`

func TestParseTPFormat(t *testing.T) {
	got, err := parseTPFormat(strings.NewReader(rqCompleteFormat))
	if err != nil {
		t.Fatal(err)
	}
	want := tpFormat{Dev: 8, Sector: 16, NrSector: 24, RWBS: 34}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		strings.Replace(rqCompleteFormat, "size:8", "size:4", 1), // a 32-bit sector_t
		strings.Replace(rqCompleteFormat, "nr_sector", "nr_sectors", 1),
		"",
	} {
		if _, err := parseTPFormat(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseTPFormat(f *testing.F) {
	f.Add(rqCompleteFormat)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseTPFormat(strings.NewReader(s))
		if err == nil && (got.Dev <= 0 || got.Sector <= 0 || got.NrSector <= 0 || got.RWBS <= 0 || got.RWBS > 4096) {
			t.Errorf("accepted offsets %+v", got)
		}
	})
}

func TestParseCPUList(t *testing.T) {
	got, err := parseCPUList("0-2,5,7-8\n")
	if want := []int{0, 1, 2, 5, 7, 8}; err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"", "a", "3-1", "-1"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
