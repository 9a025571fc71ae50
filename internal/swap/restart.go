package swap

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
)

// restart restarts svc so that it runs from the current root. With
// systemd the cgroup says which processes are the service. An init script
// is not so sure a guide after a pivot: start-stop-daemon --exec
// /usr/sbin/sshd no longer matches a daemon whose executable now reads
// /mnt/oldroot/usr/sbin/sshd, so "restart" leaves the old daemon running
// (still listening) and the new one fails to bind. So the daemon's main
// processes (children of PID 1 that belong to svc) that survive the
// script are stopped here and the service started again. Their children
// (an sshd's sessions, the admin's own among them) are left alone.
// Processes are svc's when ServiceOf names the same service, so a name
// asked for bare ("dropbear") is first resolved to the one ServiceOf
// gives (busybox's S50dropbear).
func restart(ctx context.Context, rt *Runtime, svc initsys.Service) error {
	if svc.Kind == initsys.CommandLine {
		return restartByCommandLine(rt, svc)
	}
	svc = initsys.Resolve(rt.Init, svc)
	var before []int
	if rt.Init.Kind() != initsys.KindSystemd {
		before = mainPIDs(rt, svc)
	}
	if err := rt.Init.Restart(ctx, svc); err != nil {
		return err
	}
	var survivors []int
	for _, pid := range before {
		if alive(rt.ProcRoot, pid) {
			survivors = append(survivors, pid)
		}
	}
	if len(survivors) == 0 {
		return nil
	}
	for _, pid := range survivors {
		rt.logf("    %s: pid %d survived its init script's restart (old executable); stopping it", svc.Name, pid)
		rt.stopProcess(pid, 5*time.Second)
	}
	return rt.Init.Start(ctx, svc)
}

// signal sends sig to pid, through rt.Kill when a test set it.
func (rt *Runtime) signal(pid int, sig syscall.Signal) error {
	if rt.Kill != nil {
		return rt.Kill(pid, sig)
	}
	return syscall.Kill(pid, sig)
}

// stopProcess sends SIGTERM, waits up to grace for pid to go, then sends
// SIGKILL.
func (rt *Runtime) stopProcess(pid int, grace time.Duration) {
	rt.signal(pid, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(rt.ProcRoot, pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	rt.signal(pid, syscall.SIGKILL)
}

// mainPIDs are the processes of svc whose parent is PID 1. The admin's
// session may descend from one (the sshd listener): killing that one ends
// no session, sshd sessions outlive their listener.
func mainPIDs(rt *Runtime, svc initsys.Service) []int {
	var out []int
	services := initsys.NewLookup(rt.Init)
	ents, _ := os.ReadDir(rt.ProcRoot)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == rt.Self || PPID(rt.ProcRoot, pid) != 1 {
			continue
		}
		if s, ok := services.ServiceOf(pid); ok && s.Name == svc.Name {
			out = append(out, pid)
		}
	}
	return out
}

func alive(procRoot string, pid int) bool {
	_, err := os.Stat(filepath.Join(procRoot, strconv.Itoa(pid)))
	return err == nil
}
