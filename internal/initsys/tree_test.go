package initsys

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// runitTree lays out a runit tree under pid 1: runsvdir 200 (parent
// ppid), runsv 201 for nginx (202), runsv 203 for cron (204). Its
// supervisors work in oldRoot's copy of their directories when oldRoot
// is not "" (a pivot happened since they started).
func runitTree(tr *tree, ppid int, oldRoot string) {
	tr.process(200, ppid, "runsvdir", "/usr/bin/runsvdir", "runsvdir", "-P", "/etc/service", "log: ....")
	tr.process(201, 200, "runsv", "/usr/bin/runsv", "runsv", "nginx")
	tr.process(202, 201, "nginx", "/usr/sbin/nginx", "nginx: master process /usr/sbin/nginx")
	tr.process(203, 200, "runsv", "/usr/bin/runsv", "runsv", "cron")
	tr.process(204, 203, "cron", "/usr/sbin/cron", "/usr/sbin/cron", "-f")
	if oldRoot != "" {
		tr.symlink(tr.proc, "200/cwd", oldRoot+"/etc/service")
		tr.symlink(tr.proc, "201/cwd", oldRoot+"/etc/service/nginx")
		tr.symlink(tr.proc, "203/cwd", oldRoot+"/etc/service/cron")
	}
}

// gone removes processes from the fixture's /proc.
func (tr *tree) gone(pids ...int) {
	for _, p := range pids {
		if err := os.RemoveAll(filepath.Join(tr.proc, strconv.Itoa(p))); err != nil {
			tr.t.Fatal(err)
		}
	}
}

func TestTreeServiceOf(t *testing.T) {
	const respawnLine = "SV:123456:respawn:/etc/runit/2"
	for _, tc := range []struct {
		name  string
		setup func(tr *tree) System
		pid   int
		want  Service
	}{
		{"respawned by sysvinit's inittab", func(tr *tree) System {
			tr.process(1, 0, "init", "/sbin/init", "init [2]")
			tr.file("etc/inittab", "id:2:initdefault:\n1:2345:respawn:/sbin/getty 38400 tty1\n\n#runit-sysv maintscript -- BEGIN\n"+respawnLine+"\n")
			runitTree(tr, 1, "/mnt/oldroot")
			return &SysV{cfg: tr.config(nil)}
		}, 201, Service{Name: "runsvdir /etc/service", Kind: RunitService, Restartable: true,
			Why: "supervision tree (runsvdir /etc/service, pid 200) respawned by /etc/inittab line " + respawnLine +
				": taking it down (kill -HUP 200) makes PID 1 start it again from its current root",
			Tree:   Tree{Kind: RunitService, Top: 200, Scanner: true, Dir: "/etc/service", Respawn: "/etc/inittab line " + respawnLine},
			Manual: "kill -HUP 200   # PID 1 starts it again"}},
		{"a service whose runsv works in the old root", func(tr *tree) System {
			tr.process(1, 0, "init", "/sbin/init", "init [2]")
			tr.file("etc/inittab", respawnLine+"\n")
			runitTree(tr, 1, "/mnt/oldroot")
			return &SysV{cfg: tr.config(nil)}
		}, 202, Service{Name: "runsvdir /etc/service", Kind: RunitService, Restartable: true,
			Why: "child of runsv /etc/service/nginx, which works in another root's copy of it (cwd /mnt/oldroot/etc/service/nginx): " +
				"supervision tree (runsvdir /etc/service, pid 200) respawned by /etc/inittab line " + respawnLine +
				": taking it down (kill -HUP 200) makes PID 1 start it again from its current root",
			Tree:   Tree{Kind: RunitService, Top: 200, Scanner: true, Dir: "/etc/service", Respawn: "/etc/inittab line " + respawnLine},
			Manual: "kill -HUP 200   # PID 1 starts it again"}},
		{"a service whose runsv works here", func(tr *tree) System {
			tr.process(1, 0, "init", "/sbin/init", "init [2]")
			runitTree(tr, 1, "")
			tr.symlink(tr.proc, "201/cwd", "/etc/service/nginx")
			return &SysV{cfg: tr.config(nil)}
		}, 202, Service{Name: "/etc/service/nginx", Kind: RunitService, Restartable: true, Why: "child of runsv /etc/service/nginx"}},
		{"runit is PID 1", func(tr *tree) System {
			tr.process(1, 0, "runit", "/sbin/runit", "runit")
			runitTree(tr, 1, "/mnt/oldroot")
			return &Unknown{cfg: tr.config(nil)}
		}, 203, Service{Name: "runsvdir /etc/service", Kind: RunitService, Restartable: true,
			Why: "supervision tree (runsvdir /etc/service, pid 200) respawned by runit (PID 1), which starts stage 2 (/etc/runit/2) again when it exits" +
				": taking it down (kill -HUP 200) makes PID 1 start it again from its current root",
			Tree:   Tree{Kind: RunitService, Top: 200, Scanner: true, Dir: "/etc/service", Respawn: "runit (PID 1), which starts stage 2 (/etc/runit/2) again when it exits"},
			Manual: "kill -HUP 200   # PID 1 starts it again"}},
		{"runsvdir is a container's PID 1", func(tr *tree) System {
			tr.process(1, 0, "runsvdir", "/usr/bin/runsvdir", "runsvdir", "-P", "/etc/service")
			tr.process(201, 1, "runsv", "/usr/bin/runsv", "runsv", "nginx")
			return &Unknown{cfg: tr.config(nil)}
		}, 201, Service{Name: "runsvdir /etc/service", Kind: RunitService,
			Why:    "supervision tree (runsvdir /etc/service, pid 1) is PID 1: its services keep the root it started from until PID 1 itself restarts (the container)",
			Tree:   Tree{Kind: RunitService, Top: 1, Scanner: true, Dir: "/etc/service"},
			Manual: "restart the container from its host (its PID 1, runsvdir /etc/service, keeps the old root)"}},
		{"started by hand from a shell", func(tr *tree) System {
			tr.process(1, 0, "init", "/sbin/init", "init [2]")
			tr.process(150, 1, "bash", "/bin/bash", "-bash")
			runitTree(tr, 150, "/mnt/oldroot")
			return &SysV{cfg: tr.config(nil)}
		}, 200, Service{Name: "runsvdir /etc/service", Kind: RunitService,
			Why:    "supervision tree (runsvdir /etc/service, pid 200) that no service manager started and PID 1 does not respawn: it is not restarted for you",
			Tree:   Tree{Kind: RunitService, Top: 200, Scanner: true, Dir: "/etc/service"},
			Manual: "kill -HUP 200; then start runsvdir -P /etc/service log: .... again, as it was started"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t)
			sys := tc.setup(tr)
			got, ok := sys.ServiceOf(tc.pid)
			if !ok || got != tc.want {
				t.Errorf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v", tc.pid, got, ok, tc.want)
			}
		})
	}
}

