package initsys

import (
	"context"
	"reflect"
	"strings"
	"testing"
)

// Several units stop in one systemctl transaction, their sockets asked
// first; the start after it asks nothing again (the writers' outage).
func TestSystemdStopAllStartAllOneTransaction(t *testing.T) {
	ctx := context.Background()
	run := &fakeRunner{answers: map[string]answer{
		"systemctl show -p TriggeredBy --value ssh.service":  {out: "ssh.socket\n"},
		"systemctl show -p TriggeredBy --value cron.service": {out: "\n"},
	}}
	s := &Systemd{cfg: Config{Run: run.run}}
	stopped, err := StopAll(ctx, s, []Service{cronUnit, sshUnit})
	if err != nil || !reflect.DeepEqual(stopped, []Service{cronUnit, sshUnit}) {
		t.Fatalf("StopAll = %v, %v", stopped, err)
	}
	if err := StartAll(ctx, s, []Service{sshUnit, cronUnit}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"systemctl show -p TriggeredBy --value cron.service",
		"systemctl show -p TriggeredBy --value ssh.service",
		"systemctl stop cron.service ssh.socket ssh.service",
		"systemctl start ssh.socket ssh.service cron.service",
	}
	if got := run.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("commands =\n%q\nwant\n%q", got, want)
	}
}

// A failed transaction: stopped is what systemd says is no longer active.
func TestSystemdStopAllFailedTransaction(t *testing.T) {
	run := &fakeRunner{answers: map[string]answer{
		"systemctl stop cron.service ssh.socket ssh.service": {out: "Job for ssh.service canceled.\n", code: 1},
		"systemctl is-active cron.service":                   {out: "inactive\n", code: 3},
		"systemctl is-active ssh.service":                    {out: "active\n"},
		"systemctl show -p TriggeredBy --value ssh.service":  {out: "ssh.socket\n"},
	}}
	s := &Systemd{cfg: Config{Run: run.run}}
	stopped, err := StopAll(context.Background(), s, []Service{cronUnit, sshUnit})
	if err == nil || !strings.Contains(err.Error(), "systemctl stop") {
		t.Errorf("err = %v, want the transaction's failure", err)
	}
	if want := []Service{cronUnit}; !reflect.DeepEqual(stopped, want) {
		t.Errorf("stopped = %v, want %v", stopped, want)
	}
}

// A service of another kind among them (a socket here, which has no
// sockets of its own to ask for): one by one, in order.
func TestStopAllOneByOneForOtherKinds(t *testing.T) {
	run := &fakeRunner{}
	s := &Systemd{cfg: Config{Run: run.run}}
	sock := Service{Name: "ssh.socket", Kind: SocketUnit, Restartable: true}
	if _, err := StopAll(context.Background(), s, []Service{sock, cronUnit}); err != nil {
		t.Fatal(err)
	}
	want := []string{"systemctl stop ssh.socket", "systemctl show -p TriggeredBy --value cron.service", "systemctl stop cron.service"}
	if got := run.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("commands = %q, want %q", got, want)
	}
}
