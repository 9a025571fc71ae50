package lsof

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/procscan"
)

const fixture = "../../internal/procscan/testdata/proc"

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, ProcRoot: fixture}
	err := Main(context.Background(), env, args)
	return out.String(), err
}

// triples reduces table output to sorted "PID FD NAME" lines.
func triples(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if !strings.HasPrefix(lines[0], "COMMAND ") || !strings.HasSuffix(lines[0], " NAME") {
		t.Fatalf("header = %q", lines[0])
	}
	nameAt := strings.Index(lines[0], "NAME")
	var got []string
	for _, l := range lines[1:] {
		f := strings.Fields(l[:nameAt])
		got = append(got, f[1]+" "+f[3]+" "+l[nameAt:])
	}
	sort.Strings(got)
	return got
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestRootFilesystem(t *testing.T) {
	out, err := run(t, "/")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "lsof /", triples(t, out), []string{
		"1 cwd /", "1 rtd /", "1 txt /usr/lib/systemd/systemd", "1 mem /lib64/libc-2.13.so",
		"200 cwd /", "200 rtd /", "200 txt /usr/sbin/rsyslogd", "200 mem /lib64/libc-2.13.so",
		"200 1w /var/log/messages", "200 2w /var/log/cron", "200 4r /etc/mtab", "200 5u /var/log/old.log (deleted)",
		"300 cwd /", "300 rtd /", "300 txt /usr/sbin/sshd (deleted)", "300 mem /lib64/libc-2.13.so",
		"300 DEL /lib64/libdevmapper.so.1.02",
		// Bound relative to sshd's cwd "/": on the root filesystem.
		"300 4u /sock with space.sock type=STREAM (LISTEN) (bound here; lsof omits)",
		"400 rtd /", "400 txt /usr/bin/cat", "400 mem /lib64/libc-2.13.so",
		// pid 500 (its own namespace): root is 8,2, /data is 8,17;
		// fd 4 came through mount 39 of its namespace, the same 8,2.
		"500 rtd /", "500 txt /usr/bin/postgres", "500 4w /var/log/pg.log",
	})
}

func TestDeletedAndWritable(t *testing.T) {
	out, err := run(t, "--deleted", "/")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "lsof --deleted /", triples(t, out), []string{
		"200 5u /var/log/old.log (deleted)", "300 txt /usr/sbin/sshd (deleted)", "300 DEL /lib64/libdevmapper.so.1.02",
	})
	out, err = run(t, "/", "--writable") // options may follow operands
	if err != nil {
		t.Fatal(err)
	}
	same(t, "lsof / --writable", triples(t, out), []string{
		"200 1w /var/log/messages", "200 2w /var/log/cron", "200 5u /var/log/old.log (deleted)",
		"300 4u /sock with space.sock type=STREAM (LISTEN) (bound here; lsof omits)", "500 4w /var/log/pg.log",
	})
}

func TestNFSAndTmpfs(t *testing.T) {
	out, err := run(t, "/mnt/nfs")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "lsof /mnt/nfs", triples(t, out), []string{
		"400 cwd /mnt/nfs/home", "400 3r /mnt/nfs/home/file", "400 4r /mnt/nfs/home/dir",
	})
	// Not stat'ed: the offset stands in SIZE/OFF, the type comes from
	// O_DIRECTORY or is unknown.
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"3r unknown 0,50 0t77 77 /mnt/nfs/home/file", "4r DIR 0,50 0t0 78 /mnt/nfs/home/dir"} {
		if !strings.Contains(flat, want) {
			t.Errorf("lsof /mnt/nfs lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, "/run")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "lsof /run", triples(t, out), []string{"1 3u /run/systemd/notify type=STREAM (LISTEN) (bound here; lsof omits)"})
}

func TestAllAndPID(t *testing.T) {
	out, err := run(t, "-p", "1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, "lsof -p 1", triples(t, out), []string{
		"1 cwd /", "1 rtd /", "1 txt /usr/lib/systemd/systemd", "1 mem /lib64/libc-2.13.so",
		"1 0u /dev/null", "1 3u /run/systemd/notify type=STREAM (LISTEN)", "1 4u [eventpoll]",
	})
	for _, want := range []string{" DEL ", " cwd ", "  5u ", " 1w "} {
		all, _ := run(t)
		if !strings.Contains(all, want) {
			t.Errorf("lsof without operands lacks %q", want)
		}
	}
}

func TestJSON(t *testing.T) {
	out, err := run(t, "--json", "--deleted", "-p", "200,300", "/")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r jsonRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if !r.Deleted {
			t.Errorf("--deleted row not deleted: %+v", r)
		}
		got = append(got, r.Command+" "+r.FD+" "+r.Type+" "+r.Device+" "+r.Name)
	}
	sort.Strings(got)
	same(t, "--json", got, []string{
		"rsyslogd 5u unknown 8,2 /var/log/old.log (deleted)",
		"sshd DEL REG 8,2 /lib64/libdevmapper.so.1.02",
		"sshd txt REG 8,2 /usr/sbin/sshd (deleted)",
	})
}