// Restarting a tree takes it down through its scanner, waits for its
// supervisors to go, and has it started again by what started it.
func TestTreeRestartCommands(t *testing.T) {
	ctx := context.Background()
	t.Run("runit.service under systemd", func(t *testing.T) {
		tr := newTree(t)
		tr.process(1, 0, "systemd", "/usr/lib/systemd/systemd", "/sbin/init")
		runitTree(tr, 1, "/mnt/oldroot")
		for _, p := range []string{"200", "201", "202", "203", "204"} {
			tr.write(tr.proc, p+"/cgroup", "0::/system.slice/runit.service\n")
		}
		run := &fakeRunner{}
		run.on = func(argv string) {
			if argv == "kill -HUP 200" {
				tr.gone(200, 201, 202, 203, 204)
			}
		}
		sys := &Systemd{cfg: tr.config(run.run)}
		svc, _ := sys.ServiceOf(204)
		if svc.Name != "runit.service" || svc.Tree.Starter != "runit.service" || !svc.Restartable {
			t.Fatalf("ServiceOf(cron) = %+v, want the tree of runit.service", svc)
		}
		if svc.Manual != "kill -HUP 200; systemctl start runit.service" {
			t.Errorf("Manual = %q", svc.Manual)
		}
		if err := sys.Restart(ctx, svc); err != nil {
			t.Fatal(err)
		}
		want := []string{"kill -HUP 200", "systemctl show -p TriggeredBy --value runit.service", "systemctl start runit.service"}
		if got := run.got(); !reflect.DeepEqual(got, want) {
			t.Errorf("commands = %q\nwant %q", got, want)
		}
	})
	t.Run("respawned by inittab", func(t *testing.T) {
		tr := newTree(t)
		tr.process(1, 0, "init", "/sbin/init", "init [2]")
		tr.file("etc/inittab", "SV:123456:respawn:/etc/runit/2\n")
		runitTree(tr, 1, "/mnt/oldroot")
		run := &fakeRunner{}
		run.on = func(argv string) {
			if argv == "kill -HUP 200" {
				tr.gone(200, 201, 202, 203, 204)
				// init respawns /etc/runit/2 from the new root.
				tr.process(250, 1, "runsvdir", "/usr/bin/runsvdir", "runsvdir", "-P", "/etc/service", "log: ....")
			}
		}
		sys := &SysV{cfg: tr.config(run.run)}
		svc, _ := sys.ServiceOf(202)
		if err := sys.Restart(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if got, want := run.got(), []string{"kill -HUP 200"}; !reflect.DeepEqual(got, want) {
			t.Errorf("commands = %q, want %q", got, want)
		}
		if up, err := sys.Running(ctx, svc); !up || err != nil {
			t.Errorf("Running(tree) = %v, %v; want true (runsvdir 250)", up, err)
		}
		// PID 1 would start it again at once: it is not stopped.
		run.calls = nil
		if err := sys.Stop(ctx, svc); !errors.Is(err, ErrNotRestartable) {
			t.Errorf("Stop(respawned tree) = %v, want ErrNotRestartable", err)
		}
		if got := run.got(); len(got) != 0 {
			t.Errorf("Stop ran %q", got)
		}
	})
	t.Run("s6 started by an init script", func(t *testing.T) {
		tr := newTree(t)
		tr.process(1, 0, "init", "/sbin/init", "init [2]")
		tr.file("etc/init.d/s6", "#!/bin/sh\nstart-stop-daemon --start -b -m --pidfile /run/s6-svscan.pid --exec /bin/s6-svscan -- /run/service\n")
		tr.file("run/s6-svscan.pid", "300\n")
		tr.process(300, 1, "s6-svscan", "/bin/s6-svscan", "s6-svscan", "/run/service")
		tr.process(301, 300, "s6-supervise", "/bin/s6-supervise", "s6-supervise", "redis")
		tr.process(302, 301, "redis-server", "/usr/bin/redis-server", "/usr/bin/redis-server")
		tr.symlink(tr.proc, "301/cwd", "/mnt/oldroot/run/service/redis")
		run := &fakeRunner{}
		run.on = func(argv string) {
			if argv == "s6-svscanctl -t /run/service" {
				tr.gone(300, 301, 302)
			}
		}
		sys := &SysV{cfg: tr.config(run.run)}
		svc, _ := sys.ServiceOf(302)
		if err := sys.Restart(ctx, svc); err != nil {
			t.Fatal(err)
		}
		want := []string{"s6-svscanctl -t /run/service", "/etc/init.d/s6 start"}
		if got := run.got(); !reflect.DeepEqual(got, want) {
			t.Errorf("commands = %q\nwant %q", got, want)
		}
	})
	t.Run("start a service stopped before the pivot", func(t *testing.T) {
		// start-services has only the name the journal kept.
		tr := newTree(t)
		tr.process(1, 0, "init", "/sbin/init", "init [2]")
		tr.file("etc/init.d/runit", "#!/bin/sh\nstart-stop-daemon --start -b -m --pidfile /run/runsvdir.pid --exec /usr/bin/runsvdir -- -P /etc/service\n")
		tr.file("run/runsvdir.pid", "200\n")
		runitTree(tr, 1, "/mnt/oldroot")
		run := &fakeRunner{}
		run.on = func(argv string) {
			switch argv {
			case "kill -HUP 200":
				tr.gone(200, 201, 202, 203, 204)
			case "/etc/init.d/runit start":
				tr.process(260, 1, "runsvdir", "/usr/bin/runsvdir", "runsvdir", "-P", "/etc/service", "log: ....")
				tr.process(261, 260, "runsv", "/usr/bin/runsv", "runsv", "nginx")
				tr.symlink(tr.proc, "261/cwd", "/etc/service/nginx")
			}
		}
		sys := &SysV{cfg: tr.config(run.run)}
		if err := sys.Start(ctx, Service{Name: "/etc/service/nginx", Kind: InitDScript, Restartable: true}); err != nil {
			t.Fatal(err)
		}
		want := []string{"kill -HUP 200", "/etc/init.d/runit start", "sv start /etc/service/nginx"}
		if got := run.got(); !reflect.DeepEqual(got, want) {
			t.Errorf("commands = %q\nwant %q", got, want)
		}
	})
	t.Run("PID 1's tree is not restarted", func(t *testing.T) {
		tr := newTree(t)
		tr.process(1, 0, "runsvdir", "/usr/bin/runsvdir", "runsvdir", "-P", "/etc/service")
		tr.process(201, 1, "runsv", "/usr/bin/runsv", "runsv", "nginx")
		tr.process(202, 201, "nginx", "/usr/sbin/nginx", "nginx: master process")
		tr.symlink(tr.proc, "201/cwd", "/mnt/oldroot/etc/service/nginx")
		run := &fakeRunner{}
		sys := &Unknown{cfg: tr.config(run.run)}
		svc, _ := sys.ServiceOf(202)
		if err := sys.Restart(ctx, svc); !errors.Is(err, ErrNotRestartable) {
			t.Errorf("Restart(PID 1's tree) = %v, want ErrNotRestartable", err)
		}
		err := sys.Start(ctx, Service{Name: "/etc/service/nginx", Kind: RunitService, Restartable: true})
		if !errors.Is(err, ErrNotRestartable) {
			t.Errorf("Start(nginx of PID 1's tree) = %v, want ErrNotRestartable", err)
		}
		if got := run.got(); len(got) != 0 {
			t.Errorf("ran %q", got)
		}
	})
}
