package initsys

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/testutil"
)

// TestRealBusyboxInit runs busybox init as PID 1 of a new PID namespace,
// chrooted into a tree holding only busybox and an inittab, and checks
// that Detect recognises it from the live /proc and refuses to re-exec it.
func TestRealBusyboxInit(t *testing.T) {
	testutil.RequireRoot(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal("busybox not found (apt-get install busybox-static)")
	}
	root := t.TempDir()
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"bin", "sbin", "etc"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/bin/busybox", filepath.Join(root, "sbin/init"))
	os.WriteFile(filepath.Join(root, "etc/inittab"), []byte("::respawn:/bin/busybox sleep 600\n"), 0o644)

	cmd := exec.Command("/sbin/init")
	cmd.Env = []string{"PATH=/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting busybox init in a PID namespace: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // PID 1 of the namespace: everything in it dies too
		cmd.Wait()
	})

	// A /proc whose "1" is the namespace's init as the host sees it.
	proc := t.TempDir()
	host := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	os.Symlink(host, filepath.Join(proc, "1"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		text, _ := os.Readlink(host + "/exe")
		comm, _ := os.ReadFile(host + "/comm")
		if strings.HasSuffix(text, "/bin/busybox") && strings.TrimSpace(string(comm)) == "init" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("busybox init did not start: exe %q comm %q", text, comm)
		}
		time.Sleep(10 * time.Millisecond)
	}

	sys, err := Config{ProcRoot: proc, Root: root}.Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sys.Kind() != KindBusybox {
		t.Fatalf("Detect = %s, want busybox", sys.Describe())
	}
	if err := sys.Reexec(context.Background()); !errors.Is(err, ErrNoReexec) {
		t.Errorf("Reexec = %v, want ErrNoReexec", err)
	}
	st, err := CheckPID1(proc, "/")
	if err != nil {
		t.Fatal(err)
	}
	if st.Current {
		t.Errorf("CheckPID1: a chrooted busybox counts as this root's init: %s", st.Summary())
	}
}
