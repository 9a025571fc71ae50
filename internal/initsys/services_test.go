package initsys

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
)

// busyboxTree is a Buildroot-style system: busybox init, rcS scripts in
// testdata/busybox/etc/init.d, pidfiles in its /var/run, a fake /proc.
func busyboxTree(t *testing.T) (*tree, Config) {
	tr := newTree(t)
	tr.process(1, 0, "init", "/bin/busybox", "init")
	tr.process(50, 1, "getty", "/bin/busybox", "/sbin/getty", "-L", "console", "0", "vt100")
	tr.process(110, 1, "syslogd", "/bin/busybox", "/sbin/syslogd", "-n")
	tr.process(120, 1, "crond", "/bin/busybox", "/usr/sbin/crond", "-f", "-c", "/etc/cron/crontabs")
	tr.process(121, 120, "sh", "/bin/busybox", "/bin/sh", "-c", "run-parts /etc/cron/daily")
	tr.process(130, 1, "httpd", "/bin/busybox", "/usr/sbin/httpd", "-h", "/var/www")
	tr.process(140, 1, "nginx", "/usr/sbin/nginx", "nginx: master process /usr/sbin/nginx -c /etc/nginx/nginx.conf")
	tr.process(141, 140, "nginx", "/usr/sbin/nginx", "nginx: worker process")
	tr.process(150, 1, "udhcpc", "/bin/busybox", "udhcpc", "-R", "-b", "-p", "/var/run/udhcpc.eth0.pid", "-i", "eth0")
	// After a pivot: the exe link text gains the old root's mount point.
	tr.process(160, 1, "dropbear", "/mnt/oldroot/usr/sbin/dropbear (deleted)", "/usr/sbin/dropbear", "-R", "-p", "22")
	tr.process(170, 1, "telnetd", "/bin/busybox", "/usr/sbin/telnetd")
	// A crond of some chroot: the scripts of this root did not start it.
	tr.process(180, 1, "crond", "/bin/busybox", "crond", "-f")
	tr.symlink(tr.proc, "180/root", "/srv/chroot")
	root, err := filepath.Abs("testdata/busybox")
	if err != nil {
		t.Fatal(err)
	}
	return tr, Config{ProcRoot: tr.proc, Root: root}
}

