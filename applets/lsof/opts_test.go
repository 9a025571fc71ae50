package lsof

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/procscan"
)

func TestParseArgs(t *testing.T) {
	def := func(f func(o *options)) *options {
		o := &options{cmdWidth: defaultCmdWidth}
		f(o)
		return o
	}
	for _, c := range []struct {
		args []string
		want *options
	}{
		{[]string{"-n", "-P", "-w", "/"}, def(func(o *options) { o.paths, o.noWarn = []string{"/"}, true })},
		{[]string{"-nP", "/"}, def(func(o *options) { o.paths = []string{"/"} })},
		{[]string{"-w", "+w", "/"}, def(func(o *options) { o.paths = []string{"/"} })},
		{[]string{"-ta", "-c", "sl", "/m"}, def(func(o *options) { o.terse, o.and, o.cmds, o.paths = true, true, []string{"sl"}, []string{"/m"} })},
		{[]string{"-tc", "sl", "-c^cron", "-cpy"}, def(func(o *options) { o.terse, o.cmds, o.notCmds = true, []string{"sl", "py"}, []string{"cron"} })},
		{[]string{"-p1,^2", "-p", "3"}, def(func(o *options) { o.pids, o.notPIDs = []int{1, 3}, []int{2} })},
		{[]string{"+c0", "-l"}, def(func(o *options) { o.cmdWidth, o.numUID = 0, true })},
		{[]string{"+c", "15", "+D", "/var/log", "+d/tmp"}, def(func(o *options) {
			o.cmdWidth, o.dirs = 15, []dirOpt{{"/var/log", true}, {"/tmp", false}}
		})},
		{[]string{"-u", "root,^1", "-u^daemon"}, def(func(o *options) { o.users, o.notUsers = []string{"root"}, []string{"1", "daemon"} })},
		{[]string{"-d", "cwd,3-5,7"}, def(func(o *options) { o.fds = fdList{set: true, names: []string{"cwd"}, ranges: [][2]int{{3, 5}, {7, 7}}} })},
		{[]string{"-d^3"}, def(func(o *options) { o.fds = fdList{set: true, exclude: true, ranges: [][2]int{{3, 3}}} })},
		{[]string{"/", "--writable", "--json", "-deleted", "-no-bpf"}, def(func(o *options) {
			o.paths, o.writable, o.json, o.deleted, o.noBPF = []string{"/"}, true, true, true, true
		})},
		{[]string{"-t", "--", "-p", "+D"}, def(func(o *options) { o.terse, o.paths = true, []string{"-p", "+D"} })},
		{[]string{"-", "+"}, def(func(o *options) { o.paths = []string{"-", "+"} })},
	} {
		got, err := parseArgs(c.args)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q:\ngot  %+v\nwant %+v", c.args, got, c.want)
		}
	}
}

func TestParseArgsRegex(t *testing.T) {
	o, err := parseArgs([]string{"-c", "/^SL$/i", "-c", "/py/x"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rx := range o.cmdRx {
		got = append(got, rx.String())
	}
	if want := []string{"(?i)^SL$", "py"}; !reflect.DeepEqual(got, want) {
		t.Errorf("regexps: got %q, want %q", got, want)
	}
}

func TestParseArgsErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-a"},         // lsof: no select options to AND via -a
		{"-a", "-l"},   // still none
		{"-Z"},         // no such letter
		{"-nZ"},        // nor combined
		{"-p"},         // value missing
		{"-p", "x"},    // not a pid
		{"-p", "^"},    // empty exclusion
		{"+c", "x"},    // not a width
		{"+c", "-1"},   // nor this
		{"-d", "1,^2"}, // mixed
		{"-d", "5-3"},  // backwards range
		{"-c", "/a(/"}, // bad regexp
		{"-c", "/a/b"}, // basic regexps: no RE2 counterpart
		{"-u", ","},    // no user
		{"--bogus"},
		{"+x"},
	} {
		if _, err := parseArgs(args); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
	if _, err := parseArgs([]string{"-h"}); !errors.Is(err, cli.ErrHelp) {
		t.Errorf("-h: got %v, want help", err)
	}
}

func TestFDList(t *testing.T) {
	l, err := parseFDList("cwd,3-5,fd")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := parseFDList("^mem,^4")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		l    *fdList
		num  int
		name string
		want bool
	}{
		{&l, -1, "cwd", true}, {&l, -1, "rtd", false}, {&l, 4, "", true}, {&l, 9, "", true},
		{&ex, -1, "mem", false}, {&ex, -1, "txt", true}, {&ex, 4, "", false}, {&ex, 5, "", true},
	} {
		if got := c.l.selected(c.num, c.name); got != c.want {
			t.Errorf("%+v.selected(%d, %q) = %v, want %v", *c.l, c.num, c.name, got, c.want)
		}
	}
}

