package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// StartTimeout bounds how long Start waits for init and the daemons when
// ctx has no deadline of its own.
const StartTimeout = 30 * time.Second

// stageScript runs as PID 1 of the new namespaces, under Server.Busybox
// (the host's or the cached busybox-static's): it mounts the server's
// root and the filesystems a booted host has under it, pivots into it,
// drops the host's tree and execs init. After the pivot only the
// server's own /bin/busybox is used.
const stageScript = `set -e
B="$SANDBOX_BUSYBOX"
"$B" mount --make-rprivate /
"$B" mount -t "$SANDBOX_FSTYPE" -o rw,relatime "$SANDBOX_ROOTDEV" "$SANDBOX_ROOT"
cd "$SANDBOX_ROOT"
"$B" mount -t proc -o nosuid,nodev,noexec,relatime proc proc
"$B" mount -t sysfs -o nosuid,nodev,noexec,relatime sysfs sys
"$B" mount -t tmpfs -o nosuid,relatime,size=4m,mode=755 dev dev
"$B" mkdir -p dev/pts dev/shm
"$B" mount -t devpts -o nosuid,noexec,relatime,newinstance,ptmxmode=0666,mode=620,gid=5 devpts dev/pts
"$B" mount -t tmpfs -o nosuid,nodev,relatime shm dev/shm
"$B" mount -t tmpfs -o nosuid,nodev,relatime,size=32m,mode=755 run run
%s
"$B" ln -s pts/ptmx dev/ptmx
"$B" ln -s /proc/self/fd dev/fd
"$B" ln -s /proc/self/fd/0 dev/stdin
"$B" ln -s /proc/self/fd/1 dev/stdout
"$B" ln -s /proc/self/fd/2 dev/stderr
"$B" ln -s "$SANDBOX_SYSLOG_SOCKET" dev/log
"$B" touch dev/console
"$B" mount --bind "$SANDBOX_CONSOLE" dev/console
"$B" pivot_root . mnt/oldroot
cd /
exec /bin/busybox sh -c '
set -e
/bin/busybox umount -l /mnt/oldroot
if [ "$SANDBOX_SHARED" = 1 ]; then /bin/busybox mount --make-rshared /; fi
exec /bin/busybox env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=linux /sbin/init
'
`

// deviceNodes are the character devices copied from the host's /dev into
// the server's; every /dev/loopN is added as well.
func deviceNodes() []string {
	return []string{"null", "zero", "full", "random", "urandom", "tty", "kmsg", "loop-control"}
}

// mknodLines makes the server's device nodes with the host's numbers, so
// RootDev and TargetDev have the same paths inside as outside.
func mknodLines() (string, error) {
	names := deviceNodes()
	loops, _ := filepath.Glob("/dev/loop[0-9]*")
	for _, l := range loops {
		names = append(names, filepath.Base(l))
	}
	var b strings.Builder
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Stat("/dev/"+n, &st); err != nil {
			if n == "kmsg" || n == "loop-control" {
				continue // optional
			}
			return "", &os.PathError{Op: "stat", Path: "/dev/" + n, Err: err}
		}
		kind := "c"
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFBLK:
			kind = "b"
		case unix.S_IFCHR:
		default:
			continue
		}
		fmt.Fprintf(&b, "\"$B\" mknod -m %o dev/%s %s %d %d\n", st.Mode&0o777, n, kind, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return b.String(), nil
}

