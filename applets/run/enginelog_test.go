package run

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
)

// The engine's log (its stdout, where the lifeline logs too) cannot fill
// the engine's tmpfs: after 32 MiB of log lines in an 8 MiB tmpfs the
// journal still has its room.
func TestEngineLogKeepsJournalRoom(t *testing.T) {
	dir := testutil.Tmpfs(t, "8m")
	f, err := os.OpenFile(filepath.Join(dir, "engine.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := engineLog(&cli.Env{Stdout: f, Stderr: f}, dir)
	line := strings.Repeat("lifeline: refused ssh-ed25519 key ", 10) + "\n"
	for n := 0; n < 32<<20; n += len(line) {
		if _, err := fmt.Fprint(env.Stdout, line); err != nil {
			t.Fatalf("after %d bytes: %v", n, err)
		}
	}
	if free := testutil.FreeBytes(t, dir); free < 6<<20 {
		t.Errorf("%d bytes free of 8 MiB after the flood of log lines, want the log within an eighth", free)
	}
	if err := os.WriteFile(filepath.Join(dir, "journal"), make([]byte, 4<<20), 0o600); err != nil {
		t.Errorf("the journal after the log: %v", err)
	}
}
