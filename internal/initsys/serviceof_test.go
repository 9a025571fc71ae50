package initsys

import "testing"

// sysvTree is a Debian-like sysvinit root: pidfiles in /run, scripts in
// /etc/init.d, /var/run the usual absolute link to /run.
func sysvTree(t *testing.T) *tree {
	tr := newTree(t)
	tr.process(1, 0, "init", "/sbin/init", "init [2]")
	tr.fifo("run/initctl")
	tr.symlink(tr.root, "var/run", "/run")

	tr.file("run/sshd.pid", "812\n")
	tr.file("etc/init.d/ssh", "#!/bin/sh\n")
	tr.process(812, 1, "sshd", "/usr/sbin/sshd", "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups")
	tr.process(4711, 812, "sshd", "/usr/sbin/sshd", "sshd: root@pts/0")
	tr.process(4720, 4711, "bash", "/bin/bash", "-bash")

	tr.file("run/crond.pid", "900")
	tr.file("etc/init.d/cron", "#!/bin/sh\n")
	tr.process(900, 1, "cron", "/usr/sbin/cron", "/usr/sbin/cron")

	tr.file("run/postgresql/15-main.pid", "1000\n/var/lib/postgresql/15/main\n")
	tr.file("etc/init.d/postgresql", "#!/bin/sh\n")
	tr.process(1000, 1, "postgres", "/usr/lib/postgresql/15/bin/postgres", "/usr/lib/postgresql/15/bin/postgres")

	tr.file("run/dbus/pid", "700\n")
	tr.file("etc/init.d/dbus", "#!/bin/sh\n")
	tr.process(700, 1, "dbus-daemon", "/usr/bin/dbus-daemon", "/usr/bin/dbus-daemon", "--system")

	tr.file("run/mystery.pid", "1200\n")
	tr.process(1200, 1, "mystery", "/usr/local/bin/mystery", "mystery")

	tr.process(1300, 1, "agetty", "/sbin/agetty", "/sbin/agetty", "tty1")
	return tr
}

func TestSysVServiceOf(t *testing.T) {
	tr := sysvTree(t)
	sys := &SysV{cfg: tr.config(nil)}
	tests := []struct {
		pid  int
		want Service
		ok   bool
	}{
		{812, Service{Name: "ssh", Kind: InitDScript, Restartable: true, Why: "/run/sshd.pid holds 812, script /etc/init.d/ssh"}, true},
		{4711, Service{Name: "ssh", Kind: InitDScript, Restartable: true, Why: "parent 812 is in /run/sshd.pid, script /etc/init.d/ssh"}, true},
		{4720, Service{Name: "ssh", Kind: InitDScript, Restartable: true, Why: "parent 812 is in /run/sshd.pid, script /etc/init.d/ssh"}, true},
		{900, Service{Name: "cron", Kind: InitDScript, Restartable: true, Why: "/run/crond.pid holds 900, script /etc/init.d/cron"}, true},
		{1000, Service{Name: "postgresql", Kind: InitDScript, Restartable: true, Why: "/run/postgresql/15-main.pid holds 1000, script /etc/init.d/postgresql"}, true},
		{700, Service{Name: "dbus", Kind: InitDScript, Restartable: true, Why: "/run/dbus/pid holds 700, script /etc/init.d/dbus"}, true},
		{1200, Service{Name: "mystery", Kind: InitDScript, Why: "/run/mystery.pid holds 1200 but no /etc/init.d script names it or is named mystery"}, true},
		{1300, Service{}, false},
		{1, Service{}, false},
	}
	for _, tc := range tests {
		got, ok := sys.ServiceOf(tc.pid)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v, %v", tc.pid, got, ok, tc.want, tc.ok)
		}
	}
}

func TestSysVServiceOfGentooNames(t *testing.T) {
	// Gentoo names the scripts after the daemons: sshd.pid is sshd, and
	// the seed procedure's cron is vixie-cron.
	tr := newTree(t)
	tr.file("run/sshd.pid", "5601\n")
	tr.file("etc/init.d/sshd", "#!/sbin/openrc-run\n")
	tr.file("run/crond.pid", "5700\n")
	tr.file("etc/init.d/vixie-cron", "#!/sbin/openrc-run\n")
	tr.process(5601, 1, "sshd", "/usr/sbin/sshd", "/usr/sbin/sshd")
	tr.process(5700, 1, "cron", "/usr/sbin/cron", "/usr/sbin/cron")
	sys := &SysV{cfg: tr.config(nil)}
	for pid, want := range map[int]string{5601: "sshd", 5700: "vixie-cron"} {
		if got, ok := sys.ServiceOf(pid); !ok || got.Name != want || !got.Restartable {
			t.Errorf("ServiceOf(%d) = %+v, %v; want restartable %s", pid, got, ok, want)
		}
	}
}

