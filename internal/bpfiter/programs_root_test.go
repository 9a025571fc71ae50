package bpfiter

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/testutil"
)

// TestProgramsLoad loads every program on this kernel and says which the
// verifier accepts. A refusal is not a failure (the scan falls back, and
// procscan's root test checks every fallback); the log records which
// kernel refused what, with the verifier's reason.
func TestProgramsLoad(t *testing.T) {
	testutil.RequireRoot(t)
	k, err := Open()
	if err != nil {
		t.Skipf("no BPF iterators here: %v", err)
	}
	k.VerifierLog = true
	for _, p := range []struct {
		name, attach string
		build        func(kernelBTF) ([]byte, error)
	}{
		{"files", "bpf_iter_task_file", func(s kernelBTF) ([]byte, error) { return filesProgram(s, nil) }},
		{"maps", "bpf_iter_task_vma", func(s kernelBTF) ([]byte, error) { return mapsProgram(s, nil, true) }},
		{"vmas", "bpf_iter_task", func(s kernelBTF) ([]byte, error) { return vmasProgram(s, nil) }},
		{"maps_nameless", "bpf_iter_task_vma", func(s kernelBTF) ([]byte, error) { return mapsProgram(s, nil, false) }},
		{"tasks", "bpf_iter_task", tasksProgram},
	} {
		n, err := walk(k, p.name, p.attach, p.build, func(r io.Reader) ([]int, error) {
			st, err := readStream(r)
			if err != nil {
				return nil, err
			}
			return []int{len(st.b)}, nil
		})
		var refused *RefusedError
		switch {
		case errors.As(err, &refused):
			t.Logf("%s: refused by this kernel: %v", p.name, err)
		case err != nil:
			t.Logf("%s: cannot run here: %v", p.name, err)
		default:
			t.Logf("%s: loaded, one walk wrote %d bytes", p.name, n[0])
		}
	}
}

// TestVMAsEqualTaskVMA checks the open-coded walk against the task_vma
// iterator, record for record, for a process that sits still.
func TestVMAsEqualTaskVMA(t *testing.T) {
	testutil.RequireRoot(t)
	k, err := Open()
	if err != nil {
		t.Skipf("no BPF iterators here: %v", err)
	}
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	waitExec(t, pid)
	// After exec, sleep still maps its libraries and locale: wait until
	// its mappings stay the same for 100 ms, so both walks see one set.
	mapsFile := "/proc/" + strconv.Itoa(pid) + "/maps"
	for prev, deadline := "", time.Now().Add(5*time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		b, err := os.ReadFile(mapsFile)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) == prev {
			break
		}
		prev = string(b)
	}
	of := func(name, attach string, build func(kernelBTF) ([]byte, error)) []Map {
		maps, err := walk(k, name, attach, build, readMaps)
		if err != nil {
			t.Skipf("%s program: %v", name, err)
		}
		var out []Map
		for _, m := range maps {
			if m.PID == pid {
				out = append(out, m)
			}
		}
		return out
	}
	got := of("vmas", "bpf_iter_task", func(s kernelBTF) ([]byte, error) { return vmasProgram(s, nil) })
	want := of("maps_nameless", "bpf_iter_task_vma", func(s kernelBTF) ([]byte, error) { return mapsProgram(s, nil, false) })
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("vmas walk of sleep:\n%+v\ntask_vma walk:\n%+v", got, want)
	}
}