// TestEscapes: what lsof 4.95 printed for files named with these bytes
// (C.UTF-8 and C locales alike for single bytes; see appendName).
func TestEscapes(t *testing.T) {
	for _, c := range []struct {
		name      string
		utf8      bool
		want      string
		wantBytes string // the C locale, when it differs
	}{
		{"/t/plain name", true, "/t/plain name", ""},
		{"/t/nl\nname", true, `/t/nl\nname`, ""},
		{"/t/esc\x1bname", true, `/t/esc^[name`, ""},
		{"/t/\b\f\r\t\x01\x1f", true, `/t/\b\f\r\t^A^_`, ""},
		{"/t/back\\slash", true, `/t/back\\slash`, ""},
		{"/t/\x7f\x80\xff", true, `/t/\x7f\x80\xff`, ""},
		{"/t/é", true, "/t/é", `/t/\xc3\xa9`},
		{"/t/\u200b\ue000", true, "/t/\u200b\ue000", `/t/\xe2\x80\x8b\xee\x80\x80`},
		{"/t/\u009b\uffff\u0378\u2028", true, `/t/\xc2\x9b\xef\xbf\xbf\xcd\xb8\xe2\x80\xa8`, ""},
		{"/t/\xc3", true, `/t/\xc3`, ""},
	} {
		if got := string(appendName(nil, c.name, c.utf8)); got != c.want {
			t.Errorf("appendName(%q, utf8) = %q, want %q", c.name, got, c.want)
		}
		want := c.want
		if c.wantBytes != "" {
			want = c.wantBytes
		}
		if got := string(appendName(nil, c.name, false)); got != want {
			t.Errorf("appendName(%q, C) = %q, want %q", c.name, got, want)
		}
	}
}

func TestCommandText(t *testing.T) {
	for _, c := range []struct {
		cmd   string
		limit int
		width int
		text  string
	}{
		{"systemd-journald", 9, 9, "systemd-j"},
		{"systemd-journald", 0, 16, "systemd-journald"},
		{"sl", 9, 2, "sl"},
		{"a b", 9, 6, `a\x20b`},
		{"x\x1by", 9, 4, `x^[y`},
		// lsof counts \xc3 as two characters, then cuts the printed form.
		{"é", 9, 4, `\xc3`},
	} {
		w := commandWidth(c.cmd, c.limit)
		if w != c.width {
			t.Errorf("commandWidth(%q, %d) = %d, want %d", c.cmd, c.limit, w, c.width)
		}
		if got := commandText(c.cmd, w); got != c.text {
			t.Errorf("commandText(%q, %d) = %q, want %q", c.cmd, w, got, c.text)
		}
	}
}

func TestUTF8Locale(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{"LANG": "C.UTF-8"}, true},
		{map[string]string{"LANG": "en_US.utf8"}, true},
		{map[string]string{"LANG": "C.UTF-8", "LC_ALL": "C"}, false},
		{map[string]string{"LC_CTYPE": "de_DE.UTF-8", "LANG": "C"}, true},
		{map[string]string{}, false},
	} {
		if got := utf8Locale(env(c.env)); got != c.want {
			t.Errorf("utf8Locale(%v) = %v, want %v", c.env, got, c.want)
		}
	}
}

// pids reduces table output to its sorted, unique PIDs.
func pids(t *testing.T, out string) string {
	t.Helper()
	seen := map[string]bool{}
	var got []string
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n")[1:] {
		if p := strings.Fields(l)[1]; !seen[p] {
			seen[p] = true
			got = append(got, p)
		}
	}
	sort.Strings(got)
	return strings.Join(got, " ")
}

