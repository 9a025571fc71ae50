package initsys

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// BusyboxNoReexec is why busybox init is not re-executed, in the words
// telinit-u and plan print.
const BusyboxNoReexec = "busybox init has no re-exec: its only restart (SIGQUIT) kills every process first. " +
	"PID 1 keeps the old root busy until the next reboot; rootswap detaches the old root lazily instead " +
	"(it is read-only by then, nothing is lost)"

// Busybox is busybox init: it runs /etc/inittab and nothing else. There is
// no service manager; daemons on respawn lines are restarted by init when
// they die, others by whatever started them.
type Busybox struct {
	cfg  Config
	pid1 PID1
	Why  string // what Detect saw
}

func (b *Busybox) Kind() Kind { return KindBusybox }

func (b *Busybox) Describe() string { return "busybox init (" + b.ReexecMethod() + ")" }

func (b *Busybox) ReexecMethod() string {
	return "no re-exec: busybox init's only restart (SIGQUIT) kills every process first"
}

func (b *Busybox) Reexec(ctx context.Context) error {
	return fmt.Errorf("%s: %w", BusyboxNoReexec, ErrNoReexec)
}

// ServiceOf finds the /etc/inittab line that started pid: a child of
// PID 1 whose command line is the line's process field. It is reported,
// not restartable: init restarts respawn lines itself once the process
// is killed.
func (b *Busybox) ServiceOf(pid int) (Service, bool) {
	if ppid, ok := b.cfg.ppid(pid); !ok || ppid != 1 {
		return Service{}, false
	}
	cmdline, err := os.ReadFile(b.cfg.proc(strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return Service{}, false
	}
	argv := strings.Join(strings.Fields(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))), " ")
	f, err := os.Open(b.cfg.path("/etc/inittab"))
	if err != nil {
		return Service{}, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		// id:runlevels:action:process; busybox ignores runlevels.
		parts := strings.SplitN(line, ":", 4)
		if len(parts) != 4 {
			continue
		}
		action, process := parts[2], parts[3]
		// A leading '-' asks for a login shell; init strips it from argv.
		cmd := strings.Join(strings.Fields(strings.TrimPrefix(strings.TrimSpace(process), "-")), " ")
		if cmd == "" || cmd != argv {
			continue
		}
		svc := Service{Name: cmd, Kind: InittabEntry}
		switch action {
		case "respawn", "askfirst":
			svc.Why = "/etc/inittab " + action + " line: kill it and busybox init starts it again, from the root init now sees"
		default:
			svc.Why = "/etc/inittab " + action + " line: busybox init does not start it again"
		}
		return svc, true
	}
	return Service{}, false
}

func (b *Busybox) noManager(svc Service, what string) error {
	return fmt.Errorf("cannot %s %s: busybox init has no service manager; processes on /etc/inittab respawn lines are restarted by init when killed, others must be killed and started again by hand: %w",
		what, svc.Name, ErrNoServiceManager)
}

func (b *Busybox) Stop(ctx context.Context, svc Service) error  { return b.noManager(svc, "stop") }
func (b *Busybox) Start(ctx context.Context, svc Service) error { return b.noManager(svc, "start") }
func (b *Busybox) Restart(ctx context.Context, svc Service) error {
	return b.noManager(svc, "restart")
}
func (b *Busybox) Running(ctx context.Context, svc Service) (bool, error) {
	return false, b.noManager(svc, "query")
}
