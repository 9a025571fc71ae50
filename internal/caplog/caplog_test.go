package caplog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// 16 MiB written through a Writer that keeps 256 KiB: the file holds
// about that much, its newest lines intact, its size (the offsets a
// follower reads at) the whole.
func TestWriterKeepsTheTail(t *testing.T) {
	const keep = 256 << 10
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "engine.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := New(f, keep)
	total := 0
	for i := 0; total < 16<<20; i++ {
		n, err := fmt.Fprintf(w, "line %08d: %s\n", i, bytes.Repeat([]byte{'.'}, 100))
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if w.full {
		t.Skip("this filesystem cannot punch holes")
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != int64(total) {
		t.Errorf("size %d, want every byte written (%d)", fi.Size(), total)
	}
	if used := fi.Sys().(*syscall.Stat_t).Blocks * 512; used > keep*5/4+64<<10 {
		t.Errorf("the log holds %d bytes of storage, want about %d", used, keep)
	}
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	tail := data[len(data)-keep:]
	if bytes.IndexByte(tail, 0) >= 0 {
		t.Error("the newest keep bytes have a hole")
	}
	if !bytes.HasSuffix(tail, []byte("....\n")) || !bytes.HasPrefix(data, make([]byte, 4096)) {
		t.Errorf("want the head punched out and the tail kept: head %q, tail %q", data[:16], tail[len(tail)-16:])
	}
}
