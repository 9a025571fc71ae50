package mountops

import (
	"os"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// Whatever the table, MoveSubmounts accounts for every mount below
// OLDROOT exactly once (moved, carried along, or skipped), moves only
// mounts below it, and keeps its promise not to call mount(2) in a dry run.
func FuzzMoveSubmounts(f *testing.F) {
	for _, name := range []string{"systemd-after-pivot.mountinfo", "systemd-after-pivot-back.mountinfo", "initramfs.mountinfo"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b), "/mnt/oldroot")
		f.Add(string(b), "/mnt/newroot")
	}
	f.Fuzz(func(t *testing.T, text, oldroot string) {
		tab, err := mountinfo.Parse(strings.NewReader(text))
		if err != nil {
			return
		}
		fake := &Fake{}
		moves, err := MoveSubmounts(fake, tab, oldroot, MoveOptions{DryRun: true})
		if len(fake.Calls) != 0 {
			t.Fatalf("dry run made calls: %q", fake.Strings())
		}
		if err != nil {
			return
		}
		below := tab.Below(oldroot)
		seen := 0
		for _, mv := range moves {
			seen += 1 + len(mv.Children)
			if mv.From != mv.Mount.Point || !strings.HasSuffix(mv.From, mv.To) {
				t.Fatalf("move %s -> %s of %v", mv.From, mv.To, mv.Mount)
			}
		}
		if seen != len(below) {
			t.Fatalf("%d mounts accounted for, %d below %s", seen, len(below), oldroot)
		}
	})
}
