package swap

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rootswap/rootswap/internal/mountops"
)

// mount-new mounts the target by its canonical name, not by the link
// given after --to: the kernel keeps the string, and findmnt shows it.
func TestMountNewCanonicalSource(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"dev/disk/by-uuid", "sys", "newroot/sbin"} {
		if err := os.MkdirAll(filepath.Join(d, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"dev/sdb1", "newroot/sbin/init"} {
		if err := os.WriteFile(filepath.Join(d, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../../sdb1", filepath.Join(d, "dev/disk/by-uuid/1234")); err != nil {
		t.Fatal(err)
	}
	fake := &mountops.Fake{}
	rt := &Runtime{SysRoot: filepath.Join(d, "sys"), Mounter: fake, Report: &Report{}}
	rt.Report.Root.FSType, rt.Report.Root.Mount.FSType = "ext4", "ext4"
	s := &State{Opts: DefaultOptions(filepath.Join(d, "dev/disk/by-uuid/1234"))}
	s.Opts.NewRoot = filepath.Join(d, "newroot")
	if err := (&mountNew{rt}).Do(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	want := []string{`mount("` + filepath.Join(d, "dev/sdb1") + `", "` + s.Opts.NewRoot + `", "ext4", 0, "")`}
	if got := fake.Strings(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls %q\nwant %q", got, want)
	}
}
