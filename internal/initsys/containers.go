package initsys

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Containers run below a shim: containerd-shim (docker, containerd,
// nerdctl, k3s), docker-containerd-shim (docker before 18.06) or conmon
// (podman, cri-o). The shim outlives its daemon and is reparented to
// PID 1, so a container's processes have no service of their own; they
// belong to the daemon that made the container, which is a service of
// PID 1 (docker.service, /etc/init.d/docker, ...): stopping it stops
// them, starting it brings back those with a restart policy.

// shimKind names the shims by comm (the kernel cuts comm to 15 bytes:
// "containerd-shim-runc-v2" reads "containerd-shim").
func shimKind(comm string) string {
	switch {
	case strings.HasPrefix(comm, "containerd-shim"):
		return "containerd-shim"
	case comm == "docker-containe": // docker-containerd-shim
		return "docker-containerd-shim"
	case comm == "conmon":
		return "conmon"
	}
	return ""
}

// dockerDaemonJSON is where dockerd reads its configuration.
const dockerDaemonJSON = "/etc/docker/daemon.json"

// containerService: pid or one of its parents is a shim; the service is
// the one of the daemon that owns the container (dockerd for containerd's
// "moby" namespace and old docker shims, containerd otherwise; for
// conmon, conmon's own service: podman has no daemon).
func (l *lookup) containerService(pid int, own func(int) (Service, bool)) (Service, bool) {
	for _, p := range l.ancestry(pid) {
		shim := shimKind(l.comm(p))
		if shim == "" {
			continue
		}
		what := "container process (" + shim + " " + strconv.Itoa(p) + ")"
		if p == pid {
			what = "container shim " + shim
		}
		if shim == "conmon" {
			svc, ok := own(p)
			if !ok {
				return Service{Name: "conmon", Kind: "podman", Why: what + " of a podman container that no service runs: " +
					"stop the container (podman stop) or run it from a unit (quadlet)"}, true
			}
			svc.Why = what + " of a podman container, run by " + svc.Name
			return svc, true
		}
		daemon := "containerd"
		if ns := shimNamespace(l.identity(p).argv); ns == "moby" || shim == "docker-containerd-shim" {
			daemon = "dockerd"
		}
		dpid, found := l.findComm(daemon)
		if !found {
			return Service{Name: daemon, Kind: "container",
				Why: what + " of " + daemon + ", which is not running: its containers are not restarted for you"}, true
		}
		svc, ok := own(dpid)
		if !ok {
			return Service{Name: daemon, Kind: "container",
				Why: what + " of " + daemon + " (pid " + strconv.Itoa(dpid) + "), which belongs to no service"}, true
		}
		svc.Why = what + " of " + daemon + ", whose service " + svc.Name + " stops its containers and starts again those with a restart policy"
		if daemon == "dockerd" {
			if lr, why := l.c.LiveRestore(dpid); lr {
				svc.LiveRestore = true
				svc.Why = what + " of dockerd, whose service is " + svc.Name + "; live-restore is on (" + why + ")"
			}
		}
		return svc, true
	}
	return Service{}, false
}

// shimNamespace is the containerd namespace a shim serves ("-namespace moby").
func shimNamespace(argv []string) string {
	for i, a := range argv {
		if (a == "-namespace" || a == "--namespace") && i+1 < len(argv) {
			return argv[i+1]
		}
		if v, ok := strings.CutPrefix(a, "-namespace="); ok {
			return v
		}
		if v, ok := strings.CutPrefix(a, "--namespace="); ok {
			return v
		}
	}
	return ""
}

// LiveRestore reports whether dockerd (pid dockerdPID, 0 if unknown) keeps
// its containers running while it is stopped: "--live-restore" on its
// command line, else "live-restore": true in /etc/docker/daemon.json.
// With it, stopping or restarting docker leaves the containers running,
// so they keep whatever root they were started from. why says where the
// setting was found.
func (c Config) LiveRestore(dockerdPID int) (on bool, why string) {
	if dockerdPID > 0 {
		for _, a := range c.argv(dockerdPID) {
			switch a {
			case "--live-restore", "--live-restore=true":
				return true, "dockerd runs with " + a
			case "--live-restore=false":
				return false, "dockerd runs with " + a
			}
		}
	}
	on, err := c.daemonJSONLiveRestore()
	if err != nil || !on {
		return false, ""
	}
	return true, `"live-restore": true in ` + dockerDaemonJSON
}

func (c Config) daemonJSONLiveRestore() (bool, error) {
	b, err := os.ReadFile(c.path(dockerDaemonJSON))
	if err != nil {
		return false, err
	}
	var cfg struct {
		LiveRestore *bool `json:"live-restore"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return false, fmt.Errorf("reading %s: %w", dockerDaemonJSON, err)
	}
	return cfg.LiveRestore != nil && *cfg.LiveRestore, nil
}

// Caveat is what plan should add when it stops or restarts svc, beyond
// the service's name: "" when there is nothing to add.
func (s Service) Caveat() string {
	if s.LiveRestore {
		return "docker has live-restore on: stopping or restarting " + s.Name +
			" leaves its containers running, so they are not stopped before the read-only remount " +
			"and keep the old root (their overlay layers on /) until each is restarted: " +
			"stop them first (docker stop), or turn live-restore off for the swap"
	}
	return ""
}
