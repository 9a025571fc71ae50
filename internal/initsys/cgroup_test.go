package initsys

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestServiceOfCgroup(t *testing.T) {
	tests := []struct {
		file string
		want Service
		ok   bool
	}{
		{"v2-ssh", Service{Name: "ssh.service", Kind: "service", Restartable: true}, true},
		{"v1-hybrid-ssh", Service{Name: "ssh.service", Kind: "service", Restartable: true}, true},
		{"v1-cron", Service{Name: "cron.service", Kind: "service", Restartable: true}, true},
		{"v2-udevd-subcgroup", Service{Name: "systemd-udevd.service", Kind: "service", Restartable: true,
			Why: "sub-cgroup udev of the unit"}, true},
		{"v2-session-scope", Service{Name: "session-3.scope", Kind: "scope",
			Why: "login session scope, not a restartable service: it ends when the session logs out"}, true},
		{"v2-init-scope", Service{Name: "init.scope", Kind: "scope",
			Why: "PID 1's own scope: re-executed by telinit-u, never restarted"}, true},
		{"v2-user-unit", Service{Name: "pipewire.service", Kind: "service",
			Why: "unit of the user manager user@1000.service (systemctl --user), not of PID 1"}, true},
		{"v2-user-manager", Service{Name: "user@1000.service", Kind: "service",
			Why: "per-user service manager; restarting it ends that user's units"}, true},
		{"v2-escaped", Service{Name: "cpu.weird.service", Kind: "service", Restartable: true}, true},
		{"v2-container-scope", Service{Name: "docker-4f1c9a.scope", Kind: "scope",
			Why: "transient scope (started by systemd-run --scope, a container manager or a login), not a restartable service"}, true},
		{"v2-mount", Service{Name: "var-lib-foo.mount", Kind: "mount",
			Why: "a .mount unit's helper process, not a service"}, true},
		{"v1-root", Service{}, false},
		{"v2-slice-only", Service{}, false},
	}
	tr := newTree(t)
	sys := &Systemd{cfg: tr.config(nil)}
	for i, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "cgroup", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			pid := 100 + i
			tr.process(pid, 1, "x", "")
			tr.write(tr.proc, filepath.Join(strconv.Itoa(pid), "cgroup"), string(data))
			got, ok := sys.ServiceOf(pid)
			if ok != tc.ok || got != tc.want {
				t.Errorf("ServiceOf over %s =\n  %+v, %v\nwant\n  %+v, %v", tc.file, got, ok, tc.want, tc.ok)
			}
		})
	}
	if svc, ok := sys.ServiceOf(99999); ok {
		t.Errorf("ServiceOf(vanished pid) = %+v, true; want false", svc)
	}
}

func TestSystemdCgroupPicksSystemdHierarchy(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"0::/system.slice/a.service\n", "/system.slice/a.service", true},
		// v1 name=systemd wins over a unified line that says less.
		{"1:name=systemd:/system.slice/b.service\n0::/\n", "/system.slice/b.service", true},
		{"0::/\n1:name=systemd:/system.slice/b.service\n", "/system.slice/b.service", true},
		// a path holding ':' is kept whole
		{"0::/system.slice/a:b.service\n", "/system.slice/a:b.service", true},
		{"4:memory:/foo\n", "", false},
		{"", "", false},
		{"garbage", "", false},
	}
	for _, tc := range tests {
		got, ok := SystemdCgroup([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("SystemdCgroup(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzSystemdCgroup(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "cgroup", "*"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("0::/_/.service/__.scope\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, ok := SystemdCgroup(data)
		if !ok {
			return
		}
		if !strings.HasPrefix(p, "/") {
			t.Fatalf("path %q does not start with /", p)
		}
		svc, ok := UnitOfCgroup(p)
		if !ok {
			return
		}
		if unitType(svc.Name) == "" || svc.Kind != unitType(svc.Name) {
			t.Fatalf("unit %q of kind %q: not a unit name of that kind", svc.Name, svc.Kind)
		}
		if strings.Contains(svc.Name, "/") {
			t.Fatalf("unit %q holds a slash", svc.Name)
		}
		if svc.Restartable && svc.Kind != ServiceUnit {
			t.Fatalf("%s is restartable but a %s", svc.Name, svc.Kind)
		}
		if !svc.Restartable && svc.Why == "" {
			t.Fatalf("%s is not restartable and says not why", svc.Name)
		}
	})
}
