package rescue

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
)

// The testdata/*.txtar files are scripts: the archive's comment is run with
// sh -c in a fresh directory $WORK holding the archive's other files, with
// PATH empty. The files "stdout", "stderr" and "status" (default 0) are
// what must come out; "stdin" is fed in. A "proc/" tree in the archive
// becomes the shell's /proc root; "\0" in a cmdline file is a NUL byte. "$WORK" in expected output stands for the
// directory, "$UID" and "$GID" the test's ids. Files get the mtime 2012-01-02 03:04:05 UTC and TZ is UTC, so
// ls -l is stable.

// archive is a parsed txtar file.
type archive struct {
	comment string
	files   []archiveFile
}

type archiveFile struct {
	name string
	data string
}

// parseTxtar reads the txtar format: a comment, then files each opened
// by a "-- NAME --" line.
func parseTxtar(data string) archive {
	var a archive
	cur := &a.comment
	for len(data) > 0 {
		line, rest, _ := strings.Cut(data, "\n")
		if name, ok := txtarMarker(line); ok {
			a.files = append(a.files, archiveFile{name: name})
			cur = &a.files[len(a.files)-1].data
		} else {
			*cur += line + "\n"
		}
		data = rest
	}
	return a
}

func txtarMarker(line string) (string, bool) {
	if !strings.HasPrefix(line, "-- ") || !strings.HasSuffix(line, " --") || len(line) < 7 {
		return "", false
	}
	return strings.TrimSpace(line[3 : len(line)-3]), true
}

var fixtureTime = time.Date(2012, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeApplets is the table the tests hand the shell: hello proves applets
// run in-process (same pid, shell's streams and environment).
func fakeApplets(testPID int) []cli.Applet {
	hello := func(ctx context.Context, env *cli.Env, args []string) error {
		fmt.Fprintf(env.Stdout, "hello from applet: args=%q in-process=%v GREETING=%q\n", args, os.Getpid() == testPID, env.Getenv("GREETING"))
		for _, a := range args {
			switch a {
			case "stdin":
				b, _ := io.ReadAll(env.Stdin)
				fmt.Fprintf(env.Stdout, "stdin=%q\n", b)
			case "stderr":
				fmt.Fprintln(env.Stderr, "hello on stderr")
			case "fail":
				return errors.New("asked to fail")
			case "exit3":
				return cli.ExitCode(3)
			case "bad":
				return cli.UsageError("bad is not an option")
			}
		}
		return nil
	}
	return []cli.Applet{
		{Name: "hello", Aliases: []string{"hi"}, Summary: "test applet", Usage: "usage: rootswap hello [ARG]...\n", Main: hello},
		{Name: "sh", Summary: "rescue shell", Usage: "usage: rootswap sh\n", Main: func(ctx context.Context, env *cli.Env, args []string) error {
			return Run(ctx, env, Options{}, args)
		}},
	}
}

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.txtar: %v", err)
	}
	for _, file := range files {
		file, _ := filepath.Abs(file)
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txtar"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			runArchive(t, file, parseTxtar(string(data)))
		})
	}
}

func runArchive(t *testing.T, file string, a archive) {
	work := t.TempDir()
	want := map[string]string{"status": "0\n"}
	procRoot := "/proc"
	var stdin string
	for _, f := range a.files {
		switch f.name {
		case "stdout", "stderr", "status":
			want[f.name] = f.data
			continue
		case "stdin":
			stdin = f.data
			continue
		}
		p := filepath.Join(work, f.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		content := f.data
		if strings.HasPrefix(f.name, "proc/") && strings.HasSuffix(f.name, "/cmdline") {
			// cmdline separates arguments with NUL bytes and has no newline.
			content = strings.ReplaceAll(strings.TrimSuffix(content, "\n"), `\0`, "\x00")
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, fixtureTime, fixtureTime); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(f.name, "proc/") {
			procRoot = filepath.Join(work, "proc")
		}
	}
	var stdout, stderr bytes.Buffer
	env := &cli.Env{
		Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		ProcRoot: procRoot, SysRoot: "/sys", Now: time.Now,
		Getenv:  func(string) string { return "" },
		Applets: fakeApplets(os.Getpid()),
	}
	opts := Options{
		Environ: []string{"PATH=", "TZ=UTC", "HOME=" + work, "WORK=" + work},
		Dir:     work,
		reboot: func(cmd int) error {
			fmt.Fprintf(&stdout, "reboot(%#x) called\n", cmd)
			return nil
		},
	}
	err := Run(context.Background(), env, opts, []string{"-c", a.comment})
	status := 0
	var code cli.ExitCode
	switch {
	case errors.As(err, &code):
		status = int(code)
	case err != nil:
		t.Fatalf("Run: %v", err)
	}
	got := map[string]string{"stdout": stdout.String(), "stderr": stderr.String(), "status": strconv.Itoa(status) + "\n"}
	if *update {
		writeArchive(t, file, a, got, work)
		return
	}
	for _, name := range []string{"stdout", "stderr", "status"} {
		w := strings.NewReplacer("$WORK", work, "$UID", strconv.Itoa(os.Getuid()), "$GID", strconv.Itoa(os.Getgid())).Replace(want[name])
		if got[name] != w {
			t.Errorf("script:\n%s\n%s: got\n%s\nwant\n%s", a.comment, name, got[name], w)
		}
	}
}

// update rewrites the expected files from what the scripts print; review
// the diff before committing it.
var update = flag.Bool("update", false, "rewrite testdata/*.txtar expectations from the output")

func writeArchive(t *testing.T, file string, a archive, got map[string]string, work string) {
	var b strings.Builder
	b.WriteString(a.comment)
	for _, f := range a.files {
		if f.name == "stdout" || f.name == "stderr" || f.name == "status" {
			continue
		}
		fmt.Fprintf(&b, "-- %s --\n%s", f.name, f.data)
	}
	for _, name := range []string{"stdout", "stderr", "status"} {
		fmt.Fprintf(&b, "-- %s --\n%s", name, strings.ReplaceAll(got[name], work, "$WORK"))
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseTxtar(t *testing.T) {
	a := parseTxtar("echo hi\n-- stdout --\nhi\n-- dir/f --\nx\ny\n")
	if a.comment != "echo hi\n" || len(a.files) != 2 || a.files[0].name != "stdout" || a.files[0].data != "hi\n" || a.files[1].name != "dir/f" || a.files[1].data != "x\ny\n" {
		t.Errorf("parseTxtar: got %+v", a)
	}
}
