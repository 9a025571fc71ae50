package rescue

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
	"golang.org/x/sys/unix"
)

// rootswapBinary is $ROOTSWAP_BIN (make test builds it) or a fresh static
// build in a temporary directory.
func rootswapBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("ROOTSWAP_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "rootswap")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/rootswap/rootswap")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEmptyRoot runs the shell with / an empty tmpfs holding only the
// binary: no /bin, no /dev, no /etc. Every command must come from the
// binary. The child has its own pid and mount namespaces, so its ps sees
// itself as pid 1 and its proc mount vanishes with it.
func TestEmptyRoot(t *testing.T) {
	testutil.RequireRoot(t)
	bin := rootswapBinary(t)
	script := strings.Join([]string{
		`echo "PATH=[$PATH]"`,
		`ls /`,
		`mkdir /a /proc; echo hi > /a/f; cat /a/f; ls /a`,
		`mount -t proc proc /proc && mount | grep -c "^proc on /proc type proc"`,
		`ps | head -n 2 | tail -n 1 | grep -c "^    1     0 [RS]    rootswap        /rootswap sh -c "`,
		`cp -a /a /b && ls -n /b/f | grep -c "^-rw-r--r-- 1 0 0 3 "`,
		`ln -s /a/f /l; cat /l; mv /l /m; stat -c %N /m; rm -r /b; ls /`,
		`df / | tail -n 1 | grep -c " /$"`,
		`free | grep -c "^Mem:"`,
		`dmesg | head -n 1 | wc -l`,
		`chroot / ls /a`,
		`nosuch; echo "nosuch status $?"`,
		`umount /proc; ls /proc`,
	}, "; ")
	testutil.InMountNS(t, func() {
		root := t.TempDir()
		if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=64m,mode=755"); err != nil {
			t.Errorf("mount tmpfs on %s: %v", root, err)
			return
		}
		defer unix.Unmount(root, unix.MNT_DETACH)
		if err := copyFile(bin, filepath.Join(root, "rootswap")); err != nil {
			t.Error(err)
			return
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("/rootswap", "sh", "-c", script)
		cmd.Path = "/rootswap" // resolved inside the new root
		cmd.Dir = "/"
		cmd.Env = []string{"PATH="}
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS}
		err := cmd.Run()
		want := strings.Join([]string{
			"PATH=[]",
			"rootswap",
			"hi",
			"f",
			"1", // proc listed by mount
			"1", // ps: the shell is pid 1
			"1", // cp -a kept mode and owner
			"hi",
			"/m -> /a/f",
			"a", "m", "proc", "rootswap",
			"1", // df: the tmpfs is /
			"1", // free
			"1", // dmesg printed something, with no /dev/kmsg
			"f", // chroot ran ls from this binary through /proc/self/exe
			"nosuch status 127",
			"",
		}, "\n")
		if stdout.String() != want {
			t.Errorf("stdout:\ngot\n%s\nwant\n%s\nstderr:\n%s", stdout.String(), want, stderr.String())
		}
		wantErr := "sh: nosuch: command not found (help lists the built-in ones)\n"
		if stderr.String() != wantErr {
			t.Errorf("stderr: got\n%s\nwant\n%s", stderr.String(), wantErr)
		}
		if err != nil {
			t.Errorf("exit: %v", err)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
