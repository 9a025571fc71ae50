package swap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/ext"
	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// loopExt4 makes an ext4 of size MiB on a loop device, fills it with
// fill MiB of files and mounts it in a private mount namespace at a
// temporary directory.
func loopExt4(t *testing.T, size, fill int) (dev, mnt string) {
	t.Helper()
	testutil.RequireTool(t, "mkfs.ext4", "e2fsck", "losetup")
	dir := t.TempDir()
	img := filepath.Join(dir, "root.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(img, int64(size)<<20)
	dev = testutil.Loop(t, img)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	mnt = filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount(dev, mnt, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	buf := make([]byte, 1<<20)
	for i := range fill {
		for j := range buf {
			buf[j] = byte(i*31 + j*7)
		}
		if err := os.WriteFile(filepath.Join(mnt, fmt.Sprintf("f%03d", i)), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	unix.Sync()
	return dev, mnt
}

// busyWriter starts a process that appends fsync'd lines to a log,
// rewrites files in place and grows another on mnt until stopped; it
// must be started from the mount namespace that has mnt.
func busyWriter(t *testing.T, mnt string) (stop func() int) {
	script := `i=0; trap 'echo $i; exit 0' TERM
while :; do
  echo "line $i $(date +%s.%N)" >> log
  dd if=/dev/urandom of=f00$((i % 10)) bs=4k count=$((1 + i % 8)) seek=$((i % 200)) conv=notrunc,fsync status=none
  dd if=/dev/zero of=grow bs=64k count=1 oflag=append conv=notrunc status=none
  sync log
  i=$((i + 1))
done`
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = mnt
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() int {
		cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
		var n int
		fmt.Sscan(out.String(), &n)
		return n
	}
}

// precopyRuntime is a runtime whose report names dev as the root.
func precopyRuntime(t *testing.T, dev string) *Runtime {
	var st unix.Stat_t
	unix.Stat(dev, &st)
	r := &Report{}
	r.Root.Device, r.Root.FSType = dev, "ext4"
	f, _ := os.Open(dev)
	sb, err := ext.ReadSuperblock(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	r.Root.Size = sb.Size()
	log := &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine log:\n%s", log.String())
		}
	})
	return &Runtime{Report: r, SysRoot: "/sys", ProcRoot: "/proc", Out: log}
}

// TestPrecopyLoopWithWriter runs the precopy and copy steps on a loop
// ext4 that a process writes throughout the pre-copy, with / read-only
// only for the copy step, for each way of tracking changes. The copy
// must equal the source over the used area and pass e2fsck -fn. It
// reports the frozen round's time next to a full frozen copy's.
func TestPrecopyLoopWithWriter(t *testing.T) {
	testutil.RequireRoot(t)
	for _, tc := range []struct {
		name  string
		noBPF bool
		how   string
	}{
		{"bpf", false, "tracked"},
		{"hash", true, "hashed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.InMountNS(t, func() {
				dev, mnt := loopExt4(t, 512, 200)
				target := testutil.Loop(t, func() string {
					p := filepath.Join(t.TempDir(), "target.img")
					os.WriteFile(p, nil, 0o600)
					os.Truncate(p, 512<<20)
					return p
				}())
				rt := precopyRuntime(t, dev)
				s := &State{Opts: DefaultOptions(target)}
				s.Opts.NoBPF = tc.noBPF
				pre := &precopy{rt: rt}
				cp := &copyRoot{rt, pre}
				t.Logf("plan: %s", pre.Describe(s))
				t.Logf("plan: %s", cp.Describe(s))
				stop := busyWriter(t, mnt)
				ctx := context.Background()
				start := time.Now()
				if err := pre.Do(ctx, s); err != nil {
					t.Fatal(err)
				}
				live := time.Since(start)
				writes := stop()
				freeze := time.Now()
				if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
					t.Fatal(err)
				}
				if err := cp.Do(ctx, s); err != nil {
					t.Fatal(err)
				}
				frozen := time.Since(freeze)
				last := s.Rounds[len(s.Rounds)-1]
				if last.How != tc.how {
					t.Errorf("frozen round %s, want %s", last.How, tc.how)
				}
				compareUsed(t, dev, target)
				if out, err := exec.Command("e2fsck", "-fn", target).CombinedOutput(); err != nil {
					t.Errorf("e2fsck -fn of the copy: %v\n%s", err, out)
				}
				// The whole used area copied frozen, as before the pre-copy.
				full := &copyRoot{rt: rt}
				fs := &State{Opts: DefaultOptions(target)}
				fstart := time.Now()
				if err := full.Do(ctx, fs); err != nil {
					t.Fatal(err)
				}
				t.Logf("%d writer iterations during %s live; frozen: remount-ro + copy %s (%s); a full frozen copy+verify: %s",
					writes, live.Round(time.Millisecond), frozen.Round(time.Millisecond), last, time.Since(fstart).Round(time.Millisecond))
				for _, r := range s.Rounds {
					t.Logf("  %s", r)
				}
			})
		})
	}
}

// compareUsed compares source and target over the source's used area.
func compareUsed(t *testing.T, src, dst string) {
	t.Helper()
	a, _ := os.Open(src)
	b, _ := os.Open(dst)
	defer a.Close()
	defer b.Close()
	used, err := ext.UsedExtents(a)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, e := range used {
		x, y := make([]byte, e.Len), make([]byte, e.Len)
		a.ReadAt(x, e.Off)
		b.ReadAt(y, e.Off)
		if !bytes.Equal(x, y) {
			t.Fatalf("target differs in the used extent %v", e)
		}
		total += e.Len
	}
	if total == 0 {
		t.Fatal("no used area")
	}
}