func TestOpenRCServiceOf(t *testing.T) {
	tr := newTree(t)
	tr.process(1, 0, "init", "/sbin/init", "init [3]")
	// start-stop-daemon record with a pidfile
	tr.file("run/openrc/daemons/sshd/001", "exec=/usr/sbin/sshd\nargv_0=/usr/sbin/sshd\npidfile=/run/sshd.pid\n")
	tr.file("run/sshd.pid", "812\n")
	tr.process(812, 1, "sshd", "/usr/sbin/sshd", "/usr/sbin/sshd")
	// record without pidfile: matched by exe, here after a pivot
	tr.file("run/openrc/daemons/dnsmasq/001", "exec=/usr/sbin/dnsmasq\nargv_0=dnsmasq\n")
	tr.process(1400, 1, "dnsmasq", "/mnt/oldroot/usr/sbin/dnsmasq (deleted)", "dnsmasq")
	// no record, pidfile only
	tr.file("run/smartd.pid", "1500\n")
	tr.file("etc/init.d/smartd", "#!/sbin/openrc-run\n")
	tr.process(1500, 1, "smartd", "/usr/sbin/smartd", "/usr/sbin/smartd")

	sys := &OpenRC{SysV: SysV{cfg: tr.config(nil)}}
	tests := []struct {
		pid  int
		want Service
	}{
		{812, Service{Name: "sshd", Kind: OpenRCService, Restartable: true, Why: "start-stop-daemon record /run/openrc/daemons/sshd/001"}},
		{1400, Service{Name: "dnsmasq", Kind: OpenRCService, Restartable: true, Why: "start-stop-daemon record /run/openrc/daemons/dnsmasq/001"}},
		{1500, Service{Name: "smartd", Kind: OpenRCService, Restartable: true, Why: "/run/smartd.pid holds 1500, script /etc/init.d/smartd"}},
	}
	for _, tc := range tests {
		if got, ok := sys.ServiceOf(tc.pid); !ok || got != tc.want {
			t.Errorf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v", tc.pid, got, ok, tc.want)
		}
	}
}

func TestBusyboxServiceOf(t *testing.T) {
	tr := newTree(t)
	tr.process(1, 0, "init", "/bin/busybox", "init")
	tr.file("etc/inittab", `# busybox inittab
::sysinit:/etc/init.d/rcS
ttyS0::respawn:/sbin/getty -L  ttyS0 115200 vt100
tty1::askfirst:-/bin/sh
::once:/usr/sbin/telnetd -F
`)
	tr.process(50, 1, "getty", "/bin/busybox", "/sbin/getty", "-L", "ttyS0", "115200", "vt100")
	tr.process(51, 1, "sh", "/bin/busybox", "/bin/sh")
	tr.process(52, 1, "telnetd", "/bin/busybox", "/usr/sbin/telnetd", "-F")
	tr.process(53, 52, "sh", "/bin/busybox", "/sbin/getty", "-L", "ttyS0", "115200", "vt100") // not init's child
	sys := &Busybox{cfg: tr.config(nil)}
	tests := []struct {
		pid  int
		want Service
		ok   bool
	}{
		{50, Service{Name: "/sbin/getty -L ttyS0 115200 vt100", Kind: InittabEntry,
			Why: "/etc/inittab respawn line: kill it and busybox init starts it again, from the root init now sees"}, true},
		{51, Service{Name: "/bin/sh", Kind: InittabEntry,
			Why: "/etc/inittab askfirst line: kill it and busybox init starts it again, from the root init now sees"}, true},
		{52, Service{Name: "/usr/sbin/telnetd -F", Kind: InittabEntry,
			Why: "/etc/inittab once line: busybox init does not start it again"}, true},
		{53, Service{}, false},
	}
	for _, tc := range tests {
		got, ok := sys.ServiceOf(tc.pid)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ServiceOf(%d) =\n  %+v, %v\nwant\n  %+v, %v", tc.pid, got, ok, tc.want, tc.ok)
		}
	}
}
