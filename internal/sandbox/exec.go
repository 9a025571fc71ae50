package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ExecEnv is the environment of commands run by Exec: a login-less root
// shell's, nothing inherited from the host.
func ExecEnv() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb", "LANG=C"}
}

// Exec runs argv inside the server as a fresh process of its PID namespace
// (nsenter into init's mount, PID, UTS, IPC and network namespaces, with
// init's root and working directory), the way an admin's SSH session
// would. The root follows init, so after a pivot it is the new root.
func (s *Server) Exec(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, argv ...string) error {
	if len(argv) == 0 {
		return errors.New("sandbox: exec: no command")
	}
	cmd, err := s.Command(ctx, argv...)
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sandbox: exec %s inside: %w", strings.Join(argv, " "), err)
	}
	return nil
}

// Command is the exec.Cmd behind Exec, for callers that want to start a
// command inside and wait for it later (a swap running while the demo
// polls the page). Its stdio is the caller's to set.
func (s *Server) Command(ctx context.Context, argv ...string) (*exec.Cmd, error) {
	pid := s.PID1()
	if pid == 0 {
		return nil, errors.New("sandbox: exec: server not started")
	}
	select {
	case <-s.exited:
		return nil, errors.New("sandbox: exec: server's init has exited")
	default:
	}
	args := append([]string{"--target", strconv.Itoa(pid),
		"--mount", "--pid", "--uts", "--ipc", "--net", "--root", "--wd", "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.Env = ExecEnv()
	// nsenter forks the command into the PID namespace; killing nsenter
	// alone would leave it running, so cancel kills both.
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// Close kills the server (SIGKILL to its init takes the whole PID
// namespace, and with the last process its mount namespace and mounts),
// detaches every loop device backed by a file under Dir (the swap may have
// attached more) and removes Dir. It is idempotent and works on a server
// that never started or half-swapped.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	t0 := time.Now()
	var errs []error
	s.swapOffInside()
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			errs = append(errs, fmt.Errorf("sandbox: init (host pid %d) did not exit after SIGKILL", s.cmd.Process.Pid))
		}
	}
	if s.console != nil {
		s.console.Close()
	}
	if s.Dir != "" {
		if err := detachLoops(s.Dir); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(s.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	s.Timings.Close = time.Since(t0)
	s.logf("sandbox: closed in %s", s.Timings.Close.Round(time.Millisecond))
	return errors.Join(errs...)
}

// detachLoops detaches every loop device whose backing file is under dir
// and waits until none is left: a device still mounted in a namespace
// being torn down is only marked autoclear by losetup -d, and goes when
// the last mount of it does.
func detachLoops(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		devs, err := loopsUnder(ctx, dir)
		if err != nil {
			return err
		}
		if len(devs) == 0 {
			return nil
		}
		for _, d := range devs {
			run(ctx, "losetup", "-d", d)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sandbox: loop devices still attached to files under %s: %s", dir, strings.Join(devs, " "))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// loopsUnder lists the loop devices backed by files under dir, parsing
// `losetup --list --noheadings --output NAME,BACK-FILE`.
func loopsUnder(ctx context.Context, dir string) ([]string, error) {
	out, err := run(ctx, "losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE")
	if err != nil {
		return nil, err
	}
	return parseLoopList(out, dir), nil
}

// parseLoopList picks from losetup's NAME BACK-FILE lines the devices
// whose file is dir or under it (a file deleted while attached shows
// " (deleted)" after its name).
func parseLoopList(out, dir string) []string {
	var devs []string
	prefix := strings.TrimSuffix(dir, "/") + "/"
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		back := strings.TrimSuffix(strings.Join(f[1:], " "), " (deleted)")
		if strings.HasPrefix(back, prefix) {
			devs = append(devs, f[0])
		}
	}
	return devs
}
