package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
)

func run(t *testing.T, args ...string) (string, error) {
	var out bytes.Buffer
	env := cli.OSEnv()
	env.Stdout, env.Stderr = &out, &out
	err := Main(context.Background(), env, args)
	return out.String(), err
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--to"}, {"--to", "/dev/x", "extra"}} {
		if _, err := run(t, args...); !errors.Is(err, cli.ErrUsage) {
			t.Errorf("plan %q: %v, want a usage error", args, err)
		}
	}
}

// A loop device smaller than / blocks, and the blocker names the shortfall.
func TestTooSmallTargetBlocks(t *testing.T) {
	testutil.RequireRoot(t)
	dev := testutil.Loop(t, testutil.Image(t, t.TempDir(), "small.img", 16<<20))
	out, err := run(t, "--to", dev)
	var code cli.ExitCode
	if !errors.As(err, &code) || code != 3 {
		t.Fatalf("plan --to %s: %v, want exit 3\n%s", dev, err, out)
	}
	if !strings.Contains(out, dev+" is 16 MiB, smaller than the root filesystem") || !strings.Contains(out, " short") {
		t.Errorf("no size shortfall named:\n%s", out)
	}
	jout, err := run(t, "--to", dev, "--json")
	var rep struct {
		OK     bool `json:"ok"`
		Report struct {
			Blockers []struct{ Problem, Fix string } `json:"blockers"`
		} `json:"report"`
		Steps []struct{ Name string } `json:"steps"`
	}
	if jerr := json.Unmarshal([]byte(jout), &rep); jerr != nil {
		t.Fatalf("--json: %v\n%s", jerr, jout)
	}
	if rep.OK || len(rep.Report.Blockers) == 0 || len(rep.Steps) == 0 || rep.Steps[0].Name != "prepare" {
		t.Errorf("--json report = %+v", rep)
	}
	if !errors.As(err, &code) || code != 3 {
		t.Errorf("--json exit: %v", err)
	}
}

// A target with a filesystem on it is refused unless --force.
func TestTargetWithSignature(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "mkfs.ext4")
	img := testutil.Image(t, t.TempDir(), "fs.img", 32<<20)
	testutil.Run(t, "mkfs.ext4", "-q", "-F", img)
	dev := testutil.Loop(t, img)
	out, _ := run(t, "--to", dev)
	if !strings.Contains(out, dev+" is not empty: it holds") {
		t.Errorf("signature not reported:\n%s", out)
	}
	out, _ = run(t, "--to", dev, "--force")
	if strings.Contains(out, "is not empty") || !strings.Contains(out, "--force: it will be overwritten") {
		t.Errorf("--force did not turn the blocker into a warning:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join("/run/rootswap", "journal")); err == nil {
		t.Error("plan left a journal: it must change nothing")
	}
}
