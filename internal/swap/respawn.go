package swap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Killed is a process with no service that held / for writing and was
// killed with --kill. Daemons (children of PID 1) are started again with
// the same command line once the new root runs, and again after a
// rollback: dhclient started by ifupdown is the classic one (its lease
// file is open for writing, and no init script restarts it without taking
// the network down).
type Killed struct {
	PID     int      `json:"pid"`
	Comm    string   `json:"comm"`
	Argv    []string `json:"argv"`
	Environ []string `json:"environ,omitempty"`
	Daemon  bool     `json:"daemon"`
	// Respawned is the pid of the copy started last.
	Respawned int `json:"respawned,omitempty"`
}

// describeKilled reads what is needed to start p again.
func describeKilled(procRoot string, pid int, comm string) Killed {
	k := Killed{PID: pid, Comm: comm, Daemon: PPID(procRoot, pid) == 1}
	if b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "cmdline")); err == nil {
		k.Argv = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	if b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "environ")); err == nil && len(b) > 0 {
		k.Environ = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	return k
}

// respawn starts a killed daemon again, detached, from the current root,
// and records its pid. Non-daemons (a user's shell job) are not restarted.
func respawn(rt *Runtime, k *Killed) error {
	if !k.Daemon || len(k.Argv) == 0 || k.Argv[0] == "" {
		return nil
	}
	cmd := exec.Command(k.Argv[0], k.Argv[1:]...)
	cmd.Env, cmd.Dir = k.Environ, "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s again (%s): %w", k.Comm, strings.Join(k.Argv, " "), err)
	}
	k.Respawned = cmd.Process.Pid
	rt.logf("    started %s again: pid %d, %s", k.Comm, k.Respawned, strings.Join(k.Argv, " "))
	go cmd.Wait() // a daemon forks and its first process exits: reap it
	return nil
}
