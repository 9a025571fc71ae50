package swap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
)

// Docker's containers go down and up with dockerd, except under
// live-restore: then stopping dockerd leaves them running, writing on /
// through their overlay layers, and the read-only remount fails late
// with EBUSY. So for a dockerd with live-restore whose service the swap
// stops, stop-services stops its running containers (docker stop) before
// any service, and start-services starts them again (docker start) once
// the services run from the new root. The ids are kept in the State, so
// rollback, in this session or a new one, knows what to start again.
// Without live-restore nothing is added: stopping dockerd stops its
// containers and restart policies bring theirs back.

// DockerDaemon is a docker daemon whose service run stops.
type DockerDaemon struct {
	Service     string `json:"service"` // docker.service
	PID         int    `json:"pid"`
	Host        string `json:"host"` // the docker CLI's -H
	LiveRestore bool   `json:"live_restore"`
	Why         string `json:"why,omitempty"` // where live-restore was found
	// Containers run now (live-restore only): stopped before the service.
	Containers []initsys.Container `json:"containers,omitempty"`
	// Problem: the containers could not be listed (a blocker says why).
	Problem string `json:"problem,omitempty"`
}

// DockerContainer is a container stop-services stopped.
type DockerContainer struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	initsys.Container
	Service string `json:"service"` // its daemon's service
	Host    string `json:"host"`    // the docker CLI's -H
	// Started: start-services started it from the new root (what the
	// undo of start-services stops again).
	Started bool `json:"started,omitempty"`
}

// dockerReady bounds the wait for a docker daemon to answer after its
// service was started (an init script returns before the socket is up).
const dockerReady = 30 * time.Second

// checkDocker finds, among the running docker daemons, those whose
// service is to be stopped; for each with live-restore it lists the
// running containers through the docker CLI, or blocks when it cannot:
// run could not stop them, and / would stay busy. Those services go to
// the front of the stop list, so dockerd stops while containerd still
// runs to stop its containers.
func (r *Report) checkDocker(ctx context.Context, cfg initsys.Config, services initsys.Lookup, run initsys.Runner) {
	stopping := setOf(r.Stop)
	first := map[string]bool{}
	for _, d := range cfg.Dockerds() {
		svc, ok := services.ServiceOf(d.PID)
		if !ok || !stopping[svc.Name] || first[svc.Name] {
			continue
		}
		first[svc.Name] = true
		dd := DockerDaemon{Service: svc.Name, PID: d.PID, Host: d.Host, LiveRestore: d.LiveRestore, Why: d.Why}
		if d.LiveRestore {
			cli := initsys.DockerCLI{Host: d.Host, Run: run}
			cs, err := cli.Running(ctx)
			if err != nil {
				dd.Problem = err.Error()
				r.block(fmt.Sprintf("%s runs dockerd (pid %d) with live-restore on (%s): its containers keep running on / when it stops, so run must stop them first, but the docker CLI cannot list them: %v",
					svc.Name, d.PID, d.Why, err),
					"make the docker CLI work as root against "+d.Host+" (install docker.io or docker-ce-cli; `docker -H "+d.Host+" ps` must list the containers), "+
						`or turn live-restore off for the swap: "live-restore": false in `+"/etc/docker/daemon.json (and no --live-restore), then systemctl reload docker (kill -HUP "+fmt.Sprint(d.PID)+")")
			}
			dd.Containers = cs
		}
		r.Docker = append(r.Docker, dd)
	}
	if len(first) == 0 {
		return
	}
	var front, rest []string
	for _, name := range r.Stop {
		if first[name] {
			front = append(front, name)
		} else {
			rest = append(rest, name)
		}
	}
	r.Stop = append(front, rest...)
}

func containerList(cs []initsys.Container) string {
	var p []string
	for _, c := range cs {
		p = append(p, c.String())
	}
	return strings.Join(p, ", ")
}

// dockerStopPlan is what stop-services says of each docker daemon.
func dockerStopPlan(r *Report) []string {
	var out []string
	for _, d := range r.Docker {
		switch {
		case !d.LiveRestore:
			out = append(out, d.Service+" has live-restore off: stopping it stops its containers, and those with a restart policy come back when it starts from the new root")
		case d.Problem != "":
			out = append(out, d.Service+" has live-restore on ("+d.Why+") but its containers cannot be listed (see the blocker)")
		case len(d.Containers) == 0:
			out = append(out, d.Service+" has live-restore on ("+d.Why+"): no container runs now; any that runs when this step starts is stopped before it (docker stop)")
		default:
			out = append(out, "docker stop "+containerList(d.Containers)+" first: "+d.Service+" has live-restore on ("+d.Why+
				"), which leaves its containers running on / when dockerd stops (the list is taken again when this step runs)")
		}
	}
	return out
}

