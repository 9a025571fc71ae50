package initsys

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

var (
	sshUnit  = Service{Name: "ssh.service", Kind: ServiceUnit, Restartable: true}
	cronUnit = Service{Name: "cron.service", Kind: ServiceUnit, Restartable: true}
	session  = Service{Name: "session-3.scope", Kind: ScopeUnit, Why: "login session scope"}
)

func TestSystemdCommands(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		do   func(s *Systemd) error
		want []string
	}{
		{"reexec", func(s *Systemd) error { return s.Reexec(ctx) },
			[]string{"systemctl daemon-reexec"}},
		{"stop socket-activated", func(s *Systemd) error { return s.Stop(ctx, sshUnit) },
			[]string{"systemctl show -p TriggeredBy --value ssh.service", "systemctl stop ssh.socket ssh.service"}},
		{"start socket-activated", func(s *Systemd) error { return s.Start(ctx, sshUnit) },
			[]string{"systemctl show -p TriggeredBy --value ssh.service", "systemctl start ssh.socket ssh.service"}},
		{"restart", func(s *Systemd) error { return s.Restart(ctx, sshUnit) },
			[]string{"systemctl restart ssh.service"}},
		{"stop plain", func(s *Systemd) error { return s.Stop(ctx, cronUnit) },
			[]string{"systemctl show -p TriggeredBy --value cron.service", "systemctl stop cron.service"}},
		{"stop a socket", func(s *Systemd) error {
			return s.Stop(ctx, Service{Name: "ssh.socket", Kind: SocketUnit, Restartable: true})
		}, []string{"systemctl stop ssh.socket"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := &fakeRunner{answers: map[string]answer{
				"systemctl show -p TriggeredBy --value ssh.service":  {out: "ssh.socket\n"},
				"systemctl show -p TriggeredBy --value cron.service": {out: "\n"},
			}}
			s := &Systemd{cfg: Config{Run: run.run}}
			if err := tc.do(s); err != nil {
				t.Fatal(err)
			}
			if got := run.got(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("commands = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSystemdRefusesScopes(t *testing.T) {
	run := &fakeRunner{}
	s := &Systemd{cfg: Config{Run: run.run}}
	for name, do := range map[string]func(context.Context, Service) error{"stop": s.Stop, "start": s.Start, "restart": s.Restart} {
		err := do(context.Background(), session)
		if !errors.Is(err, ErrNotRestartable) || !strings.Contains(err.Error(), "session-3.scope: login session scope") {
			t.Errorf("%s(session scope) = %v, want ErrNotRestartable naming it", name, err)
		}
	}
	if got := run.got(); len(got) != 0 {
		t.Errorf("ran %q for a scope, want nothing", got)
	}
}

func TestSystemdRunning(t *testing.T) {
	for _, tc := range []struct {
		out     string
		code    int
		want    bool
		wantErr bool
	}{
		{"active\n", 0, true, false},
		{"deactivating\n", 3, true, false},
		{"inactive\n", 3, false, false},
		{"failed\n", 3, false, false},
		{"Failed to connect to bus\n", 1, false, true},
	} {
		run := &fakeRunner{answers: map[string]answer{"systemctl is-active ssh.service": {out: tc.out, code: tc.code}}}
		s := &Systemd{cfg: Config{Run: run.run}}
		got, err := s.Running(context.Background(), sshUnit)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("Running with is-active %q exit %d = %v, %v; want %v, error %v", tc.out, tc.code, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestSysVAndOpenRCCommands(t *testing.T) {
	ctx := context.Background()
	ssh := Service{Name: "ssh", Kind: InitDScript, Restartable: true}
	sshd := Service{Name: "sshd", Kind: OpenRCService, Restartable: true}
	run := &fakeRunner{}
	sv := &SysV{cfg: Config{Run: run.run}}
	rc := &OpenRC{SysV: SysV{cfg: Config{Run: run.run}}}
	for _, err := range []error{
		sv.Stop(ctx, ssh), sv.Start(ctx, ssh), sv.Restart(ctx, ssh),
		rc.Stop(ctx, sshd), rc.Start(ctx, sshd), rc.Restart(ctx, sshd),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"/etc/init.d/ssh stop", "/etc/init.d/ssh start", "/etc/init.d/ssh restart",
		"rc-service sshd stop", "rc-service sshd start", "rc-service sshd restart",
	}
	if got := run.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("commands =\n  %q\nwant\n  %q", got, want)
	}
	if err := sv.Stop(ctx, Service{Name: "../../bin/rm", Kind: InitDScript, Restartable: true}); err == nil {
		t.Errorf("Stop of a script name with a slash succeeded")
	}
	if err := sv.Stop(ctx, Service{Name: "mystery", Kind: InitDScript, Why: "no script"}); !errors.Is(err, ErrNotRestartable) {
		t.Errorf("Stop of a service without a script = %v, want ErrNotRestartable", err)
	}
	if got := run.got(); len(got) != len(want) {
		t.Errorf("refused stops ran %q", got[len(want):])
	}
}

func TestSysVAndOpenRCRunning(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		openrc  bool
		code    int
		want    bool
		wantErr bool
	}{
		{false, 0, true, false},
		{false, 3, false, false},
		{false, 1, false, false},
		{false, 4, false, true},
		{true, 0, true, false},
		{true, 3, false, false},
		{true, 32, false, false}, // crashed
		{true, 8, true, false},   // starting
		{true, 1, false, true},
	} {
		run := &fakeRunner{answers: map[string]answer{
			"/etc/init.d/ssh status": {code: tc.code},
			"rc-service ssh status":  {code: tc.code},
		}}
		var sys System = &SysV{cfg: Config{Run: run.run}}
		if tc.openrc {
			sys = &OpenRC{SysV: SysV{cfg: Config{Run: run.run}}}
		}
		got, err := sys.Running(ctx, Service{Name: "ssh", Restartable: true})
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s Running with status exit %d = %v, %v; want %v, error %v", sys.Kind(), tc.code, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestBusyboxRefuses(t *testing.T) {
	ctx := context.Background()
	run := &fakeRunner{}
	b := &Busybox{cfg: Config{Run: run.run}}
	svc := Service{Name: "/sbin/getty -L ttyS0 115200 vt100", Kind: InittabEntry}
	for name, err := range map[string]error{
		"stop": b.Stop(ctx, svc), "start": b.Start(ctx, svc), "restart": b.Restart(ctx, svc),
	} {
		if !errors.Is(err, ErrNoServiceManager) || !strings.Contains(err.Error(), "busybox init has no service manager") {
			t.Errorf("%s = %v, want ErrNoServiceManager with an explanation", name, err)
		}
	}
	if _, err := b.Running(ctx, svc); !errors.Is(err, ErrNoServiceManager) {
		t.Errorf("Running = %v, want ErrNoServiceManager", err)
	}
	err := b.Reexec(ctx)
	if !errors.Is(err, ErrNoReexec) || !strings.HasPrefix(err.Error(), BusyboxNoReexec) {
		t.Errorf("Reexec = %v, want ErrNoReexec with %q", err, BusyboxNoReexec)
	}
	if got := run.got(); len(got) != 0 {
		t.Errorf("busybox ran %q, want nothing", got)
	}
}

func TestJournaldAndEngineWrapper(t *testing.T) {
	run := &fakeRunner{}
	if err := JournaldRelinquish(context.Background(), run.run); err != nil {
		t.Fatal(err)
	}
	if err := JournaldFlush(context.Background(), run.run); err != nil {
		t.Fatal(err)
	}
	want := []string{"journalctl --relinquish-var", "journalctl --flush"}
	if got := run.got(); !reflect.DeepEqual(got, want) {
		t.Errorf("commands = %q, want %q", got, want)
	}
	w := EngineWrapper()
	if w[0] != "systemd-run" || w[len(w)-1] != "--" {
		t.Errorf("EngineWrapper() = %q: want systemd-run ... --", w)
	}
	for _, need := range []string{"--scope", "--unit=rootswap-engine.scope", "--collect"} {
		found := false
		for _, a := range w {
			found = found || a == need
		}
		if !found {
			t.Errorf("EngineWrapper() = %q lacks %s", w, need)
		}
	}
}
