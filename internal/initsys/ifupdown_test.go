package initsys

import (
	"context"
	"errors"
	"strconv"
	"syscall"
	"testing"
)

// ifupdownTree is a Debian server whose network ifupdown brings up:
// eth0 by DHCP in /etc/network/interfaces, eth1 in a file of
// interfaces.d, eth2 statically (a dhclient on it is someone else's).
func ifupdownTree(t *testing.T) *tree {
	tr := sysvTree(t)
	tr.file("etc/init.d/networking", "#!/bin/sh\nifup -a\n")
	tr.file("etc/network/interfaces", "auto lo\niface lo inet loopback\n\nsource-directory /etc/network/interfaces.d\n\nauto eth0\niface eth0 inet dhcp\n\niface eth2 inet static\n")
	tr.file("etc/network/interfaces.d/eth1", "allow-hotplug eth1\niface eth1 inet6 dhcp\n")
	tr.file("etc/network/interfaces.d/README.txt", "iface eth2 inet dhcp\n") // not a name run-parts takes
	ifup := func(pid int, iface string) {
		tr.file("run/dhclient."+iface+".pid", strconv.Itoa(pid)+"\n")
		tr.process(pid, 1, "dhclient", "/usr/sbin/dhclient", "dhclient", "-4", "-v", "-i", "-pf", "/run/dhclient."+iface+".pid",
			"-lf", "/var/lib/dhcp/dhclient."+iface+".leases", "-I", "-df", "/var/lib/dhcp/dhclient6."+iface+".leases", iface)
	}
	ifup(1159, "eth0")
	ifup(1170, "eth1")
	ifup(1180, "eth2")
	// a dhclient someone started by hand, no -pf: not ifup's
	tr.process(1190, 1, "dhclient", "/usr/sbin/dhclient", "dhclient", "eth0")
	return tr
}

func TestIfupdownClientService(t *testing.T) {
	tr := ifupdownTree(t)
	sys := &SysV{cfg: tr.config(nil)}
	argv := "dhclient -4 -v -i -pf /run/dhclient.eth0.pid -lf /var/lib/dhcp/dhclient.eth0.leases -I -df /var/lib/dhcp/dhclient6.eth0.leases eth0"
	want := Service{Name: "dhclient.eth0", Kind: CommandLine, Restartable: true, PID: 1159, StopSignal: syscall.SIGKILL,
		Why: "/run/dhclient.eth0.pid holds 1159: ifup's DHCP client for eth0 (iface eth0 inet dhcp in /etc/network/interfaces); " +
			"a SIGTERM may run dhclient-script's STOP, which removes the address",
		Manual: "kill -KILL 1159; " + argv}
	if got, ok := sys.ServiceOf(1159); !ok || got != want {
		t.Errorf("ServiceOf(1159) =\n  %+v, %v\nwant\n  %+v", got, ok, want)
	}
	got, ok := sys.ServiceOf(1170)
	if wantWhy := "/run/dhclient.eth1.pid holds 1170: ifup's DHCP client for eth1 (iface eth1 inet6 dhcp in /etc/network/interfaces.d/eth1); " +
		"a SIGTERM may run dhclient-script's STOP, which removes the address"; !ok || got.Name != "dhclient.eth1" || got.Kind != CommandLine || got.Why != wantWhy {
		t.Errorf("ServiceOf(1170) = %+v, %v; want dhclient.eth1 with why %q", got, ok, wantWhy)
	}
	// eth2 is static (its dhcp line is in a file source-directory skips)
	// and 1190 has no pidfile: both are what the scripts make of them.
	for _, pid := range []int{1180, 1190} {
		if got, _ := sys.ServiceOf(pid); got.Kind == CommandLine {
			t.Errorf("ServiceOf(%d) = %+v; want no command-line service", pid, got)
		}
	}
}

// A command-line service is never handed to the init system: there is
// no /etc/init.d/dhclient.eth0, and networking's stop is ifdown.
func TestIfupdownClientNotThroughInit(t *testing.T) {
	tr := ifupdownTree(t)
	run := &fakeRunner{}
	sys := &SysV{cfg: tr.config(run.run)}
	svc, _ := sys.ServiceOf(1159)
	for _, f := range []func(context.Context, Service) error{sys.Stop, sys.Start, sys.Restart} {
		if err := f(context.Background(), svc); !errors.Is(err, ErrNotRestartable) {
			t.Errorf("got %v, want ErrNotRestartable", err)
		}
	}
	if len(run.calls) != 0 {
		t.Errorf("ran %q, want nothing", run.calls)
	}
}

func TestIfupdownSourceGlob(t *testing.T) {
	tr := newTree(t)
	tr.file("etc/network/interfaces", "source interfaces.d/*.cfg\n")
	tr.file("etc/network/interfaces.d/wan.cfg", "iface wan0 inet dhcp\n")
	c := tr.config(nil)
	got, ok := c.dhcpIface("wan0", "/etc/network/interfaces", 0)
	if want := "iface wan0 inet dhcp in /etc/network/interfaces.d/wan.cfg"; !ok || got != want {
		t.Errorf("dhcpIface(wan0) = %q, %v; want %q", got, ok, want)
	}
	if got, ok := c.dhcpIface("lan0", "/etc/network/interfaces", 0); ok {
		t.Errorf("dhcpIface(lan0) = %q, want none", got)
	}
}