// dockerStartPlan is what start-services says of the containers it
// starts again: those stop-services stopped when it ran, else those
// running at plan time.
func dockerStartPlan(r *Report, s *State) string {
	var cs []initsys.Container
	if len(s.Containers) > 0 {
		for i := len(s.Containers) - 1; i >= 0; i-- {
			cs = append(cs, s.Containers[i].Container)
		}
	} else {
		for _, d := range r.Docker {
			if d.LiveRestore {
				for i := len(d.Containers) - 1; i >= 0; i-- {
					cs = append(cs, d.Containers[i])
				}
			}
		}
	}
	if len(cs) == 0 {
		return ""
	}
	return "then docker start " + containerList(cs) + ", one at a time, oldest first (stopped before their live-restore daemon)"
}

// stopContainers lists, again, the running containers of each docker
// daemon with live-restore that stop-services stops, records them in the
// State and stops them (one docker stop, which stops them in parallel).
func stopContainers(ctx context.Context, rt *Runtime, s *State) error {
	for _, d := range rt.Report.Docker {
		if !d.LiveRestore {
			continue
		}
		cli := initsys.DockerCLI{Host: d.Host, Run: initsys.Runner(rt.Command)}
		cs, err := cli.Running(ctx)
		if err != nil {
			return fmt.Errorf("listing the containers of %s (live-restore keeps them running when it stops): %w", d.Service, err)
		}
		if len(cs) == 0 {
			rt.logf("    no container of %s runs: nothing to stop before it", d.Service)
			continue
		}
		ids := make([]string, 0, len(cs))
		for _, c := range cs {
			// Recorded before docker stop: one it stopped before failing
			// is started again all the same.
			s.Containers = append(s.Containers, DockerContainer{Container: c, Service: d.Service, Host: d.Host})
			ids = append(ids, c.ID)
		}
		rt.logf("    stopping the containers of %s first (live-restore keeps them running without it): %s", d.Service, containerList(cs))
		if err := cli.Stop(ctx, ids...); err != nil {
			return fmt.Errorf("docker stop (containers of %s): %w", d.Service, err)
		}
		for _, c := range cs {
			rt.logf("    stopped container %s", c)
		}
	}
	return nil
}

// containerHosts are the docker hosts of cs, in order of first use.
func containerHosts(cs []DockerContainer) []string {
	var hosts []string
	seen := map[string]bool{}
	for _, c := range cs {
		if !seen[c.Host] {
			seen[c.Host] = true
			hosts = append(hosts, c.Host)
		}
	}
	return hosts
}

// startContainers starts, once their daemon answers, the recorded
// containers not yet started, one docker start each, oldest first (a
// container sharing another's network namespace needs that one up), and
// reports each. mark: record them as started (start-services, from the
// new root); the undo of stop-services starts every one on the old root.
// When one fails, those it did start are stopped again, so that none is
// left running from a root a rollback is about to leave.
func startContainers(ctx context.Context, rt *Runtime, s *State, where string, mark bool) error {
	var errs []error
	for _, host := range containerHosts(s.Containers) {
		cli := initsys.DockerCLI{Host: host, Run: initsys.Runner(rt.Command)}
		if err := waitDocker(ctx, rt, cli); err != nil {
			errs = append(errs, err)
			continue
		}
		for i := len(s.Containers) - 1; i >= 0; i-- {
			c := &s.Containers[i]
			if c.Host != host || mark && c.Started {
				continue
			}
			if err := cli.Start(ctx, c.ID); err != nil {
				rt.logf("    container %s did not start %s: %v", c.Container, where, err)
				errs = append(errs, fmt.Errorf("docker start %s (%s): %w", c.Short(), c.Name, err))
				continue
			}
			rt.logf("    started container %s %s", c.Container, where)
			c.Started = mark
		}
	}
	if len(errs) > 0 && mark {
		if err := stopStarted(ctx, rt, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stopStarted stops the containers start-services started.
func stopStarted(ctx context.Context, rt *Runtime, s *State) error {
	var errs []error
	for _, host := range containerHosts(s.Containers) {
		var ids []string
		for _, c := range s.Containers {
			if c.Host == host && c.Started {
				ids = append(ids, c.ID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		cli := initsys.DockerCLI{Host: host, Run: initsys.Runner(rt.Command)}
		if err := cli.Stop(ctx, ids...); err != nil {
			errs = append(errs, fmt.Errorf("docker stop: %w", err))
			continue
		}
		for i := range s.Containers {
			if s.Containers[i].Host == host {
				s.Containers[i].Started = false
			}
		}
	}
	return errors.Join(errs...)
}

// waitDocker waits until the daemon at cli.Host answers docker ps.
func waitDocker(ctx context.Context, rt *Runtime, cli initsys.DockerCLI) error {
	deadline := rt.Now().Add(dockerReady)
	for {
		_, err := cli.Running(ctx)
		if err == nil {
			return nil
		}
		if rt.Now().After(deadline) {
			return fmt.Errorf("docker at %s does not answer %s after its service started: %w", cli.Host, dockerReady, err)
		}
		if err := rt.sleep(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}
