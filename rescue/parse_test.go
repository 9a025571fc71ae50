package rescue

import (
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseKmsg(t *testing.T) {
	rec, err := parseKmsg("6,339,5140900,-;NET: Registered \\x41 family 10\n SUBSYSTEM=net\n")
	if err != nil {
		t.Fatal(err)
	}
	want := kmsgRecord{Priority: 6, Seq: 339, Usec: 5140900, Text: "NET: Registered A family 10"}
	if rec != want {
		t.Errorf("parseKmsg: got %+v, want %+v", rec, want)
	}
	if _, err := parseKmsg("no header here"); err == nil {
		t.Error("parseKmsg without ';': no error")
	}
}

// TestKmsgEscapes: control bytes the kernel escaped in /dev/kmsg are
// printed as lsof prints them, never as raw bytes; an escaped backslash
// stays text.
func TestKmsgEscapes(t *testing.T) {
	rec, err := parseKmsg(`6,1,2,-;a\x0ab\x1b[31mc\x09d\x7fe\x5cx1bf\xc3\xa9g\xc2\x9bh\xff`)
	if err != nil {
		t.Fatal(err)
	}
	got, want := rec.Text, `a\nb^[[31mc\td\x7fe\x1bfég\xc2\x9bh\xff`
	if got != want {
		t.Errorf("kmsg text: got %q, want %q", got, want)
	}
	// The syslog(2) fallback reads raw bytes: the same escaping.
	if got, want := safeText("x\x1b]0;owned\x07y"), `x^[]0;owned^Gy`; got != want {
		t.Errorf("safeText: got %q, want %q", got, want)
	}
}

func TestParseMountOptions(t *testing.T) {
	req, err := parseMountOptions("ro,nosuid,size=1M,rw,noexec,rprivate,mode=755")
	if err != nil {
		t.Fatal(err)
	}
	want := mountRequest{flags: unix.MS_NOSUID | unix.MS_NOEXEC, propagate: unix.MS_PRIVATE | unix.MS_REC, data: "size=1M,mode=755"}
	if req != want {
		t.Errorf("got %+v, want %+v", req, want)
	}
}

func TestHumanSize(t *testing.T) {
	for _, c := range []struct {
		bytes uint64
		unit  string
		want  string
	}{{0, "i", "0B"}, {1023, "", "1023"}, {1536, "", "1.5K"}, {1048575, "i", "1.0Mi"}, {20 << 20, "", "20M"}, {1<<30 + 1, "", "1.1G"}} {
		if got := humanSize(c.bytes, c.unit); got != c.want {
			t.Errorf("humanSize(%d, %q) = %q, want %q", c.bytes, c.unit, got, c.want)
		}
	}
}

func TestModeString(t *testing.T) {
	for mode, want := range map[uint32]string{
		unix.S_IFDIR | 0o1777: "drwxrwxrwt",
		unix.S_IFREG | 0o4755: "-rwsr-xr-x",
		unix.S_IFREG | 0o2644: "-rw-r-Sr--",
		unix.S_IFCHR | 0o620:  "crw--w----",
		unix.S_IFLNK | 0o777:  "lrwxrwxrwx",
	} {
		if got := modeString(mode); got != want {
			t.Errorf("modeString(%o) = %s, want %s", mode, got, want)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("812 (sshd: root (pr) R 1 812 812 0 -1")
	f.Add("1 (systemd) S 0 1 1")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseProcStat(s)
		if err == nil && !strings.Contains(s, "("+st.Comm+")") {
			t.Errorf("comm %q not in %q", st.Comm, s)
		}
	})
}

func FuzzParseKmsg(f *testing.F) {
	f.Add("6,339,5140900,-;NET: Registered family 10\n SUBSYSTEM=net\n")
	f.Add("4,1,0,c;\\xff\\x4")
	f.Fuzz(func(t *testing.T, s string) {
		rec, err := parseKmsg(s)
		if err != nil {
			return
		}
		for _, c := range []byte(rec.Text) {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("text has control byte %#x: %q", c, rec.Text)
			}
		}
	})
}

func FuzzParseMeminfo(f *testing.F) {
	f.Add("MemTotal:       24683656 kB\nHugePages_Total:       0\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseMeminfo(strings.NewReader(s))
	})
}

func FuzzParseMountOptions(f *testing.F) {
	f.Add("ro,bind,size=1M,rprivate")
	f.Fuzz(func(t *testing.T, s string) {
		req, err := parseMountOptions(s)
		if err == nil && strings.Contains(req.data, ",,") {
			t.Errorf("empty word in data %q", req.data)
		}
	})
}

func FuzzTxtar(f *testing.F) {
	f.Add("echo\n-- a --\nx\n-- b --\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseTxtar(s)
	})
}

// keys feeds a string to the editor as keystrokes.
func editLines(t *testing.T, input string, hist *history) []string {
	t.Helper()
	var out strings.Builder
	e := newEditor(strings.NewReader(input), &out, nil, hist)
	var lines []string
	for {
		line, err := e.readLine("$ ")
		if err == io.EOF {
			return lines
		}
		if err == errInterrupt {
			lines = append(lines, "<^C>")
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
		hist.add(line)
	}
}

func TestEditor(t *testing.T) {
	const (
		up, down, left, right = "\x1b[A", "\x1b[B", "\x1b[D", "\x1b[C"
		home, end, del        = "\x1b[H", "\x1b[F", "\x1b[3~"
	)
	input := "" +
		"ls -l\r" + // plain
		"cat x" + left + left + "b\x7f" + "a\r" + // cursor moves, insert, backspace
		"echo one two\x17three\r" + // Ctrl-W
		"junk\x15kept\r" + // Ctrl-U
		"abcdef\x01\x06\x06\x0bX\r" + // Ctrl-A, Ctrl-F, Ctrl-K
		"bc" + home + "a" + end + "d" + home + del + "\r" + // Home/End/Delete
		up + up + "\r" + // history: two back
		"draft" + up + down + "\r" + // down returns to the draft
		"gone\x03" + // Ctrl-C drops the line
		"x\x04\r" + // Ctrl-D in a line deletes under the cursor (nothing at end)
		"héllo\r" + // UTF-8
		"\x04" // Ctrl-D on an empty line: EOF
	got := editLines(t, input, &history{})
	want := []string{"ls -l", "cata x", "echo one three", "kept", "abX", "bcd", "abX", "draft", "<^C>", "x", "héllo"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines:\ngot  %q\nwant %q", got, want)
	}
}

func TestHistoryFile(t *testing.T) {
	file := t.TempDir() + "/hist"
	h := loadHistory(file)
	for _, l := range []string{"one", "one", " ", "two"} {
		if err := h.add(l); err != nil {
			t.Fatal(err)
		}
	}
	again := loadHistory(file)
	if strings.Join(again.lines, "|") != "one|two" {
		t.Errorf("history reloaded: got %q, want [one two]", again.lines)
	}
}
