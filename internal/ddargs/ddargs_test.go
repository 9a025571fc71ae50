package ddargs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"512", 512, true},
		{"1c", 1, true},
		{"1w", 2, true},
		{"2b", 1024, true},
		{"1k", 1024, true},
		{"1K", 1024, true},
		{"1kB", 1000, true},
		{"1KB", 1000, true},
		{"1KiB", 1024, true},
		{"1M", 1 << 20, true},
		{"1MB", 1000000, true},
		{"1MiB", 1 << 20, true},
		{"8M", 8 << 20, true},
		{"1G", 1 << 30, true},
		{"1GB", 1e9, true},
		{"1T", 1 << 40, true},
		{"1P", 1 << 50, true},
		{"1E", 1 << 60, true},
		{"2x512", 1024, true},
		{"1Kx4", 4096, true},
		{"2x3x4", 0, false}, // GNU 9.1: one x only
		{"K", 1024, true},   // GNU: a bare suffix is one of it
		{"", 0, false},
		{"x", 0, false},
		{"2x", 0, false},
		{"1m", 0, false}, // lower-case m is not a dd suffix
		{"1B", 1, true},  // B alone: bytes (count=100B)
		{"-1", 0, false},
		{"1Q", 0, false}, // overflows int64
		{"16E", 0, false},
		{"1Kq", 0, false},
		{"abc", 0, false},
	} {
		got, err := ParseNumber(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseNumber(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want func(*Config) bool
		err  string
	}{
		{nil, func(c *Config) bool { return c.IBS == 512 && c.OBS == 512 && c.Count == -1 && c.If == "" && !c.BS }, ""},
		{[]string{"if=a", "of=b", "bs=8M"}, func(c *Config) bool { return c.If == "a" && c.Of == "b" && c.IBS == 8<<20 && c.OBS == 8<<20 && c.BS }, ""},
		{[]string{"ibs=1K", "obs=4K"}, func(c *Config) bool { return c.IBS == 1024 && c.OBS == 4096 && !c.BS }, ""},
		{[]string{"bs=1M", "ibs=1K"}, func(c *Config) bool { return c.IBS == 1<<20 }, ""}, // bs wins, as in GNU
		{[]string{"count=10", "skip=2", "seek=3", "bs=100"}, func(c *Config) bool {
			return c.CountBytes() == 1000 && c.SkipBytes() == 200 && c.SeekBytes() == 300
		}, ""},
		{[]string{"count=1KB"}, func(c *Config) bool { return c.IFlag.CountBytes && c.CountBytes() == 1000 }, ""},
		{[]string{"skip=3", "iflag=skip_bytes"}, func(c *Config) bool { return c.SkipBytes() == 3 }, ""},
		{[]string{"conv=notrunc,fsync,sparse", "iflag=direct,fullblock", "oflag=direct,seek_bytes", "status=progress"}, func(c *Config) bool {
			return c.Conv.Notrunc && c.Conv.Fsync && c.Conv.Sparse && c.IFlag.Direct && c.IFlag.Fullblock && c.OFlag.Direct && c.OFlag.SeekBytes && c.Status == "progress"
		}, ""},
		{[]string{"blocks=used", "backup=x.zst", "backup-level=19", "verify=yes", "--allow-rw-source"}, func(c *Config) bool {
			return c.Blocks == "used" && c.Backup == "x.zst" && c.BackupLevel == 19 && c.Verify && c.AllowRWSource && c.Extensions()
		}, ""},
		{[]string{"foo"}, nil, "unrecognized operand 'foo'"},
		{[]string{"foo=1"}, nil, "unrecognized operand 'foo=1'"},
		{[]string{"bs=0"}, nil, "invalid number: '0'"},
		{[]string{"bs=1x"}, nil, "invalid number: '1x'"},
		{[]string{"count=-1"}, nil, "invalid number: '-1'"},
		{[]string{"conv=notrunc,bogus"}, nil, "invalid conversion: 'bogus'"},
		{[]string{"iflag=nope"}, nil, "invalid input flag: 'nope'"},
		{[]string{"oflag=nope"}, nil, "invalid output flag: 'nope'"},
		{[]string{"status=loud"}, nil, "invalid status level: 'loud'"},
		{[]string{"blocks=some"}, nil, "invalid blocks: 'some' (used, all or auto)"},
		{[]string{"blocks=used", "skip=1"}, nil, "blocks=used copies a whole filesystem: skip=, seek= and count= do not apply"},
		{[]string{"verify=maybe"}, nil, "invalid verify: 'maybe' (yes or no)"},
	} {
		c, err := Parse(tc.args)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) error = %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !tc.want(&c) {
			t.Errorf("Parse(%q) = %+v, %v", tc.args, c, err)
		}
	}
}

