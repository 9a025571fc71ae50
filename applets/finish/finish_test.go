package finish

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
)

func TestUsage(t *testing.T) {
	if !strings.HasPrefix(Usage, "usage: rootswap finish ") {
		t.Errorf("Usage does not start with the usage line: %q", Usage)
	}
	for _, opt := range []string{"--old", "--wipe-old", "--grub-install", "--dry-run", "--yes", "--force"} {
		if !strings.Contains(Usage, opt) {
			t.Errorf("Usage does not explain %s", opt)
		}
	}
	tests := [][]string{{"extra"}, {"--no-such-flag"}, {"--dry-run", "/dev/sda2"}}
	for _, args := range tests {
		var out bytes.Buffer
		env := &cli.Env{Stdout: &out, Stderr: &out, ProcRoot: t.TempDir(), SysRoot: t.TempDir()}
		err := Main(context.Background(), env, args)
		if !errors.Is(err, cli.ErrUsage) {
			t.Errorf("finish %q: %v, want a usage error", args, err)
		}
	}
}
