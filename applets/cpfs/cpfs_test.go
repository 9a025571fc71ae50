package cpfs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
)

func run(args ...string) (string, error) {
	var out bytes.Buffer
	env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, ProcRoot: "/proc", SysRoot: "/sys", Now: time.Now, Getenv: os.Getenv}
	err := Main(context.Background(), env, args)
	return out.String(), err
}

func TestCopyVerifyDelta(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	os.MkdirAll(src+"/d", 0o755)
	os.WriteFile(src+"/d/f", []byte("x"), 0o640)
	os.Link(src+"/d/f", src+"/g")
	out, err := run("--verify", "--content", src, dst)
	if err != nil || !strings.Contains(out, "1 files, 1 directories, 1 hard links") || !strings.Contains(out, "verified: the trees are equal") {
		t.Fatalf("cpfs: %v\n%s", err, out)
	}
	// The source changes: the delta deletes and copies, verify agrees.
	os.Remove(src + "/g")
	os.WriteFile(src+"/new", []byte("n"), 0o600)
	out, err = run("--delta", "--verify", src, dst)
	if err != nil || !strings.Contains(out, "1 removed") || !strings.Contains(out, "verified") {
		t.Fatalf("cpfs --delta: %v\n%s", err, out)
	}
	// A difference --delta leaves without --since (a chmod keeps size
	// and mtime) fails --verify.
	os.Chmod(dst+"/new", 0o644)
	if out, err := run("--delta", "--verify", src, dst); err == nil || !strings.Contains(err.Error(), "/new: {Mode:33152") {
		t.Errorf("cpfs --delta --verify after a chmod of the copy: %v\n%s", err, out)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"a"}, {"--since", "2024-01-01T00:00:00Z", "a", "b"}, {"--delta", "--since", "yesterday", "a", "b"}} {
		if _, err := run(args...); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("cpfs %q: %v, want a usage error", args, err)
		}
	}
}