// GNU dd's own messages for bad operands, to keep ours the same.
func TestParseErrorsLikeGNU(t *testing.T) {
	if _, err := exec.LookPath("dd"); err != nil {
		t.Skip("no dd")
	}
	for _, args := range [][]string{{"foo"}, {"bs=0"}, {"bs=1x"}, {"conv=bogus"}, {"iflag=nope"}, {"oflag=nope"}, {"status=loud"}} {
		cmd := exec.Command("dd", append(args, "if=/dev/null", "of=/dev/null")...)
		cmd.Env = append(cmd.Environ(), "LC_ALL=C")
		out, _ := cmd.CombinedOutput()
		first, _, _ := strings.Cut(string(out), "\n")
		gnu := strings.TrimPrefix(first, "dd: ")
		_, err := Parse(args)
		if err == nil || err.Error() != gnu {
			t.Errorf("Parse(%q): %v; GNU dd says %q", args, err, gnu)
		}
	}
}

// The byte figures of GNU dd's summary, for sizes around every rounding
// edge, compared with /bin/dd itself.
func TestTransferBytesLikeGNU(t *testing.T) {
	if _, err := exec.LookPath("dd"); err != nil {
		t.Skip("no dd")
	}
	sizes := []int{1, 2, 999, 1000, 1023, 1024, 1025, 1049, 1050, 1051, 1099, 9999, 10239, 10240, 10291, 99499, 99500, 99999,
		102399, 999499, 999500, 999999, 1000000, 1048575, 1048576, 1099999, 9950000, 10485759, 104857599}
	re := regexp.MustCompile(`^(.*) copied, `)
	for _, n := range sizes {
		bs, count := n, 1
		if n > 1<<20 {
			bs, count = 1, n // never mind the time, only figures matter
			if n%1000 == 0 {
				bs, count = 1000, n/1000
			} else {
				continue
			}
		}
		out, err := exec.Command("dd", "if=/dev/zero", "of=/dev/null", "bs="+strconv.Itoa(bs), "count="+strconv.Itoa(count)).CombinedOutput()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		m := re.FindStringSubmatch(lines[len(lines)-1])
		if m == nil {
			t.Fatalf("dd said %q", out)
		}
		got := re.FindStringSubmatch(Transfer(int64(n), time.Second, false))
		if got[1] != m[1] {
			t.Errorf("%d bytes: got %q, GNU dd %q", n, got[1], m[1])
		}
	}
	for _, n := range []int64{104857599, 2006843392, 1 << 40, 999999999999} {
		got := HumanSI(n, false) + ", " + HumanSI(n, true)
		want := map[int64]string{104857599: "105 MB, 100 MiB", 2006843392: "2.0 GB, 1.9 GiB", 1 << 40: "1.1 TB, 1.0 TiB", 999999999999: "1.0 TB, 931 GiB"}[n]
		if got != want {
			t.Errorf("HumanSI(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTransferForms(t *testing.T) {
	for _, tc := range []struct {
		bytes   int64
		elapsed time.Duration
		want    string
	}{
		// The procedure's own output (seed-procedure-ru.txt), whose
		// figures GNU printed in one line per field.
		{2006843392, 58102100 * time.Microsecond, "2006843392 bytes (2.0 GB, 1.9 GiB) copied, 58.1021 s, 34.5 MB/s"},
		{1, 31539 * time.Nanosecond, "1 byte copied, 3.1539e-05 s, 31.7 kB/s"},
		{512, time.Second, "512 bytes copied, 1 s, 512 B/s"},
		{500, 2 * time.Second, "500 bytes copied, 2 s, 250 B/s"},
		{500, 3 * time.Second / 2, "500 bytes copied, 1.5 s, 0.3 kB/s"},
		{1000, 0, "1000 bytes (1.0 kB) copied, 0 s, Infinity B/s"},
	} {
		if got := Transfer(tc.bytes, tc.elapsed, false); got != tc.want {
			t.Errorf("Transfer(%d, %v) = %q, want %q", tc.bytes, tc.elapsed, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("bs=8M")
	f.Add("count=2x3KiB")
	f.Add("conv=notrunc,fsync")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(strings.Fields(s))
		if err == nil && (c.IBS < 1 || c.OBS < 1 || c.SkipBytes() < 0 || c.SeekBytes() < 0) {
			t.Errorf("Parse(%q) = %+v", s, c)
		}
	})
}

func FuzzParseNumber(f *testing.F) {
	f.Add("2x512")
	f.Add("1KiB")
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseNumber(s); err == nil && n < 0 {
			t.Errorf("ParseNumber(%q) = %d", s, n)
		}
	})
}

// fakeClock makes GNU dd's clock advance by exactly $DD_DELTA_NS between
// its first and every later reading, so that its rate figure can be
// compared with ours for the same bytes and time, long double rounding
// included.
const fakeClock = `
#define _GNU_SOURCE
#include <time.h>
#include <stdlib.h>
static long long calls;
int clock_gettime(clockid_t id, struct timespec *ts) {
	long long ns = 1000000000LL * 1000 + (calls++ ? atoll(getenv("DD_DELTA_NS")) : 0);
	ts->tv_sec = ns / 1000000000LL;
	ts->tv_nsec = ns % 1000000000LL;
	return 0;
}
`

func TestTransferRateLikeGNU(t *testing.T) {
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc not installed: cannot build the clock shim this cross-check needs")
	}
	dir := t.TempDir()
	src := dir + "/clock.c"
	if err := os.WriteFile(src, []byte(fakeClock), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := dir + "/clock.so"
	if out, err := exec.Command("gcc", "-shared", "-fPIC", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		bs, count int
		ns        int64
	}{
		{1, 1, 31539}, {512, 1, 1e9}, {1000, 3, 7}, {8 << 20, 3, 58102100000}, {4096, 100, 123456789},
		{1 << 20, 10, 999999999}, {1 << 20, 100, 3e9}, {1000, 1, 1500000000}, {65536, 16, 12345678}, {1, 999, 1e12 + 1},
		{4096, 1000, 333333333}, {1 << 20, 2, 2e9 + 500},
	} {
		cmd := exec.Command("dd", "if=/dev/zero", "of=/dev/null", "bs="+strconv.Itoa(tc.bs), "count="+strconv.Itoa(tc.count))
		cmd.Env = append(cmd.Environ(), "LC_ALL=C", "LD_PRELOAD="+lib, "DD_DELTA_NS="+strconv.FormatInt(tc.ns, 10))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dd: %v\n%s", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		want := lines[len(lines)-1]
		got := Transfer(int64(tc.bs*tc.count), time.Duration(tc.ns), false)
		if got != want {
			t.Errorf("%d bytes in %d ns:\n got %q\nwant %q", tc.bs*tc.count, tc.ns, got, want)
		}
	}
}

// ParseNumber gives GNU dd 9.1's value or refusal for each string: GNU
// dd truncates a new file to seek=N bytes (obs=1: N whole records),
// whose size tells the value.
func TestParseNumberLikeGNU(t *testing.T) {
	if _, err := os.Stat("/usr/bin/dd"); err != nil {
		t.Skip("no GNU dd")
	}
	dir := t.TempDir()
	for _, s := range []string{
		"0", "1", "100B", "1B", "B", "K", "1KB", "1KiB", "1kB", "1k", "1K", "2x3x4", "2x3", "1Kx4", "1xK",
		"0x5", "00x5", "1R", "1Q", "1E", "1bB", "1cB", "1wB", "1BB", "+5", " 5", "5 ", "1D", "1MD", "1KD",
		"1iB", "1MiB", "1Mi", "x", "2x", "1m", "1KBx2", "2x1KB", "1Bx2", "1x2B", "1Bx2B", "1e3", "2b", "3w",
		"1GB", "1G", "1TB", "1T", "5x0", "0x0", "2x 3", "2x+3", "2x-3", "-0", "1c", "cB", "bx2", "Kx2",
		"9223372036854775807", "9223372036854775806x1", "4611686018427387904x2", "1Px8", "1EB", "1KiBx1KiB",
	} {
		f := filepath.Join(dir, "f")
		os.Remove(f)
		cmd := exec.Command("/usr/bin/dd", "if=/dev/null", "of="+f, "count=0", "obs=1", "oflag=seek_bytes", "seek="+s)
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		out, err := cmd.CombinedOutput()
		got, gotErr := ParseNumber(s)
		if err != nil {
			if strings.Contains(string(out), "invalid number") {
				if gotErr == nil {
					t.Errorf("ParseNumber(%q) = %d; GNU dd: %s", s, got, out)
				}
				continue
			}
			// Valid, but too large a file for this filesystem.
			if gotErr != nil {
				t.Errorf("ParseNumber(%q): %v; GNU dd took it: %s", s, gotErr, out)
			}
			continue
		}
		fi, serr := os.Stat(f)
		if serr != nil {
			t.Fatal(serr)
		}
		if gotErr != nil || got != fi.Size() {
			t.Errorf("ParseNumber(%q) = %d, %v; GNU dd: %d", s, got, gotErr, fi.Size())
		}
	}
}
