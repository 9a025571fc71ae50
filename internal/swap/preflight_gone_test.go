package swap

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGone(t *testing.T) {
	proc := t.TempDir()
	if err := os.Mkdir(filepath.Join(proc, "42"), 0o755); err != nil {
		t.Fatal(err)
	}
	if gone(proc, 42) {
		t.Errorf("gone(42) with /proc/42 present")
	}
	if !gone(proc, 43) {
		t.Errorf("gone(43) with no /proc/43: false")
	}
}
