package procscan

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// mapsHolder maps a file and a deleted file, shared and private, from a
// deleted working directory.
const mapsHolder = `
import mmap, os, time
def mapped(name, flags):
    f = open(name, "r+b")
    m = mmap.mmap(f.fileno(), 8192, flags=flags, offset=4096)
    f.close()
    return m
keep = mapped("keep", mmap.MAP_SHARED)
gone = mapped("gone", mmap.MAP_PRIVATE)
os.unlink("gone")
os.mkdir("sub")
os.chdir("sub")
os.rmdir("../sub")
print("ready", flush=True)
time.sleep(3600)
`

// memfdExec runs sleep (argv[1]) from a memfd, as some daemons re-exec
// themselves.
const memfdExec = `
import os, sys
fd = os.memfd_create("rs")
os.write(fd, open(sys.argv[1], "rb").read())
print("ready", flush=True)
os.execv("/proc/self/fd/%d" % fd, ["sleep", "3600"])
`

// TestKernelScanMatchesProc scans the same processes through the BPF
// iterators and through /proc alone; every field must agree, for
// processes holding each kind of descriptor, mapping and link.
func TestKernelScanMatchesProc(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireTool(t, "python3", "sh", "sleep")
	testutil.InMountNS(t, func() {
		dir := t.TempDir()
		if err := unix.Mount("kscan", dir, "tmpfs", 0, "size=16m"); err != nil {
			t.Error(err)
			return
		}
		for _, name := range []string{"r", "w", "del", "keep", "gone"} {
			if err := os.WriteFile(filepath.Join(dir, name), make([]byte, 16384), 0o644); err != nil {
				t.Error(err)
				return
			}
		}
		sleepBin, _ := exec.LookPath("sleep")
		testutil.Run(t, "cp", sleepBin, filepath.Join(dir, "sl"))

		var pids []int
		start := func(cmd *exec.Cmd) bool {
			cmd.Dir = dir
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Error(err)
				return false
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			pids = append(pids, cmd.Process.Pid)
			if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
				t.Errorf("%v did not start: %q", cmd.Args, line)
				return false
			}
			return true
		}
		if !start(exec.Command("sh", "-c", "exec 3<r 4>>w 5<del 6<>w 7</dev/null; echo ready; exec ./sl 3600")) ||
			!start(exec.Command("python3", "-c", mapsHolder)) ||
			!start(exec.Command("python3", "-c", memfdExec, sleepBin)) {
			return
		}
		if !testutil.WaitExec(t, pids[2], "a memfd", func(l string) bool { return strings.HasPrefix(l, "/memfd:") }) {
			return
		}
		sl := filepath.Join(dir, "sl")
		if !testutil.WaitExec(t, pids[0], sl, func(l string) bool { return l == sl }) {
			return
		}
		os.Remove(filepath.Join(dir, "sl"))
		os.Remove(filepath.Join(dir, "del"))

		proc, err := Scan("/proc", Options{NoBPF: true})
		if err != nil {
			t.Error(err)
			return
		}
		if proc.Source != "/proc" {
			t.Errorf("--no-bpf scan read with %q", proc.Source)
		}
		// Every fallback, whatever this kernel accepts: each program
		// refused on request must leave the same snapshot as /proc.
		var kernel *Snapshot
		for _, refuse := range []map[string]bool{
			nil,
			{"maps": true},
			{"vmas": true},
			{"maps": true, "vmas": true},
			{"maps": true, "vmas": true, "maps_nameless": true},
			{"files": true},
			{"tasks": true},
			{"files": true, "maps": true, "vmas": true, "maps_nameless": true, "tasks": true},
		} {
			snap, err := Scan("/proc", Options{refuse: refuse, BPFLog: true})
			if err != nil {
				t.Error(err)
				return
			}
			t.Logf("refused on request %v: read with %s (%v)", keys(refuse), snap.Source, snap.BPFErr)
			for _, n := range snap.BPFNotes {
				t.Logf("  %s", n)
			}
			if refuse == nil {
				kernel = snap
				if snap.Source == "/proc" {
					t.Logf("the BPF iterators cannot run here: comparing /proc with /proc")
				}
			} else if kernel.Source != "/proc" {
				// Refusing the named maps program must leave a walk
				// without names, not /proc, unless those are refused too.
				if len(refuse) == 1 && refuse["maps"] && snap.Source != kernel.Source && !(noted(snap.BPFNotes, "vmas") && noted(snap.BPFNotes, "maps_nameless")) {
					t.Errorf("maps refused: read with %s, want %s (a walk without names)", snap.Source, kernel.Source)
				}
				for name := range refuse {
					if !noted(snap.BPFNotes, name) {
						t.Errorf("refused %v: no note names the %s program: %q", keys(refuse), name, snap.BPFNotes)
					}
				}
			}
			compareScans(t, snap, proc, pids)
		}
		// The pseudo-files and directories carry lsof's columns.
		if sh := find(kernel, pids[0]); sh != nil {
			if sh.Cwd.Stat == nil || sh.Cwd.Stat.Mode&unix.S_IFMT != unix.S_IFDIR {
				t.Errorf("cwd %+v: want a directory's stat", sh.Cwd)
			}
			var null *FD
			for i := range sh.FDs {
				if sh.FDs[i].Name == "/dev/null" {
					null = &sh.FDs[i]
				}
			}
			if null == nil || null.Stat == nil || null.Stat.Rdev != unix.Mkdev(1, 3) {
				t.Errorf("/dev/null descriptor %+v: want st_rdev 1,3", null)
			}
		}
		// Narrowed to the root filesystem, the iterators leave out the
		// memfd's mapping; the executable must still not be taken for a
		// file of "/" (its name, "/memfd:...", lies under it).
		var rootSt unix.Stat_t
		if err := unix.Stat("/", &rootSt); err != nil {
			t.Error(err)
			return
		}
		narrowed, err := Scan("/proc", Options{Devs: []uint64{rootSt.Dev}})
		if err != nil || narrowed.Source != kernel.Source {
			t.Errorf("narrowed scan: %v, source %q (%v)", err, narrowed.Source, narrowed.BPFErr)
			return
		}
		for _, pid := range pids {
			n, p := find(narrowed, pid), find(proc, pid)
			if n == nil || p == nil {
				continue
			}
			if n.Exe.Dev != p.Exe.Dev || n.Exe.Ino != p.Exe.Ino || n.Exe.HasMount != p.Exe.HasMount || n.Exe.Mount.ID != p.Exe.Mount.ID {
				t.Errorf("process %d: narrowed exe %+v, /proc says %+v", pid, n.Exe, p.Exe)
			}
		}
		if m := find(narrowed, pids[2]); m != nil && m.Exe.Dev == rootSt.Dev {
			t.Errorf("memfd executable %q counted as a file of /", m.Exe.Name)
		}

		sh, py := find(kernel, pids[0]), find(kernel, pids[1])
		if sh == nil || py == nil {
			return
		}
		// What the test set up is really there, so equality means something.
		if !sh.Exe.Deleted || py.Cwd.Name != filepath.Join(dir, "sub") || !py.Cwd.Deleted {
			t.Errorf("exe %+v, cwd %+v: want a deleted exe and a deleted cwd", sh.Exe, py.Cwd)
		}
	})
}