// Start boots the server: the stage script in new PID, mount, UTS, IPC and
// network namespaces, then init, which runs rcS. It returns when init's
// FIFO (sysvinit), every service's pidfile with a live process, the syslog
// socket and httpd's page are all there.
// On error the server may be half up: Close still takes it all down.
func (s *Server) Start(ctx context.Context) error {
	if s.cmd != nil {
		return errors.New("sandbox: already started")
	}
	t0 := time.Now()
	bb := s.Busybox
	nodes, err := mknodLines()
	if err != nil {
		return err
	}
	s.console, err = openConsole(s.log)
	if err != nil {
		return err
	}
	shared := "0"
	if s.opts.Shared {
		shared = "1"
	}
	cmd := exec.Command(bb, "sh", "-c", fmt.Sprintf(stageScript, nodes))
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"SANDBOX_BUSYBOX=" + bb,
		"SANDBOX_FSTYPE=" + s.opts.RootfsType,
		"SANDBOX_ROOTDEV=" + s.RootDev,
		"SANDBOX_ROOT=" + filepath.Join(s.Dir, "root"),
		"SANDBOX_CONSOLE=" + s.console.path,
		"SANDBOX_SYSLOG_SOCKET=" + SyslogSocket,
		"SANDBOX_SHARED=" + shared,
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.console.slave, s.console.slave, s.console.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET,
		Setsid:     true,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("sandbox: starting the stage script in new namespaces: %w", err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	s.logf("sandbox: started, init is host pid %d", cmd.Process.Pid)

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, StartTimeout)
		defer cancel()
	}
	if err := s.waitReady(ctx); err != nil {
		return fmt.Errorf("%w\nserver console:\n%s", err, s.console.Tail())
	}
	s.Timings.Start = time.Since(t0)
	s.logf("sandbox: up in %s (init %s)", s.Timings.Start.Round(time.Millisecond), s.Init)
	return nil
}

// waitReady polls until the server is up; the first unmet condition is in
// the error when ctx ends first.
func (s *Server) waitReady(ctx context.Context) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := s.notReady(ctx)
		if missing == "" {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("sandbox: the server's init exited during start (%v); waiting for %s", s.waitErr, missing)
		case <-ctx.Done():
			return fmt.Errorf("sandbox: server not up: waiting for %s: %w", missing, ctx.Err())
		case <-tick.C:
		}
	}
}

// notReady names the first thing the server does not have yet, or "".
func (s *Server) notReady(ctx context.Context) string {
	if s.Init == InitSysvinit {
		if _, err := os.Stat(s.HostPath("/run/initctl")); err != nil {
			return "/run/initctl"
		}
	}
	for _, name := range s.ServiceNames() {
		if _, err := s.ServicePID(name); err != nil {
			return err.Error()
		}
	}
	if _, err := os.Stat(s.HostPath(SyslogSocket)); err != nil {
		return SyslogSocket
	}
	if len(findByCmdline(s.HostPath("/proc"), GettyCmdline)) == 0 {
		return "the getty stand-in (" + GettyCmdline + ")"
	}
	if _, err := s.Fetch(ctx, "/"); err != nil {
		return "httpd: " + err.Error()
	}
	return ""
}

// ServicePID reads /run/NAME.pid inside the server and checks that the
// process lives; the pid is the server's (its PID namespace's).
func (s *Server) ServicePID(name string) (int, error) {
	pidfile := "/run/" + name + ".pid"
	b, err := os.ReadFile(s.HostPath(pidfile))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", pidfile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: bad pid %q", pidfile, bytes.TrimSpace(b))
	}
	stat, err := os.ReadFile(s.HostPath(fmt.Sprintf("/proc/%d/stat", pid)))
	if err != nil {
		return 0, fmt.Errorf("%s: pid %d not running", pidfile, pid)
	}
	// A zombie (state Z after the comm in parentheses) is not a daemon.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return 0, fmt.Errorf("%s: pid %d exited", pidfile, pid)
	}
	return pid, nil
}

// Fetch gets http://127.0.0.1:HTTPPort/path from inside the server (its
// network namespace has only loopback).
func (s *Server) Fetch(ctx context.Context, path string) (string, error) {
	// Not wget -T: busybox 1.35 wget segfaults with it.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	url := fmt.Sprintf("http://127.0.0.1:%d%s", s.HTTPPort, path)
	if err := s.Exec(ctx, nil, &out, &errb, "/bin/busybox", "wget", "-q", "-O", "-", url); err != nil {
		return "", fmt.Errorf("wget %s inside: %w: %s", url, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
