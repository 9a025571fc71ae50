package applets

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
)

func testEnv() (*cli.Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	env := cli.OSEnv()
	env.Stdout, env.Stderr, env.Stdin = &out, &errb, strings.NewReader("")
	env.Applets = []cli.Applet{
		{Name: "hello", Aliases: []string{"hi"}, Summary: "says hello", Usage: "usage: rootswap hello [-n NAME]\n",
			Main: func(ctx context.Context, env *cli.Env, args []string) error {
				fs := cli.FlagSet(env, "hello")
				name := fs.String("n", "world", "")
				rest, err := cli.Parse(fs, args)
				if err != nil {
					return err
				}
				if len(rest) > 0 && rest[0] == "fail" {
					return errors.New("it failed")
				}
				if len(rest) > 0 && rest[0] == "three" {
					return cli.ExitCode(3)
				}
				env.Printf("hello %s %v\n", *name, rest)
				return nil
			}},
	}
	return env, &out, &errb
}

func TestDispatch(t *testing.T) {
	for _, tc := range []struct {
		argv           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"rootswap", "hello", "-n", "x"}, 0, "hello x []\n", ""},
		{[]string{"/usr/local/bin/hello", "a", "-n", "y"}, 0, "hello y [a]\n", ""}, // by symlink name, flags after operands
		{[]string{"hi"}, 0, "hello world []\n", ""},                                // alias
		{[]string{"rootswap", "hello", "fail"}, 1, "", "rootswap hello: it failed\n"},
		{[]string{"rootswap", "hello", "three"}, 3, "", ""},
		{[]string{"rootswap", "hello", "-x"}, 2, "", "rootswap hello: flag provided but not defined: -x\nusage: rootswap hello [-n NAME]\n"},
		{[]string{"rootswap", "hello", "--help"}, 0, "usage: rootswap hello [-n NAME]\n", ""},
		{[]string{"rootswap", "nope"}, 2, "", "rootswap: unknown applet \"nope\" (rootswap --list shows them)\n"},
		{[]string{"rootswap", "--list"}, 0, "hello\n", ""},
	} {
		env, out, errb := testEnv()
		code := Dispatch(context.Background(), env, tc.argv)
		if code != tc.code || out.String() != tc.stdout || errb.String() != tc.stderr {
			t.Errorf("%q: code %d stdout %q stderr %q; want %d %q %q", tc.argv, code, out, errb, tc.code, tc.stdout, tc.stderr)
		}
	}
}

func TestHelpListsEveryApplet(t *testing.T) {
	var out bytes.Buffer
	env := cli.OSEnv()
	env.Stdout = &out
	if code := Dispatch(context.Background(), env, []string{"rootswap", "--help"}); code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, a := range Table() {
		if !strings.Contains(out.String(), "  "+a.Name+" ") {
			t.Errorf("help lacks %s", a.Name)
		}
		if !strings.HasPrefix(a.Usage, "usage: rootswap "+a.Name) {
			t.Errorf("%s: usage does not start with its usage line: %q", a.Name, a.Usage)
		}
	}
}

func TestInstall(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "rootswap")
	os.WriteFile(self, nil, 0o755)
	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	env, out, errb := testEnv()
	env.Self = self
	if code := Dispatch(context.Background(), env, []string{"rootswap", "--install", bin}); code != 0 {
		t.Fatalf("install: %d %s", code, errb)
	}
	for _, n := range []string{"hello", "hi"} {
		if got, _ := os.Readlink(filepath.Join(bin, n)); got != self {
			t.Errorf("%s -> %q, want %q", n, got, self)
		}
	}
	// Idempotent.
	out.Reset()
	if code := Dispatch(context.Background(), env, []string{"rootswap", "--install", bin}); code != 0 || !strings.Contains(out.String(), "(0 new)") {
		t.Errorf("second install: %d %q", code, out)
	}
	// A foreign file is never replaced without --force, and nothing changes.
	os.Remove(filepath.Join(bin, "hi"))
	os.WriteFile(filepath.Join(bin, "hi"), []byte("mine"), 0o644)
	os.Remove(filepath.Join(bin, "hello"))
	if code := Dispatch(context.Background(), env, []string{"rootswap", "--install", bin}); code != 1 {
		t.Errorf("install over a file: exit %d, want 1", code)
	}
	if _, err := os.Lstat(filepath.Join(bin, "hello")); err == nil {
		t.Error("a refused install still made links")
	}
	if code := Dispatch(context.Background(), env, []string{"rootswap", "--install", bin, "--force"}); code != 0 {
		t.Errorf("install --force: exit %d", code)
	}
	if got, _ := os.Readlink(filepath.Join(bin, "hi")); got != self {
		t.Errorf("--force did not replace hi: %q", got)
	}
	if code := Dispatch(context.Background(), env, []string{"rootswap", "--install"}); code != 2 {
		t.Errorf("install without DIR: exit %d, want 2", code)
	}
}