// compareScans checks that two scans agree, field by field, on pids.
func compareScans(t *testing.T, kernel, proc *Snapshot, pids []int) {
	t.Helper()
	for _, pid := range pids {
		k, p := find(kernel, pid), find(proc, pid)
		if k == nil || p == nil {
			t.Errorf("process %d: in the %s scan %v, in the /proc scan %v", pid, kernel.Source, k != nil, p != nil)
			continue
		}
		normalize(k)
		normalize(p)
		if !reflect.DeepEqual(k, p) {
			t.Errorf("process %d differs:\n%s:   %s\n/proc: %s", pid, kernel.Source, dump(k), dump(p))
		}
		if len(p.FDs) < 3 || len(p.Maps) == 0 {
			t.Errorf("process %d: %d descriptors, %d mappings: the test set up more", pid, len(p.FDs), len(p.Maps))
		}
		for _, m := range p.Maps {
			ks, ps := kernel.MapStat(m), proc.MapStat(m)
			if !reflect.DeepEqual(ks, ps) {
				t.Errorf("process %d, mapping of %s: stat %+v (%s), %+v (/proc)", pid, m.Path, ks, kernel.Source, ps)
			}
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// noted reports whether a note names program name ("load maps program").
func noted(notes []string, name string) bool {
	for _, n := range notes {
		if strings.Contains(n, "load "+name+" program") {
			return true
		}
	}
	return false
}

func find(s *Snapshot, pid int) *Process {
	for _, p := range s.Procs {
		if p.PID == pid {
			return p
		}
	}
	return nil
}

// normalize drops what legitimately differs: fdinfo adds O_CLOEXEC from
// the descriptor table, f_flags may not carry it.
func normalize(p *Process) {
	for i := range p.FDs {
		p.FDs[i].Info.Flags &^= unix.O_CLOEXEC
	}
}

func dump(p *Process) string {
	s := fmt.Sprintf("%+v", *p)
	for _, f := range p.FDs {
		s += fmt.Sprintf("\n  fd %+v stat %+v", f, f.Stat)
	}
	return s
}
