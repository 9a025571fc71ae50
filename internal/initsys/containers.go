package initsys

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
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
	cfg, err := c.daemonJSON()
	if err != nil || cfg.LiveRestore == nil || !*cfg.LiveRestore {
		return false, ""
	}
	return true, `"live-restore": true in ` + dockerDaemonJSON
}

// daemonConfig is what rootswap reads of /etc/docker/daemon.json.
type daemonConfig struct {
	LiveRestore *bool    `json:"live-restore"`
	Hosts       []string `json:"hosts"`
}

func (c Config) daemonJSON() (daemonConfig, error) {
	var cfg daemonConfig
	b, err := os.ReadFile(c.path(dockerDaemonJSON))
	if err != nil {
		return cfg, err
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return daemonConfig{}, fmt.Errorf("reading %s: %w", dockerDaemonJSON, err)
	}
	return cfg, nil
}

// DefaultDockerHost is where the docker CLI finds dockerd when nothing
// else is said; dockerd -H fd:// is handed this socket by docker.socket.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// Dockerd is a running docker daemon, as the docker CLI reaches it.
type Dockerd struct {
	PID int
	// Host is the -H the docker CLI is given to reach this daemon, so
	// that neither DOCKER_HOST nor a docker context of whoever runs
	// rootswap points it at another one.
	Host        string
	LiveRestore bool
	Why         string // where live-restore was found
}

// Dockerds lists the docker daemons that run, lowest pid first.
func (c Config) Dockerds() []Dockerd {
	var out []Dockerd
	pids := c.pids()
	sort.Ints(pids)
	for _, pid := range pids {
		if c.comm(pid) != "dockerd" || c.zombie(pid) {
			continue
		}
		d := Dockerd{PID: pid, Host: c.dockerHost(pid)}
		d.LiveRestore, d.Why = c.LiveRestore(pid)
		out = append(out, d)
	}
	return out
}

// dockerHost is the first unix socket dockerd listens on: its -H/--host
// arguments, else "hosts" of daemon.json (dockerd refuses both at once);
// fd:// (socket activation), tcp:// only, or nothing said: the default
// socket.
func (c Config) dockerHost(pid int) string {
	hosts := DockerdHosts(c.argv(pid))
	if len(hosts) == 0 {
		if cfg, err := c.daemonJSON(); err == nil {
			hosts = cfg.Hosts
		}
	}
	for _, h := range hosts {
		if p, ok := strings.CutPrefix(h, "unix://"); ok && p != "" {
			return h
		}
	}
	return DefaultDockerHost
}

// DockerdHosts lists the -H/--host values of a dockerd command line.
func DockerdHosts(argv []string) []string {
	var out []string
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "-H" || a == "--host":
			if i+1 < len(argv) {
				out = append(out, argv[i+1])
				i++
			}
		case strings.HasPrefix(a, "-H="):
			out = append(out, a[len("-H="):])
		case strings.HasPrefix(a, "--host="):
			out = append(out, a[len("--host="):])
		case strings.HasPrefix(a, "-H") && !strings.HasPrefix(a, "--"):
			out = append(out, a[len("-H"):]) // -Hunix:///run/docker.sock
		}
	}
	return out
}