func TestFileSelector(t *testing.T) {
	snap, err := procscan.Scan(fixture, procscan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fake := func(p string) (uint64, uint64, bool, error) {
		switch p {
		case "/var/log/messages":
			return 8<<8 | 2, 11587, false, nil
		case "/lib64/libc-2.13.so":
			return 8<<8 | 2, 99218, false, nil
		case "/mnt/nfs/home":
			return 0<<8 | 50, 9, true, nil
		}
		return 0, 0, false, errors.New("no such file")
	}
	sel, err := selectors(snap.Self, []string{"/var/log/messages", "/lib64/libc-2.13.so", "/mnt/nfs/home"}, fake)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range listRows(snap, newFilter(&options{}, sel, nil, nil), newUsers(false), &kernelDevs{}) {
		got = append(got, strings.Join([]string{itoa(r.PID), r.FD, r.Name}, " "))
	}
	sort.Strings(got)
	same(t, "file selectors", got, []string{
		"200 1w /var/log/messages",
		"1 mem /lib64/libc-2.13.so", "200 mem /lib64/libc-2.13.so", "300 mem /lib64/libc-2.13.so", "400 mem /lib64/libc-2.13.so",
		"400 cwd /mnt/nfs/home", // matched by name: cwd is never stat'ed
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestUsageAndNothingFound(t *testing.T) {
	if _, err := run(t, "-p", "x"); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("-p x: %v, want a usage error", err)
	}
	if _, err := run(t, "--bogus"); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("--bogus: %v, want a usage error", err)
	}
	var code cli.ExitCode
	if _, err := run(t, "-p", "99999"); !errors.As(err, &code) || code != 1 {
		t.Errorf("nothing found: %v, want exit status 1 like lsof", err)
	}
}

func TestTableLayout(t *testing.T) {
	var b bytes.Buffer
	table{cmdLimit: defaultCmdWidth}.writeTable(&b, []row{
		{Command: "sl", PID: 9319, User: "root", FD: "cwd", Type: "DIR", Device: "0,39", SizeOff: "120", Node: "1", Name: "/tmp/lx/m"},
		{Command: "sl", PID: 9319, User: "root", FD: "3r", Mode: "r", Type: "REG", Device: "0,39", SizeOff: "3", Node: "2", Name: "/tmp/lx/m/r"},
		{Command: "python3", PID: 9320, User: "root", FD: "DEL", Type: "REG", Device: "0,39", Node: "7", Name: "/tmp/lx/m/mm"},
	})
	// As printed by lsof 4.95 for the same files.
	want := "COMMAND  PID USER   FD   TYPE DEVICE SIZE/OFF NODE NAME\n" +
		"sl      9319 root  cwd    DIR   0,39      120    1 /tmp/lx/m\n" +
		"sl      9319 root    3r   REG   0,39        3    2 /tmp/lx/m/r\n" +
		"python3 9320 root  DEL    REG   0,39             7 /tmp/lx/m/mm\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
}
