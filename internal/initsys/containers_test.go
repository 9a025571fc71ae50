package initsys

import (
	"fmt"
	"strings"
	"testing"
)

// containerTree is a systemd host running docker (containers in the
// moby namespace of containerd), a containerd-only container (k8s.io)
// and a podman container run from a unit.
func containerTree(t *testing.T, daemonJSON string) *tree {
	tr := newTree(t)
	proc := func(pid, ppid int, comm, cgroup string, argv ...string) {
		tr.process(pid, ppid, comm, "/usr/bin/"+comm, argv...)
		tr.write(tr.proc, fmt.Sprint(pid)+"/cgroup", "0::"+cgroup+"\n")
	}
	tr.process(1, 0, "systemd", "/usr/lib/systemd/systemd", "/sbin/init")
	proc(400, 1, "dockerd", "/system.slice/docker.service", "/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock")
	proc(410, 1, "containerd", "/system.slice/containerd.service", "/usr/bin/containerd")
	proc(420, 1, "containerd-shim", "/system.slice/containerd.service",
		"/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", "4f1c9a", "-address", "/run/containerd/containerd.sock")
	proc(421, 420, "nginx", "/system.slice/docker-4f1c9a.scope", "nginx: master process nginx -g daemon off;")
	proc(422, 421, "nginx", "/system.slice/docker-4f1c9a.scope", "nginx: worker process")
	proc(430, 1, "containerd-shim", "/system.slice/containerd.service",
		"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "77aa", "-address", "/run/containerd/containerd.sock")
	proc(431, 430, "pause", "/kubepods.slice/kubepods-pod1.slice/cri-containerd-77aa.scope", "/pause")
	proc(440, 1, "conmon", "/system.slice/web.service", "/usr/bin/conmon", "--api-version", "1", "-c", "9e9e")
	proc(441, 440, "httpd", "/machine.slice/libpod-9e9e.scope/container", "httpd", "-DFOREGROUND")
	if daemonJSON != "" {
		tr.file("etc/docker/daemon.json", daemonJSON)
	}
	return tr
}

func TestContainerServiceOf(t *testing.T) {
	tr := containerTree(t, "")
	sys := &Systemd{cfg: tr.config(nil)}
	docker := "docker.service"
	tests := []struct {
		pid  int
		want Service
	}{
		{421, Service{Name: docker, Kind: ServiceUnit, Restartable: true,
			Why: "container process (containerd-shim 420) of dockerd, whose service docker.service stops its containers and starts again those with a restart policy"}},
		{422, Service{Name: docker, Kind: ServiceUnit, Restartable: true,
			Why: "container process (containerd-shim 420) of dockerd, whose service docker.service stops its containers and starts again those with a restart policy"}},
		{420, Service{Name: docker, Kind: ServiceUnit, Restartable: true,
			Why: "container shim containerd-shim of dockerd, whose service docker.service stops its containers and starts again those with a restart policy"}},
		{431, Service{Name: "containerd.service", Kind: ServiceUnit, Restartable: true,
			Why: "container process (containerd-shim 430) of containerd, whose service containerd.service stops its containers and starts again those with a restart policy"}},
		{441, Service{Name: "web.service", Kind: ServiceUnit, Restartable: true,
			Why: "container process (conmon 440) of a podman container, run by web.service"}},
		{400, Service{Name: docker, Kind: ServiceUnit, Restartable: true}},
	}
	for _, tc := range tests {
		if got, ok := sys.ServiceOf(tc.pid); !ok || got != tc.want {
			t.Errorf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v", tc.pid, got, ok, tc.want)
		}
	}
}

func TestDockerLiveRestore(t *testing.T) {
	for _, tc := range []struct {
		json string
		flag string // an extra dockerd argument
		want bool
	}{
		{"", "", false},
		{`{"live-restore": false}`, "", false},
		{`{"storage-driver": "overlay2", "live-restore": true}`, "", true},
		{`{"live-restore": true}`, "--live-restore=false", false},
		{`{}`, "--live-restore", true},
		{`{"live-restore": tru`, "", false}, // unreadable: not assumed
	} {
		tr := containerTree(t, tc.json)
		if tc.flag != "" {
			tr.process(400, 1, "dockerd", "/usr/sbin/dockerd", "/usr/sbin/dockerd", "-H", "fd://", tc.flag)
		}
		sys := &Systemd{cfg: tr.config(nil)}
		for _, pid := range []int{421, 400} {
			svc, ok := sys.ServiceOf(pid)
			if !ok || svc.Name != "docker.service" || svc.LiveRestore != tc.want {
				t.Errorf("daemon.json %q, flag %q: ServiceOf(%d) = %+v; want docker.service, LiveRestore %v", tc.json, tc.flag, pid, svc, tc.want)
			}
			if tc.want && !strings.Contains(svc.Why, "live-restore") {
				t.Errorf("daemon.json %q, flag %q: ServiceOf(%d).Why = %q, names no live-restore", tc.json, tc.flag, pid, svc.Why)
			}
		}
		ds := tr.config(nil).Dockerds()
		if len(ds) != 1 || ds[0].PID != 400 || ds[0].LiveRestore != tc.want {
			t.Errorf("daemon.json %q, flag %q: Dockerds() = %+v; want pid 400, LiveRestore %v", tc.json, tc.flag, ds, tc.want)
		}
	}
}
