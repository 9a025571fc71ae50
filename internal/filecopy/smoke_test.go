package filecopy

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	src := os.Getenv("SMOKE_SRC")
	if src == "" {
		t.Skip()
	}
	dst := t.TempDir()
	t0 := time.Now()
	st, err := Copy(context.Background(), dst, src, Options{})
	t.Logf("%v %v %v", st, err, time.Since(t0))
	d, err := Compare(src, dst, Content|Atime)
	t.Logf("%q %v %v", d, err, time.Since(t0))
}
