package procscan

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestNarrowedScanSkipsUnmapped: a scan narrowed to a filesystem none of
// whose files is mapped skips the walk over every mapping (the kernel
// said so), and one with a mapped file, or a device node, walks it and
// finds the mapping /proc shows.
func TestNarrowedScanSkipsUnmapped(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "python3", "sh")
	testutil.InMountNS(t, func() {
		dir := t.TempDir()
		if err := unix.Mount("unmapped", dir, "tmpfs", 0, "size=8m"); err != nil {
			t.Error(err)
			return
		}
		if err := os.WriteFile(filepath.Join(dir, "f"), make([]byte, 8192), 0o644); err != nil {
			t.Error(err)
			return
		}
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			t.Error(err)
			return
		}
		start := func(args ...string) *exec.Cmd {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Dir = dir
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				t.Fatalf("%v did not start: %q", args, line)
			}
			return cmd
		}
		// skipped: whether the scan left the mappings unwalked; the
		// mappings of pid it found on dir's filesystem.
		scan := func(pid int, refuse ...string) (skipped bool, maps []string) {
			opt := Options{Devs: []uint64{st.Dev}, refuse: map[string]bool{}}
			for _, r := range refuse {
				opt.refuse[r] = true
			}
			snap, err := Scan("/proc", opt)
			if err != nil {
				t.Fatal(err)
			}
			if snap.Source == "/proc" {
				t.Skipf("the BPF iterators cannot run here (%v)", snap.BPFErr)
			}
			for _, n := range snap.BPFNotes {
				if strings.HasPrefix(n, "mappings not walked") {
					skipped = true
				}
				if strings.Contains(n, "load mapped program") && len(refuse) == 0 {
					t.Skipf("the kernel refused the check: %s", n)
				}
			}
			if p := find(snap, pid); p != nil {
				for _, m := range p.Maps {
					if m.Dev() == st.Dev {
						maps = append(maps, m.Path)
					}
				}
			}
			return skipped, maps
		}

		holder := start("sh", "-c", "exec 3<f; echo ready; exec sleep 3600").Process.Pid
		if skipped, maps := scan(holder); !skipped || len(maps) != 0 {
			t.Errorf("no file mapped: skipped %v, mappings %q; want the walk skipped", skipped, maps)
		}

		// A check the kernel refuses leaves the walk.
		if skipped, _ := scan(holder, "mapped"); skipped {
			t.Errorf("the check refused: the walk was skipped")
		}

		mapper := start("python3", "-c", `
import mmap, time
f = open("f", "r+b")
m = mmap.mmap(f.fileno(), 4096)
print("ready", flush=True)
time.sleep(3600)
`)
		skipped, maps := scan(mapper.Process.Pid)
		if want := filepath.Join(dir, "f"); skipped || len(maps) != 1 || maps[0] != want {
			t.Errorf("a file mapped: skipped %v, mappings %q; want the walk and %s", skipped, maps, want)
		}

		// A device node's mappings are its device's, not the node's:
		// the check cannot rule them out.
		mapper.Process.Kill()
		mapper.Wait()
		if err := unix.Mknod(filepath.Join(dir, "zero"), unix.S_IFCHR|0o600, int(unix.Mkdev(1, 5))); err != nil {
			t.Error(err)
			return
		}
		if skipped, _ := scan(holder); skipped {
			t.Errorf("a device node on the filesystem: the walk was skipped")
		}
	})
}
