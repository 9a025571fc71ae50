package mountops

import (
	"os"
	"path/filepath"
	"testing"
)

// Right after pivot_root proc is below the old root; ReadTable finds it
// there, and says so.
func TestReadTableFallsBackBelowRoot(t *testing.T) {
	dir := t.TempDir()
	const procRoot = "/rootswap-test-no-proc"
	alt := filepath.Join(dir, "old", procRoot)
	if err := os.MkdirAll(filepath.Join(alt, "thread-self"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/systemd-after-pivot.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(alt, "thread-self/mountinfo"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	tab, from, err := ReadTable(procRoot, filepath.Join(dir, "missing"), filepath.Join(dir, "old"))
	if err != nil {
		t.Fatal(err)
	}
	if from != alt || len(tab) != 18 {
		t.Errorf("read %d mounts from %s, want 18 from %s", len(tab), from, alt)
	}
	if _, _, err := ReadTable(procRoot, filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("no mountinfo anywhere: err = %v, want the first not-exist error", err)
	}
}
