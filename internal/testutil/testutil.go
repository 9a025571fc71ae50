// Package testutil holds helpers for the root test tier: a private mount
// namespace per test, loop devices released in Cleanup, filesystem images.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireRoot skips a root-tier test when not root, saying why. With
// ROOTSWAP_REQUIRE_ROOT=1 (set by .ci/run) a missing root fails instead, so
// CI can never pass by skipping the real work.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("ROOTSWAP_REQUIRE_ROOT") == "1" {
		t.Fatal("root tier test: needs root (ROOTSWAP_REQUIRE_ROOT=1)")
	}
	t.Skip("root tier test: needs root (run make test as root)")
}

// RequireTool fails the test when a program the test needs is missing:
// .ci/run installs them, so a missing one is a set-up bug, not a skip.
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Fatalf("%s not found in PATH (.ci/run installs it; apt-get install the package that has it)", n)
		}
	}
}

// InMountNS runs fn on an OS thread that has its own private mount
// namespace, so mounts made by fn (and by the commands fn starts, which
// fork from that thread) vanish with it. The thread is never reused.
func InMountNS(t *testing.T, fn func()) {
	t.Helper()
	RequireRoot(t)
	done := make(chan struct{})
	var failed error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with the goroutine, taking
		// the namespace with it.
		if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
			failed = fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			failed = fmt.Errorf("mount / MS_REC|MS_PRIVATE: %w", err)
			return
		}
		fn()
	}()
	<-done
	if failed != nil {
		t.Fatal(failed)
	}
}

// Run runs a command and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Image creates a sparse file of size bytes in dir.
func Image(t testing.TB, dir, name string, size int64) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

// Loop attaches file to a free loop device and detaches it in Cleanup.
func Loop(t testing.TB, file string) string {
	t.Helper()
	RequireRoot(t)
	RequireTool(t, "losetup")
	dev := strings.TrimSpace(Run(t, "losetup", "--find", "--show", file))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// WaitExec waits up to 10 s until /proc/PID/exe satisfies match and the
// process is asleep in nanosleep: every caller execs a sleep, and the exe
// link changes early in execve, before the new image and its libraries are
// mapped, so a scan taken then sees a half-built process. False, with the
// test marked failed, when it never settles.
func WaitExec(t testing.TB, pid int, what string, match func(exe string) bool) bool {
	t.Helper()
	proc := "/proc/" + strconv.Itoa(pid) + "/"
	for deadline := time.Now().Add(10 * time.Second); ; {
		if l, _ := os.Readlink(proc + "exe"); match(l) && inNanosleep(proc) {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("%sexe never became %s asleep in nanosleep", proc, what)
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inNanosleep says whether the task at proc (a /proc/PID/ directory)
// sleeps in nanosleep or clock_nanosleep: by its wait channel, or where
// the kernel hides that, by its system call number (x86-64 and arm64).
func inNanosleep(proc string) bool {
	if w, err := os.ReadFile(proc + "wchan"); err == nil && strings.Contains(string(w), "nanosleep") {
		return true
	}
	sc, err := os.ReadFile(proc + "syscall")
	if err != nil {
		return false
	}
	f := strings.Fields(string(sc))
	if len(f) == 0 {
		return false
	}
	switch runtime.GOARCH + " " + f[0] {
	case "amd64 35", "amd64 230", "arm64 101", "arm64 115":
		return true
	}
	return false
}

// Tmpfs mounts a tmpfs of size (mount's size= value, "8m") on a temporary
// directory and unmounts it in Cleanup: a small filesystem to fill.
func Tmpfs(t testing.TB, size string) string {
	t.Helper()
	RequireRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("rootswap-test", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount tmpfs (size=%s) on %s: %v", size, dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// FreeBytes is the room left at dir (statfs's f_bavail).
func FreeBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// MountElsewhere mounts dev on mnt inside a new private mount namespace
// held by a sleeping process (killed in Cleanup), as a container or a
// service's own namespace would: this one does not see the mount. It
// returns the process's pid once its mount table shows the mount.
func MountElsewhere(t testing.TB, dev, mnt string) int {
	t.Helper()
	RequireTool(t, "unshare")
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", "mount "+dev+" "+mnt+" && exec sleep 600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	mi := fmt.Sprintf("/proc/%d/mountinfo", cmd.Process.Pid)
	for i := 0; ; i++ {
		if b, _ := os.ReadFile(mi); strings.Contains(string(b), " "+mnt+" ") {
			break
		}
		if i == 500 {
			t.Fatalf("%s never showed the mount of %s on %s", mi, dev, mnt)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), " "+mnt+" ") {
		t.Fatalf("the mount on %s leaked into this namespace", mnt)
	}
	return cmd.Process.Pid
}
