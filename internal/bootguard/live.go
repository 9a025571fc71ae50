package bootguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/fstools"
	"golang.org/x/sys/unix"
)

// LiveSys is Sys on the running machine. self is the guard binary
// (started again as the keeper).
func LiveSys(r Record, self string) *Sys {
	return &Sys{
		Now:        time.Now,
		Sleep:      time.Sleep,
		Executable: IsExecutable,
		Exec: func(argv []string) error {
			return unix.Exec(argv[0], argv, os.Environ())
		},
		StartKeeper: func() error { return startKeeper(self) },
		Reboot: func() error {
			unix.Sync()
			return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
		},
		Log: func(msg string) { logLine(r, msg) },
	}
}

// startKeeper starts "rootswap-bootguard keeper" in a session of its own,
// with /dev/null as its streams. It stays a child of PID 1 across the exec.
func startKeeper(self string) error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	p, err := os.StartProcess(self, []string{filepath.Base(GuardPath), "keeper"}, &os.ProcAttr{
		Dir:   "/",
		Files: []*os.File{null, null, null},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return err
	}
	return p.Release()
}

// logLine writes msg to the kernel log and to /boot's firstboot.log,
// mounting /boot for the one line when it is not mounted yet (the guard
// runs before anything is).
func logLine(r Record, msg string) {
	if k, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		k.WriteString("<3>rootswap-bootguard: " + msg + "\n")
		k.Close()
	}
	now := time.Now()
	if _, err := os.Stat(BootRecord); err == nil {
		AppendLog(BootLog, now, msg)
		return
	}
	if r["boot_dev"] == "" || r["boot_fs"] == "" {
		return
	}
	if err := unix.Mount(r["boot_dev"], "/boot", r["boot_fs"], 0, ""); err != nil {
		return
	}
	if _, err := os.Stat(BootRecord); err == nil {
		AppendLog(BootLog, now, msg)
	}
	unix.Unmount("/boot", 0)
	unix.Sync()
}

// RunKeeper is the keeper process: immune to the signals an early boot
// sends around, never chosen by the OOM killer, listening on Socket for
// the confirmation.
func RunKeeper(r Record) error {
	signal.Ignore(unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPIPE)
	os.WriteFile("/proc/self/oom_score_adj", []byte("-1000"), 0)
	start := time.Now()
	sys := LiveSys(r, "")
	var confirmed atomic.Bool
	fd, err := unixSocket()
	if err == nil {
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: Socket})
	}
	if err == nil {
		err = unix.Listen(fd, 4)
	}
	if err != nil {
		sys.Log(fmt.Sprintf("keeper: cannot listen on %s (%v): only a reboot ends the wait", Socket, err))
	} else {
		go func() {
			for {
				// accept4 without the peer's address: unix.Accept4 links
				// the decoder of every socket family (kilobytes).
				r, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), 0, 0, unix.SOCK_CLOEXEC, 0, 0)
				if errno == unix.EINTR || errno == unix.ECONNABORTED {
					continue
				}
				if errno != 0 {
					return
				}
				c := int(r)
				timeouts(c, 5*time.Second)
				buf := make([]byte, 16)
				n, _ := unix.Read(c, buf)
				if n > 0 && string(buf[:n]) == "confirm\n" {
					confirmed.Store(true)
					unix.Write(c, []byte("ok\n"))
				}
				unix.Close(c)
			}
		}()
	}
	sys.Confirmed = confirmed.Load
	return Keep(r, sys, start)
}

// The sockets are raw system calls: the net package's resolver would
// cost the binary far more than these few lines.
func unixSocket() (int, error) {
	return unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}

func timeouts(fd int, d time.Duration) {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
}

// exchange connects to sa, writes msg and returns what came back.
func exchange(domain int, sa unix.Sockaddr, msg string, want int) (string, error) {
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	timeouts(fd, 5*time.Second)
	if err := unix.Connect(fd, sa); err != nil {
		return "", err
	}
	if msg != "" {
		if _, err := unix.Write(fd, []byte(msg)); err != nil {
			return "", err
		}
	}
	buf := make([]byte, want)
	n, err := unix.Read(fd, buf)
	if n < 0 {
		n = 0
	}
	return string(buf[:n]), err
}

// NotifyKeeper tells the keeper the boot is confirmed.
func NotifyKeeper() error {
	got, err := exchange(unix.AF_UNIX, &unix.SockaddrUnix{Name: Socket}, "confirm\n", 3)
	if err != nil {
		return fmt.Errorf("%s: %w", Socket, err)
	}
	if got != "ok\n" {
		return errors.New("the keeper did not acknowledge")
	}
	return nil
}

// WaitSSH waits until a TCP connection to the local port gets an SSH
// banner.
func WaitSSH(ctx context.Context, port int) error {
	for {
		got, err := exchange(unix.AF_INET, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}, "", 4)
		if got == "SSH-" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no SSH banner on 127.0.0.1:%d (%v): %w", port, err, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// RootUUID is the UUID of the filesystem mounted at /.
func RootUUID(procRoot, sysRoot string) (string, error) {
	t, err := blockdev.ReadMounts(procRoot)
	if err != nil {
		return "", err
	}
	m, ok := t.Containing("/")
	if !ok {
		return "", errors.New("no / in the mount table")
	}
	dev := m.Source
	if m.Major != 0 {
		d, err := blockdev.Lookup(sysRoot, m.Dev())
		if err != nil {
			return "", err
		}
		dev = "/dev/" + d.Name
	}
	fs, err := fstools.DetectPath(dev)
	if err != nil {
		return "", err
	}
	return fs.UUID, nil
}

// LiveConfirmer is the confirmation on the running machine: by the unit
// (byAdmin false: sshd must answer) or by `rootswap confirm --boot`.
func LiveConfirmer(out io.Writer, procRoot, sysRoot string, byAdmin bool) *Confirmer {
	return &Confirmer{
		Out: out, Root: "/", Now: time.Now, ByAdmin: byAdmin,
		RootUUID: func() (string, error) { return RootUUID(procRoot, sysRoot) },
		WaitSSH:  WaitSSH,
		Notify:   NotifyKeeper,
	}
}