func TestBusyboxScriptServiceOf(t *testing.T) {
	_, cfg := busyboxTree(t)
	sys := &Busybox{cfg: cfg}
	tests := []struct {
		pid  int
		want Service
		ok   bool
	}{
		{110, Service{Name: "S01syslogd", Kind: InitDScript, Restartable: true,
			Why: "/var/run/syslogd.pid holds 110, named by /etc/init.d/S01syslogd"}, true},
		{120, Service{Name: "S40scheduler", Kind: InitDScript, Restartable: true,
			Why: "/var/run/cron-daily.pid holds 120, named by /etc/init.d/S40scheduler"}, true},
		{121, Service{Name: "S40scheduler", Kind: InitDScript, Restartable: true,
			Why: "parent 120 is in /var/run/cron-daily.pid, named by /etc/init.d/S40scheduler"}, true},
		{130, Service{Name: "S45httpd", Kind: InitDScript, Restartable: true,
			Why: "runs /usr/sbin/httpd, started by /etc/init.d/S45httpd"}, true},
		{140, Service{Name: "S50webserver", Kind: InitDScript, Restartable: true,
			Why: "/var/run/nginx.pid holds 140, named by /etc/init.d/S50webserver"}, true},
		// A worker runs the program the script names.
		{141, Service{Name: "S50webserver", Kind: InitDScript, Restartable: true,
			Why: "runs /usr/sbin/nginx, started by /etc/init.d/S50webserver"}, true},
		{150, Service{Name: "udhcpc.eth0", Kind: InitDScript,
			Why: "/var/run/udhcpc.eth0.pid holds 150 but no /etc/init.d script names it or is named udhcpc.eth0"}, true},
		{160, Service{Name: "S50dropbear", Kind: InitDScript, Restartable: true,
			Why: "runs /usr/sbin/dropbear, started by /etc/init.d/S50dropbear"}, true},
		{50, Service{Name: "/sbin/getty -L console 0 vt100", Kind: InittabEntry,
			Why: "/etc/inittab respawn line: kill it and busybox init starts it again, from the root init now sees"}, true},
		{170, Service{}, false},
		{180, Service{}, false},
	}
	for _, tc := range tests {
		got, ok := sys.ServiceOf(tc.pid)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v, %v", tc.pid, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBusyboxScriptCommands(t *testing.T) {
	ctx := context.Background()
	_, cfg := busyboxTree(t)
	run := &fakeRunner{}
	cfg.Run = run.run
	b := &Busybox{cfg: cfg}
	sched := Service{Name: "S40scheduler", Kind: InitDScript, Restartable: true}
	// A name saved in the journal comes back as a bare InitDScript; the
	// rc name without its number finds its S?? script.
	web := Service{Name: "webserver", Kind: InitDScript, Restartable: true}
	for _, err := range []error{b.Stop(ctx, sched), b.Start(ctx, sched), b.Restart(ctx, web)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"/etc/init.d/S40scheduler stop", "/etc/init.d/S40scheduler start",
		"/etc/init.d/S50webserver stop", "/etc/init.d/S50webserver start"}
	if got := run.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("commands =\n  %q\nwant\n  %q", got, want)
	}
	if err := b.Stop(ctx, Service{Name: "nosuch", Kind: InitDScript, Restartable: true}); !errors.Is(err, ErrNotRestartable) {
		t.Errorf("Stop of a script that is not there = %v, want ErrNotRestartable", err)
	}
	if err := b.Stop(ctx, Service{Name: "udhcpc.eth0", Kind: InitDScript, Why: "no script"}); !errors.Is(err, ErrNotRestartable) {
		t.Errorf("Stop of an unowned pidfile = %v, want ErrNotRestartable", err)
	}
	if got := run.got(); len(got) != len(want) {
		t.Errorf("refused stops ran %q", got[len(want):])
	}
	for _, tc := range []struct {
		name string
		want bool
	}{{"S40scheduler", true}, {"dropbear", true}, {"S60network", false}, {"nosuch", false}} {
		got, err := b.Running(ctx, Service{Name: tc.name, Kind: InitDScript, Restartable: true})
		if err != nil || got != tc.want {
			t.Errorf("Running(%s) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// openRCTree is OpenRC on sysvinit with the scripts of testdata/openrc.
func openRCTree(t *testing.T) (*tree, Config) {
	tr := newTree(t)
	root, err := filepath.Abs("testdata/openrc")
	if err != nil {
		t.Fatal(err)
	}
	tr.process(1, 0, "init", "/sbin/init", "init [3]")
	tr.process(600, 1, "dropbear", "/usr/sbin/dropbear", "/usr/sbin/dropbear", "-P", "/run/dropbear-main.pid")
	tr.process(610, 1, "server", "/opt/webapp/bin/server", "/opt/webapp/bin/server")
	tr.process(620, 1, "supervise-daemon", "/sbin/supervise-daemon",
		"supervise-daemon", "chronyd", "--start", "--pidfile", "/run/chronyd.pid", "/usr/sbin/chronyd", "--", "-d")
	tr.process(621, 620, "chronyd", "/usr/sbin/chronyd", "/usr/sbin/chronyd", "-d")
	return tr, Config{ProcRoot: tr.proc, Root: root}
}

func TestOpenRCScriptText(t *testing.T) {
	_, cfg := openRCTree(t)
	sys := &OpenRC{SysV: SysV{cfg: cfg}}
	tests := []struct {
		pid  int
		want Service
	}{
		{600, Service{Name: "dropbear", Kind: OpenRCService, Restartable: true, Why: "/run/dropbear-main.pid holds 600, named by /etc/init.d/dropbear"}},
		{610, Service{Name: "webapp", Kind: OpenRCService, Restartable: true, Why: "runs /opt/webapp/bin/server, started by /etc/init.d/webapp"}},
		{620, Service{Name: "chronyd", Kind: OpenRCService, Restartable: true, Why: "supervise-daemon chronyd (pid 620)"}},
		{621, Service{Name: "chronyd", Kind: OpenRCService, Restartable: true, Why: "child of supervise-daemon chronyd (pid 620)"}},
	}
	for _, tc := range tests {
		if got, ok := sys.ServiceOf(tc.pid); !ok || got != tc.want {
			t.Errorf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v", tc.pid, got, ok, tc.want)
		}
	}
}

// superviseTree: runit started by an init script of sysvinit, s6 started
// by nobody (a container's PID 1 would be the same).
func superviseTree(t *testing.T) *tree {
	tr := sysvTree(t)
	tr.file("etc/init.d/runit", "#!/bin/sh\nstart-stop-daemon --start -b -m --pidfile /run/runsvdir.pid --exec /usr/bin/runsvdir -- -P /etc/service\n")
	tr.file("run/runsvdir.pid", "200\n")
	tr.process(200, 1, "runsvdir", "/usr/bin/runsvdir", "runsvdir", "-P", "/etc/service", "log: ..........")
	tr.process(201, 200, "runsv", "/usr/bin/runsv", "runsv", "nginx")
	tr.process(202, 201, "nginx", "/usr/sbin/nginx", "nginx: master process /usr/sbin/nginx")
	tr.process(203, 202, "nginx", "/usr/sbin/nginx", "nginx: worker process")
	tr.process(204, 201, "svlogd", "/usr/bin/svlogd", "svlogd", "-tt", "/var/log/nginx")
	tr.process(300, 1, "s6-svscan", "/bin/s6-svscan", "s6-svscan", "-t0", "/run/service")
	tr.process(301, 300, "s6-supervise", "/bin/s6-supervise", "s6-supervise", "redis")
	tr.process(302, 301, "redis-server", "/usr/bin/redis-server", "/usr/bin/redis-server", "*:6379")
	return tr
}

func TestSupervisedServiceOf(t *testing.T) {
	tr := superviseTree(t)
	sys := &SysV{cfg: tr.config(nil)}
	nginx := Service{Name: "/etc/service/nginx", Kind: RunitService, Restartable: true, Why: "child of runsv /etc/service/nginx"}
	tests := []struct {
		pid  int
		want Service
	}{
		{202, nginx},
		{203, Service{Name: "/etc/service/nginx", Kind: RunitService, Restartable: true, Why: "parent 202 is a child of runsv /etc/service/nginx"}},
		{204, nginx},
		{302, Service{Name: "/run/service/redis", Kind: S6Service, Restartable: true, Why: "child of s6-supervise /run/service/redis"}},
		{201, Service{Name: "runit", Kind: InitDScript, Restartable: true,
			Why: "supervision tree (runsvdir /etc/service, pid 200) started by runit: restarting it takes the tree down (kill -HUP 200) " +
				"and starts runit again, which brings every service of the tree back from the current root; " +
				"/run/runsvdir.pid holds 200, named by /etc/init.d/runit",
			Tree:   Tree{Kind: RunitService, Top: 200, Scanner: true, Dir: "/etc/service", Starter: "runit", StarterKind: InitDScript},
			Manual: "kill -HUP 200; /etc/init.d/runit start"}},
		{301, Service{Name: "s6-svscan /run/service", Kind: S6Service,
			Why:    "supervision tree (s6-svscan /run/service, pid 300) that no service manager started and PID 1 does not respawn: it is not restarted for you",
			Tree:   Tree{Kind: S6Service, Top: 300, Scanner: true, Dir: "/run/service"},
			Manual: "s6-svscanctl -t /run/service; then start s6-svscan -t0 /run/service again, as it was started"}},
	}
	for _, tc := range tests {
		if got, ok := sys.ServiceOf(tc.pid); !ok || got != tc.want {
			t.Errorf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v", tc.pid, got, ok, tc.want)
		}
	}
	// In a container whose PID 1 is s6-svscan itself, the services are
	// still found.
	u := &Unknown{cfg: tr.config(nil)}
	if got, ok := u.ServiceOf(302); !ok || got.Name != "/run/service/redis" || !got.Restartable {
		t.Errorf("Unknown.ServiceOf(302) = %+v, %v; want the s6 service", got, ok)
	}
}

func TestSupervisedCommands(t *testing.T) {
	ctx := context.Background()
	tr := superviseTree(t)
	run := &fakeRunner{answers: map[string]answer{
		"sv status /etc/service/nginx":       {out: "run: /etc/service/nginx: (pid 202) 600s; run: log: (pid 204) 600s\n"},
		"s6-svstat -o up /run/service/redis": {out: "false\n"},
	}}
	// As the journal gives them back: a name and the PID 1 system's kind.
	nginx := Service{Name: "/etc/service/nginx", Kind: InitDScript, Restartable: true}
	redis := Service{Name: "/run/service/redis", Kind: InitDScript, Restartable: true}
	for _, sys := range []System{&SysV{cfg: tr.config(run.run)}, &Unknown{cfg: tr.config(run.run)}, &Systemd{cfg: tr.config(run.run)}} {
		run.calls = nil
		for _, err := range []error{sys.Stop(ctx, nginx), sys.Start(ctx, nginx), sys.Restart(ctx, nginx),
			sys.Stop(ctx, redis), sys.Start(ctx, redis), sys.Restart(ctx, redis)} {
			if err != nil {
				t.Fatalf("%s: %v", sys.Kind(), err)
			}
		}
		want := []string{
			"sv stop /etc/service/nginx", "sv start /etc/service/nginx", "sv restart /etc/service/nginx",
			"s6-svc -wd -T 10000 -d /run/service/redis", "s6-svc -wu -T 10000 -u /run/service/redis",
			"s6-svc -wr -T 10000 -r /run/service/redis",
		}
		if got := run.got(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: commands =\n  %q\nwant\n  %q", sys.Kind(), got, want)
		}
		if up, err := sys.Running(ctx, nginx); !up || err != nil {
			t.Errorf("%s: Running(nginx) = %v, %v; want true", sys.Kind(), up, err)
		}
		if up, err := sys.Running(ctx, redis); up || err != nil {
			t.Errorf("%s: Running(redis) = %v, %v; want false", sys.Kind(), up, err)
		}
	}
	// The tree without a manager is not stopped.
	sv := &SysV{cfg: tr.config(run.run)}
	tree, _ := sv.ServiceOf(301)
	if err := sv.Stop(ctx, tree); !errors.Is(err, ErrNotRestartable) {
		t.Errorf("Stop(%v) = %v, want ErrNotRestartable", tree, err)
	}
}