// TestSelections runs lsof's options on the fixture tree: ORed by
// default, ANDed with -a, ^ excluding.
func TestSelections(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // the PIDs listed
	}{
		{[]string{"-c", "sys"}, "1"},
		{[]string{"-c", "/^(sshd|cat)$/"}, "300"},
		{[]string{"-c", "sys", "-c", "post"}, "1 500"},
		{[]string{"-c", "^sys", "-c", "^rs"}, "300 400 500"},
		{[]string{"-u", "1000,999"}, "400 500"},
		{[]string{"-u", "^0"}, "400 500"},
		{[]string{"-p", "^1,^200"}, "300 400 500"},
		{[]string{"-c", "sshd", "/mnt/nfs"}, "300 400"},           // OR
		{[]string{"-a", "-c", "sshd", "/mnt/nfs"}, ""},            // AND: nothing
		{[]string{"-a", "-u", "1000", "/mnt/nfs"}, "400"},         // AND
		{[]string{"-a", "-p", "200", "-d", "1-2", "/"}, "200"},    // AND of three
		{[]string{"-u", "999", "-d", "cwd"}, "1 200 300 400 500"}, // OR: every cwd
	} {
		out, err := run(t, c.args...)
		var code cli.ExitCode
		if c.want == "" {
			if !errors.As(err, &code) || code != 1 || out != "" {
				t.Errorf("%q: got %v and %q, want exit 1 and no output", c.args, err, out)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if got := pids(t, out); got != c.want {
			t.Errorf("%q: got pids %s, want %s\n%s", c.args, got, c.want, out)
		}
	}
	// -a -p 200 -d 1-2 /: exactly the two descriptors.
	out, _ := run(t, "-a", "-p", "200", "-d", "1-2", "/")
	if got, want := strings.Count(out, "\n"), 3; got != want {
		t.Errorf("-a -p 200 -d 1-2 /: %d lines, want %d:\n%s", got, want, out)
	}
}

func TestTerse(t *testing.T) {
	out, err := run(t, "-t", "/")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out, "1\n200\n300\n400\n500\n"; got != want {
		t.Errorf("-t /: got %q, want %q", got, want)
	}
	out, err = run(t, "-ta", "-c", "nfs", "/mnt/nfs")
	if got, want := out, "400\n"; err != nil || got != want {
		t.Errorf("-ta -c nfs /mnt/nfs: got %q, %v, want %q", got, err, want)
	}
	var code cli.ExitCode
	if out, err = run(t, "-t", "-p", "99999"); out != "" || !errors.As(err, &code) || code != 1 {
		t.Errorf("-t -p 99999: got %q, %v, want nothing and exit 1", out, err)
	}
}

func TestColumnsOptions(t *testing.T) {
	out, err := run(t, "-l", "+c", "3", "-a", "-p", "400", "-d", "cwd")
	if err != nil {
		t.Fatal(err)
	}
	// lsof -l prints uids 8 wide and right-aligned, the header too; +c
	// below the title's width is raised to it.
	want := "COMMAND PID     USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\n" +
		"nfsread 400     1000  cwd    DIR   0,50               /mnt/nfs/home\n"
	if out != want {
		t.Errorf("-l +c 3:\ngot:\n%s\nwant:\n%s", out, want)
	}
	out, err = run(t, "+c0", "-a", "-p", "400", "-d", "cwd")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.Split(out, "\n")[1], "nfsreader 400 ") {
		t.Errorf("+c0: %q", out)
	}
}

// TestTableEscapesAndAligns: names are escaped in the table, USER is
// right-aligned like lsof's, JSON keeps the raw name.
func TestTableEscapesAndAligns(t *testing.T) {
	rows := []row{
		{Command: "evil\x1bcmd", PID: 7, User: "root", FD: "3r", Mode: "r", Type: "REG", Device: "7,0", SizeOff: "1", Node: "24", Name: "/m/nl\nname", fdNum: 3},
		{Command: "sl", PID: 8, User: "daemon", FD: "4r", Mode: "r", Type: "REG", Device: "7,0", SizeOff: "1", Node: "25", Name: "/m/esc\x1b[31mname", fdNum: 4},
	}
	var b bytes.Buffer
	if err := (table{cmdLimit: defaultCmdWidth}).writeTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	want := "COMMAND   PID   USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\n" +
		"evil^[cmd   7   root    3r   REG    7,0        1   24 /m/nl\\nname\n" +
		"sl          8 daemon    4r   REG    7,0        1   25 /m/esc^[[31mname\n"
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	if err := writeJSON(&b, rows[:1]); err != nil {
		t.Fatal(err)
	}
	var j jsonRow
	if err := json.Unmarshal(b.Bytes(), &j); err != nil || j.Name != "/m/nl\nname" {
		t.Errorf("json name = %q (%v), want the raw name", j.Name, err)
	}
}

