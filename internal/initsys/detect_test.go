package initsys

import (
	"context"
	"testing"
)

func TestDetect(t *testing.T) {
	const systemctlVersion = "systemd 252 (252.39-1~deb12u1)\n+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP\n"
	tests := []struct {
		name     string
		setup    func(tr *tree)
		kind     Kind
		describe string
	}{
		{
			name: "systemd",
			setup: func(tr *tree) {
				tr.process(1, 0, "systemd", "/usr/lib/systemd/systemd", "/sbin/init", "splash")
				tr.dir("run/systemd/system")
			},
			kind:     KindSystemd,
			describe: "systemd 252 (re-exec: systemctl daemon-reexec)",
		},
		{
			name: "systemd with exe unreadable",
			setup: func(tr *tree) {
				tr.process(1, 0, "systemd", "", "/sbin/init")
			},
			kind:     KindSystemd,
			describe: "systemd 252 (re-exec: systemctl daemon-reexec)",
		},
		{
			name: "sysvinit with /run/initctl",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "/sbin/init", "init [2]")
				tr.fifo("run/initctl")
			},
			kind:     KindSysvinit,
			describe: "sysvinit (re-exec: telinit u through /run/initctl)",
		},
		{
			name: "old sysvinit with /dev/initctl",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "/sbin/init (deleted)", "init [3]")
				tr.fifo("dev/initctl")
			},
			kind:     KindSysvinit,
			describe: "sysvinit (re-exec: telinit u through /dev/initctl)",
		},
		{
			name: "sysvinit without a FIFO",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "/sbin/init", "init [2]")
			},
			kind:     KindSysvinit,
			describe: "sysvinit (re-exec: telinit u, but neither /run/initctl nor /dev/initctl is a FIFO: init is not listening)",
		},
		{
			name: "OpenRC on sysvinit (/run/openrc)",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "/sbin/init", "init [3]")
				tr.fifo("run/initctl")
				tr.dir("run/openrc")
			},
			kind:     KindOpenRC,
			describe: "OpenRC on sysvinit (re-exec: telinit u through /run/initctl)",
		},
		{
			name: "OpenRC on sysvinit, Gentoo 2012 (/lib64/rc)",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "/sbin/init", "init [3]")
				tr.fifo("dev/initctl")
				tr.dir("lib64/rc/init.d")
			},
			kind:     KindOpenRC,
			describe: "OpenRC on sysvinit (re-exec: telinit u through /dev/initctl)",
		},
		{
			name: "openrc-init",
			setup: func(tr *tree) {
				tr.process(1, 0, "openrc-init", "/sbin/openrc-init", "/sbin/init")
				tr.dir("run/openrc")
			},
			kind:     KindOpenRCInit,
			describe: "OpenRC on openrc-init (re-exec: openrc-shutdown --reexec, written to /run/openrc/init.ctl)",
		},
		{
			name: "busybox by exe link text",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "/bin/busybox", "init")
			},
			kind:     KindBusybox,
			describe: "busybox init (no re-exec: busybox init's only restart (SIGQUIT) kills every process first)",
		},
		{
			name: "busybox replaced by an upgrade",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "/bin/busybox (deleted)", "init")
				tr.fifo("dev/initctl") // must not make it sysvinit
			},
			kind:     KindBusybox,
			describe: "busybox init (no re-exec: busybox init's only restart (SIGQUIT) kills every process first)",
		},
		{
			name: "busybox by /sbin/init link, exe unreadable",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "", "/sbin/init")
				tr.symlink(tr.root, "sbin/init", "/bin/busybox")
			},
			kind:     KindBusybox,
			describe: "busybox init (no re-exec: busybox init's only restart (SIGQUIT) kills every process first)",
		},
		{
			name: "/sbin/init links to busybox but initctl exists",
			setup: func(tr *tree) {
				tr.process(1, 0, "init", "", "/sbin/init")
				tr.symlink(tr.root, "sbin/init", "/bin/busybox")
				tr.fifo("run/initctl")
			},
			kind:     KindSysvinit,
			describe: "sysvinit (re-exec: telinit u through /run/initctl)",
		},
		{
			name: "container PID 1",
			setup: func(tr *tree) {
				tr.process(1, 0, "process_api", "/process_api", "/process_api", "--firecracker-init")
				tr.dir("run/systemd/system") // a leftover that must not fool Detect
			},
			kind:     KindUnknown,
			describe: `unknown init "process_api" (/process_api) (no re-exec: PID 1 is not systemd, sysvinit, openrc-init or busybox init)`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t)
			tc.setup(tr)
			run := &fakeRunner{answers: map[string]answer{"systemctl --version": {out: systemctlVersion}}}
			sys, err := tr.config(run.run).Detect(context.Background())
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if got := sys.Kind(); got != tc.kind {
				t.Errorf("Kind() = %q, want %q", got, tc.kind)
			}
			if got := sys.Describe(); got != tc.describe {
				t.Errorf("Describe() =\n  %s\nwant\n  %s", got, tc.describe)
			}
			wantCalls := 0
			if tc.kind == KindSystemd {
				wantCalls = 1 // systemctl --version only
			}
			if got := run.got(); len(got) != wantCalls {
				t.Errorf("Detect ran %q, want %d command(s)", got, wantCalls)
			}
		})
	}
}

func TestDetectNoProc(t *testing.T) {
	tr := newTree(t)
	if sys, err := tr.config(nil).Detect(context.Background()); err == nil {
		t.Fatalf("Detect over an empty /proc = %v, want an error", sys.Describe())
	}
}

func TestSystemdVersion(t *testing.T) {
	for in, want := range map[string]string{
		"systemd 252 (252.39-1~deb12u1)\n+PAM\n": "252",
		"systemd 219\n":                          "219",
		"":                                       "",
		"garbage\n":                              "",
	} {
		if got := systemdVersion([]byte(in)); got != want {
			t.Errorf("systemdVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
