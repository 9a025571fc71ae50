package swap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
	"golang.org/x/sys/unix"
)

// Killed is a process stopped by a signal and started again by its own
// command line: a daemon no init script owns. Two kinds come here: a
// command-line service of initsys (dhclient started by ifup, killed with
// SIGKILL so that its script never removes the address) and, with --kill,
// a writer with no service at all. Daemons (children of PID 1) are started
// again with the same command line, working directory and environment
// once the new root runs, and again after a rollback.
type Killed struct {
	PID     int      `json:"pid"`
	Comm    string   `json:"comm"`
	Argv    []string `json:"argv"`
	Environ []string `json:"environ,omitempty"`
	Dir     string   `json:"dir,omitempty"`
	Cgroup  string   `json:"cgroup,omitempty"` // its cgroup v2 path: started again in it (networking.service's)
	Daemon  bool     `json:"daemon"`
	Service string   `json:"service,omitempty"` // the command-line service, "" for --kill
	// Signal stops it, and the copy started again on a rollback.
	Signal syscall.Signal `json:"signal,omitempty"`
	// Respawned is the pid of the copy started last.
	Respawned int `json:"respawned,omitempty"`
}

// describeKilled reads what is needed to start p again.
func describeKilled(procRoot string, pid int, comm string) Killed {
	d := filepath.Join(procRoot, strconv.Itoa(pid))
	k := Killed{PID: pid, Comm: comm, Daemon: PPID(procRoot, pid) == 1}
	if b, err := os.ReadFile(filepath.Join(d, "cmdline")); err == nil {
		k.Argv = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	if b, err := os.ReadFile(filepath.Join(d, "environ")); err == nil && len(b) > 0 {
		k.Environ = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	k.Dir, _ = os.Readlink(filepath.Join(d, "cwd"))
	if b, err := os.ReadFile(filepath.Join(d, "cgroup")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(l, "0::"); ok && p != "/" {
				k.Cgroup = p
			}
		}
	}
	return k
}

// killForRespawn records what starts pid again, then stops it with sig
// (SIGTERM: SIGKILL after 5 s) and waits until it is gone.
func killForRespawn(rt *Runtime, pid int, comm, svc string, sig syscall.Signal) Killed {
	k := describeKilled(rt.ProcRoot, pid, comm)
	k.Service, k.Signal = svc, sig
	stopWith(rt, pid, sig)
	return k
}

// stopWith stops pid with sig (SIGTERM: SIGKILL after 5 s) and waits
// until it is gone.
func stopWith(rt *Runtime, pid int, sig syscall.Signal) {
	if sig == syscall.SIGTERM || sig == 0 {
		rt.stopProcess(pid, 5*time.Second)
	} else {
		rt.signal(pid, sig)
	}
	for n := 0; n < 100 && alive(rt.ProcRoot, pid); n++ {
		time.Sleep(50 * time.Millisecond) // PID 1 reaps it
	}
}

// restartByCommandLine is restart for a command-line service: the
// process is killed as its service says and started again from the
// current root.
func restartByCommandLine(rt *Runtime, svc initsys.Service) error {
	rt.logf("    %s: killing %d with %s, then starting it again by its command line", svc.Name, svc.PID, unix.SignalName(svc.StopSignal))
	k := killForRespawn(rt, svc.PID, svc.Name, svc.Name, svc.StopSignal)
	return respawn(rt, &k)
}

// respawn starts a killed daemon again, detached, from the current root,
// and records its pid. Non-daemons (a user's shell job) are not restarted.
func respawn(rt *Runtime, k *Killed) error {
	if !k.Daemon || len(k.Argv) == 0 || k.Argv[0] == "" {
		return nil
	}
	command := func(cg *os.File) *exec.Cmd {
		cmd := exec.Command(lookPath(k.Argv[0], k.Environ), k.Argv[1:]...)
		cmd.Args[0] = k.Argv[0]
		cmd.Env, cmd.Dir = k.Environ, k.Dir
		if _, err := os.Stat(k.Dir); k.Dir == "" || err != nil {
			cmd.Dir = "/"
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if cg != nil {
			// Back in the cgroup it left (systemd's networking.service),
			// not in the engine's scope.
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
		}
		return cmd
	}
	var cg *os.File
	if k.Cgroup != "" {
		for _, fs := range []string{"fs/cgroup", "fs/cgroup/unified"} { // cgroup v2, hybrid
			if cg == nil {
				cg, _ = os.Open(filepath.Join(rt.SysRoot, fs, k.Cgroup))
			}
		}
		defer cg.Close()
	}
	cmd := command(cg)
	err := cmd.Start()
	if err != nil && cg != nil {
		cmd = command(nil) // the cgroup refuses it: where the engine runs
		err = cmd.Start()
	}
	if err != nil {
		return fmt.Errorf("start %s again (%s): %w", k.Comm, strings.Join(k.Argv, " "), err)
	}
	k.Respawned = cmd.Process.Pid
	rt.logf("    started %s again: pid %d, %s", k.Comm, k.Respawned, strings.Join(k.Argv, " "))
	go cmd.Wait() // a daemon forks and its first process exits: reap it
	return nil
}

// lookPath finds a bare program name in the PATH the process had (ifup
// runs "dhclient"), not in the engine's.
func lookPath(name string, env []string) string {
	if strings.Contains(name, "/") {
		return name
	}
	dirs := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			dirs = v + ":" + dirs
		}
	}
	for _, d := range filepath.SplitList(dirs) {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return filepath.Join(d, name)
		}
	}
	return name
}