// TestJSONNumbers: numbers are JSON numbers, and fields that do not
// apply are left out.
func TestJSONNumbers(t *testing.T) {
	out, err := run(t, "--json", "-a", "-p", "1,200,400")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got[m["command"].(string)+" "+m["fd"].(string)] = m
	}
	for key, want := range map[string]map[string]any{
		"rsyslogd 1w":   {"pid": 200.0, "uid": 0.0, "fd_num": 1.0, "major": 8.0, "minor": 2.0, "offset": 642199.0, "node": 11587.0, "device": "8,2"},
		"systemd txt":   {"pid": 1.0, "node": 1234.0, "size": nil, "fd_num": nil, "offset": nil},
		"nfsreader cwd": {"major": 0.0, "minor": 50.0, "size": nil, "node": nil, "uid": 1000.0},
		"rsyslogd 6r":   {"type": "FIFO", "offset": 0.0, "node": 5555.0, "major": nil},
	} {
		m, ok := got[key]
		if !ok {
			t.Errorf("no row %q in:\n%s", key, out)
			continue
		}
		for field, w := range want {
			if g := m[field]; !reflect.DeepEqual(g, w) {
				t.Errorf("%s: %s = %#v, want %#v", key, field, g, w)
			}
		}
	}
}

// TestDirSelectors: +d takes the directory and its entries, +D the whole
// tree, both only on the directory's filesystem and never deleted files.
func TestDirSelectors(t *testing.T) {
	snap, err := procscan.Scan(fixture, procscan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fake := func(p string) (uint64, uint64, bool, error) {
		switch p {
		case "/var/log", "/var", "/lib64":
			return 8<<8 | 2, 1, true, nil
		}
		return 0, 0, false, errors.New("no such file")
	}
	for _, c := range []struct {
		dirs []dirOpt
		want []string
	}{
		{[]dirOpt{{"/var/log", false}}, []string{"200 1w /var/log/messages", "200 2w /var/log/cron", "500 4w /var/log/pg.log"}},
		{[]dirOpt{{"/var", false}}, nil},
		{[]dirOpt{{"/var", true}}, []string{"200 1w /var/log/messages", "200 2w /var/log/cron", "500 4w /var/log/pg.log"}},
		{[]dirOpt{{"/lib64", true}}, []string{"1 mem /lib64/libc-2.13.so", "200 mem /lib64/libc-2.13.so", "300 mem /lib64/libc-2.13.so", "400 mem /lib64/libc-2.13.so"}},
	} {
		sel, err := dirSelectors(snap.Self, c.dirs, fake)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range listRows(snap, newFilter(&options{}, sel, nil, nil), newUsers(false), &kernelDevs{}) {
			got = append(got, itoa(r.PID)+" "+r.FD+" "+r.Name)
		}
		sort.Strings(got)
		same(t, "dirs "+c.dirs[0].path, got, c.want)
	}
}

func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"-nP /", "-ta -c sl /m", "+c0 -u root,^1", "-d ^3,^4 +D /var", "-c /a(b)?/i", "-p1,^2 --json", "-- -x", "-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, " ")
		o, err := parseArgs(args)
		if err != nil {
			if !errors.Is(err, cli.ErrUsage) && !errors.Is(err, cli.ErrHelp) {
				t.Fatalf("%q: error %v is neither usage nor help", args, err)
			}
			return
		}
		if o.and && !o.selects() {
			t.Fatalf("%q: -a accepted without a selection", args)
		}
		if o.cmdWidth < 0 {
			t.Fatalf("%q: width %d", args, o.cmdWidth)
		}
		for _, p := range append(o.pids, o.notPIDs...) {
			if p <= 0 {
				t.Fatalf("%q: pid %d", args, p)
			}
		}
		if o.fds.set {
			for _, r := range o.fds.ranges {
				if r[0] < 0 || r[1] < r[0] {
					t.Fatalf("%q: range %v", args, r)
				}
			}
		}
	})
}
