package testutil

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TreeFromText builds, in a new temporary directory, the tree a text
// fixture describes, one entry a line: "file PATH CONTENT" (a newline is
// added) or "link PATH TARGET"; blank lines and # comments are skipped.
// Fixtures of sysfs are kept this way because symlinks and ':' in names
// do not survive Go module zips.
func TreeFromText(t testing.TB, fixture string) string {
	t.Helper()
	f, err := os.Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	root := t.TempDir()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.SplitN(line, " ", 3)
		if len(fields) != 3 {
			t.Fatalf("%s: bad line %q", fixture, line)
		}
		p := filepath.Join(root, fields[1])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch fields[0] {
		case "file":
			err = os.WriteFile(p, []byte(fields[2]+"\n"), 0o644)
		case "link":
			err = os.Symlink(fields[2], p)
		default:
			t.Fatalf("%s: bad line %q", fixture, line)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return root
}
