package swap

import (
	"flag"
	"github.com/rootswap/rootswap/internal/cli"
	"slices"
	"strings"
	"testing"
)

// File mode's step list: mkfs before the pre-copy, no block-level step.
func TestFileModeSteps(t *testing.T) {
	var names []string
	for _, st := range Steps(&Runtime{Report: &Report{Mkfs: "xfs"}}) {
		names = append(names, st.Name())
	}
	got := strings.Join(names[:10], " ")
	want := "prepare mkfs precopy stop-services unmount-extra swapoff remount-ro copy mount-new pivot"
	if got != want {
		t.Errorf("file mode steps start %q, want %q", got, want)
	}
	for _, n := range []string{"fsck", "resize", "new-uuid", "grow", "fsck-old"} {
		if slices.Contains(names, n) {
			t.Errorf("file mode has the block step %s: %v", n, names)
		}
	}
	// Block mode is unchanged.
	var block []string
	for _, st := range Steps(&Runtime{}) {
		block = append(block, st.Name())
	}
	if slices.Contains(block, "mkfs") || !slices.Contains(block, "fsck") {
		t.Errorf("block mode steps: %v", block)
	}
}

func TestCopyFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		mkfs string // "" means a usage error is wanted when bad is set
		bad  bool
	}{
		{[]string{"--to", "/dev/x"}, "", false},
		{[]string{"--to", "/dev/x", "--copy", "files"}, "-", false},
		{[]string{"--to", "/dev/x", "--copy", "files", "--mkfs", "btrfs"}, "btrfs", false},
		{[]string{"--to", "/dev/x", "--mkfs", "xfs"}, "", true},
		{[]string{"--to", "/dev/x", "--copy", "inodes"}, "", true},
		{[]string{"--to", "/dev/x", "--copy", "files", "--backup", "/b.zst"}, "", true},
		// The lifeline listens on IP addresses only (it never resolves).
		{[]string{"--to", "/dev/x", "--lifeline-listen", "localhost"}, "", true},
		{[]string{"--to", "/dev/x", "--lifeline-listen", "[::1]:2200"}, "", false},
	} {
		fs := flag.NewFlagSet("plan", flag.ContinueOnError)
		f := AddFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		o, err := f.Options(&cli.Env{ProcRoot: t.TempDir(), Getenv: func(string) string { return "" }})
		if (err != nil) != tc.bad || err == nil && o.Mkfs != tc.mkfs {
			t.Errorf("%v: Mkfs %q, err %v; want %q, error %v", tc.args, o.Mkfs, err, tc.mkfs, tc.bad)
		}
	}
}
