package swap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/journal"
)

const (
	webID   = "4f1c9a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"
	redisID = "77aa00bb11cc22dd33ee44ff5566778899aabbccddeeff001122334455667788"

	dockerPS = "docker -H unix:///var/run/docker.sock ps --no-trunc --format {{.ID}} {{.Names}}"
	dockerH  = "docker -H unix:///var/run/docker.sock "
)

// dockerHost is a systemd server running dockerd (docker.service,
// started on demand by docker.socket) over containerd, with two
// containers, web (the newer) and redis; daemon.json is daemonJSON.
// docker ps answers; cli, when set, answers docker commands instead.
func dockerHost(t *testing.T, daemonJSON string, cli func(argv string) (string, error)) *svcFixture {
	f := newSvcFixture(t, "/usr/lib/systemd/systemd", "/sbin/init")
	proc := func(pid, ppid int, comm, unit string, argv ...string) {
		f.process(pid, ppid, comm, argv[0], argv...)
		f.write(f.proc, fmt.Sprintf("%d/cgroup", pid), "0::/system.slice/"+unit+"\n", 0o644)
	}
	proc(400, 1, "dockerd", "docker.service", "/usr/sbin/dockerd", "-H", "fd://", "--containerd=/run/containerd/containerd.sock")
	proc(410, 1, "containerd", "containerd.service", "/usr/bin/containerd")
	proc(420, 1, "containerd-shim", "containerd.service", "/usr/bin/containerd-shim-runc-v2", "-namespace", "moby", "-id", webID)
	proc(421, 420, "nginx", "docker-"+webID+".scope", "/usr/sbin/nginx", "-g", "daemon off;")
	if daemonJSON != "" {
		f.file("etc/docker/daemon.json", daemonJSON)
	}
	f.on = func(argv string) (string, error) {
		if cli != nil && strings.HasPrefix(argv, "docker ") {
			return cli(argv)
		}
		switch argv {
		case "systemctl --version":
			return "systemd 252 (252.33-1~deb12u1)\n", nil
		case "systemctl show -p TriggeredBy --value docker.service":
			return "docker.socket\n", nil
		case dockerPS:
			return webID + " web\n" + redisID + " redis\n", nil
		}
		return "", nil
	}
	f.init()
	f.calls = nil // Detect's systemctl --version
	return f
}

// plan runs the docker part of the preflight over a stop list that
// holds docker's and containerd's services (sorted, as Preflight has it)
// and returns the commands it ran.
func (f *svcFixture) plan() []string {
	f.t.Helper()
	r := f.rt.Report
	r.Stop = []string{"containerd.service", "cron.service", "docker.service"}
	cfg := initsys.Config{ProcRoot: f.proc, Root: f.root}
	r.checkDocker(context.Background(), cfg, initsys.NewLookup(f.rt.Init), initsys.Runner(f.rt.Command))
	calls, _ := f.got()
	f.calls = nil
	return calls
}

func (f *svcFixture) describe(st Step) string { return st.Describe(f.s) }

func checkCalls(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: commands =\n  %s\nwant\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

var (
	stopDockerFirst = []string{
		// What is active before, to start again what systemd stops along.
		"systemctl list-units --type=service --state=active --no-legend --plain --no-pager",
		"systemctl show -p TriggeredBy --value docker.service",
		"systemctl show -p TriggeredBy --value containerd.service",
		"systemctl show -p TriggeredBy --value cron.service",
		// One transaction: the stops overlap; systemd orders them.
		"systemctl stop docker.socket docker.service containerd.service cron.service",
	}
	// The sockets were asked before the stop: none is asked in the outage.
	startDockerLast = []string{
		"systemctl start cron.service containerd.service docker.socket docker.service",
	}
)

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Live-restore on: plan lists the containers and says they are stopped
// before dockerd and started after it; run stops them (recorded in the
// State) before docker.socket and docker.service, and after the services
// run from the new root starts each again, oldest first.
func TestDockerLiveRestoreRun(t *testing.T) {
	f := dockerHost(t, `{"live-restore": true}`, nil)
	checkCalls(t, "plan", f.plan(), []string{dockerPS})
	r := f.rt.Report
	if want := []string{"docker.service", "containerd.service", "cron.service"}; !reflect.DeepEqual(r.Stop, want) {
		t.Errorf("stop order = %q, want %q (dockerd before containerd)", r.Stop, want)
	}
	if len(r.Blockers) != 0 {
		t.Errorf("blockers = %+v", r.Blockers)
	}
	stop, start := &stopServices{f.rt}, &startServices{f.rt}
	wantStop := `docker stop 4f1c9a2b3c4d (web), 77aa00bb11cc (redis) first: docker.service has live-restore on ("live-restore": true in /etc/docker/daemon.json), which leaves its containers running on / when dockerd stops (the list is taken again when this step runs); ` +
		"stop docker.service, containerd.service, cron.service (they hold / open for writing or hold deleted files); journalctl --relinquish-var"
	if got := f.describe(stop); got != wantStop {
		t.Errorf("stop-services plan =\n  %s\nwant\n  %s", got, wantStop)
	}
	wantStart := "start cron.service, containerd.service, docker.service again, from the new root; " +
		"then docker start 77aa00bb11cc (redis), 4f1c9a2b3c4d (web), one at a time, oldest first (stopped before their live-restore daemon)"
	if got := f.describe(start); got != wantStart {
		t.Errorf("start-services plan =\n  %s\nwant\n  %s", got, wantStart)
	}

	ctx := context.Background()
	if err := stop.Do(ctx, f.s); err != nil {
		t.Fatal(err)
	}
	calls, _ := f.got()
	checkCalls(t, "stop-services", calls, join(
		[]string{"journalctl --relinquish-var", dockerPS, dockerH + "stop " + webID + " " + redisID},
		stopDockerFirst))
	wantState := []DockerContainer{
		{Container: initsys.Container{ID: webID, Name: "web"}, Service: "docker.service", Host: "unix:///var/run/docker.sock"},
		{Container: initsys.Container{ID: redisID, Name: "redis"}, Service: "docker.service", Host: "unix:///var/run/docker.sock"},
	}
	if !reflect.DeepEqual(f.s.Containers, wantState) {
		t.Errorf("State.Containers = %+v\nwant %+v", f.s.Containers, wantState)
	}
	// The journal keeps them: a new session's rollback reads them back.
	back, err := Unmarshal(f.s.Marshal())
	if err != nil || !reflect.DeepEqual(back.Containers, wantState) {
		t.Errorf("State.Containers from the journal = %+v, %v", back.Containers, err)
	}

	f.calls = nil
	if err := start.Do(ctx, f.s); err != nil {
		t.Fatal(err)
	}
	calls, _ = f.got()
	checkCalls(t, "start-services", calls, join(
		startDockerLast,
		[]string{dockerPS, dockerH + "start " + redisID, dockerH + "start " + webID}))
	for _, c := range f.s.Containers {
		if !c.Started {
			t.Errorf("%s not marked started", c.Container)
		}
	}

	// Rolled back past start-services: the containers stop before their
	// daemon, or they would outlive it on the new root.
	f.calls = nil
	if err := start.Undo(ctx, f.s); err != nil {
		t.Fatal(err)
	}
	calls, _ = f.got()
	checkCalls(t, "undo start-services", calls, join(
		[]string{dockerH + "stop " + webID + " " + redisID},
		[]string{
			"systemctl stop docker.socket docker.service",
			"systemctl stop containerd.service",
			"systemctl stop cron.service",
		}))
}

// Live-restore off: plan says in one clause that docker's stop stops its
// containers; nothing docker is run, in plan or run.
func TestDockerNoLiveRestore(t *testing.T) {
	f := dockerHost(t, `{"live-restore": false}`, nil)
	checkCalls(t, "plan", f.plan(), nil)
	r := f.rt.Report
	if want := []string{"docker.service", "containerd.service", "cron.service"}; !reflect.DeepEqual(r.Stop, want) {
		t.Errorf("stop order = %q, want %q", r.Stop, want)
	}
	stop, start := &stopServices{f.rt}, &startServices{f.rt}
	wantStop := "docker.service has live-restore off: stopping it stops its containers, and those with a restart policy come back when it starts from the new root; " +
		"stop docker.service, containerd.service, cron.service (they hold / open for writing or hold deleted files); journalctl --relinquish-var"
	if got := f.describe(stop); got != wantStop {
		t.Errorf("stop-services plan =\n  %s\nwant\n  %s", got, wantStop)
	}
	if got, want := f.describe(start), "start cron.service, containerd.service, docker.service again, from the new root"; got != want {
		t.Errorf("start-services plan = %q, want %q", got, want)
	}
	ctx := context.Background()
	if err := stop.Do(ctx, f.s); err != nil {
		t.Fatal(err)
	}
	if err := start.Do(ctx, f.s); err != nil {
		t.Fatal(err)
	}
	calls, _ := f.got()
	checkCalls(t, "run", calls, join(
		[]string{"journalctl --relinquish-var"}, stopDockerFirst,
		startDockerLast))
	if len(f.s.Containers) != 0 {
		t.Errorf("State.Containers = %+v, want none", f.s.Containers)
	}
}

// Live-restore on and no docker CLI: plan blocks, before anything stops.
func TestDockerLiveRestoreNoCLI(t *testing.T) {
	// RealCommand's error: exec's, without the command line
	notFound := errors.New(`exec: "docker": executable file not found in $PATH`)
	f := dockerHost(t, "", func(string) (string, error) { return "", notFound })
	// live-restore from dockerd's command line this time
	f.process(400, 1, "dockerd", "/usr/sbin/dockerd", "/usr/sbin/dockerd", "-H", "fd://", "--live-restore")
	checkCalls(t, "plan", f.plan(), []string{dockerPS})
	r := f.rt.Report
	want := []Blocker{{
		Problem: "docker.service runs dockerd (pid 400) with live-restore on (dockerd runs with --live-restore): its containers keep running on / when it stops, so run must stop them first, " +
			"but the docker CLI cannot list them: " + dockerPS + ": exec: \"docker\": executable file not found in $PATH",
		Fix: "make the docker CLI work as root against unix:///var/run/docker.sock (install docker.io or docker-ce-cli; `docker -H unix:///var/run/docker.sock ps` must list the containers), " +
			`or turn live-restore off for the swap: "live-restore": false in /etc/docker/daemon.json (and no --live-restore), then systemctl reload docker (kill -HUP 400)`,
	}}
	if !reflect.DeepEqual(r.Blockers, want) {
		t.Errorf("blockers =\n  %+v\nwant\n  %+v", r.Blockers, want)
	}
	if got := f.describe(&stopServices{f.rt}); !strings.HasPrefix(got, "docker.service has live-restore on (dockerd runs with --live-restore) but its containers cannot be listed (see the blocker); stop docker.service") {
		t.Errorf("stop-services plan = %q", got)
	}
}

// A failure after stop-services (remount-ro busy) rolls back: services
// start again on the old root in the reverse order of their stop, then
// the recorded containers; a new session's rollback, from the journal
// alone, does the same.
func TestDockerRollbackAfterStop(t *testing.T) {
	wantUndo := []string{
		"systemctl start cron.service containerd.service docker.socket docker.service",
		dockerPS,
		dockerH + "start " + redisID,
		dockerH + "start " + webID,
		"journalctl --flush",
	}
	t.Run("engine", func(t *testing.T) {
		f := dockerHost(t, `{"live-restore": true}`, nil)
		f.plan()
		var log []string
		busy := &fakeStep{name: StepRemountRO, fatal: true, fail: errors.New("mount -o remount,ro /: device or resource busy"), log: &log}
		e, _ := newEngine(t)
		res := e.Run(context.Background(), []Step{&stopServices{f.rt}, busy}, f.s)
		if res.Phase != journal.RolledBack || len(res.UndoErrors) != 0 {
			t.Fatalf("result = %+v", res)
		}
		calls, _ := f.got()
		checkCalls(t, "run and rollback", calls, join(
			[]string{"journalctl --relinquish-var", dockerPS, dockerH + "stop " + webID + " " + redisID},
			stopDockerFirst, wantUndo))
		if len(f.s.Containers)+len(f.s.Stopped) != 0 {
			t.Errorf("after rollback: Containers %+v, Stopped %q", f.s.Containers, f.s.Stopped)
		}
	})
	t.Run("new session", func(t *testing.T) {
		f := dockerHost(t, `{"live-restore": true}`, nil)
		f.plan()
		if err := (&stopServices{f.rt}).Do(context.Background(), f.s); err != nil {
			t.Fatal(err)
		}
		// The engine died during remount-ro: its journal is all that is left.
		path := filepath.Join(t.TempDir(), "journal")
		j, err := journal.Create(path, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		for _, rec := range []journal.Record{
			{Kind: journal.KindStart, PID: 4242},
			{Kind: journal.KindBegin, Step: StepStopServices},
			{Kind: journal.KindEnd, Step: StepStopServices, Data: map[string]string{"state": f.s.Marshal()}},
			{Kind: journal.KindBegin, Step: StepRemountRO},
		} {
			if err := j.Add(rec); err != nil {
				t.Fatal(err)
			}
		}
		f.calls = nil
		f.rt.Report = nil // a new session has no preflight
		res, err := RollbackFromJournal(context.Background(), f.rt, path, true, j)
		if err != nil || res.Phase != journal.RolledBack {
			t.Fatalf("RollbackFromJournal = %+v, %v", res, err)
		}
		calls, _ := f.got()
		checkCalls(t, "rollback from the journal", calls, wantUndo)
	})
}

// A container that does not start from the new root fails start-services
// (fatal: rollback follows); the one that did start is stopped again, so
// none is left running on the root the rollback leaves.
func TestDockerStartFails(t *testing.T) {
	f := dockerHost(t, `{"live-restore": true}`, func(argv string) (string, error) {
		switch argv {
		case dockerPS:
			return webID + " web\n" + redisID + " redis\n", nil
		case dockerH + "start " + webID:
			return "Error response from daemon: failed to mount overlay", &initsys.CommandError{Argv: strings.Fields(argv), Output: []byte("Error response from daemon: failed to mount overlay"), Err: errors.New("exit status 1")}
		}
		return "", nil
	})
	f.plan()
	ctx := context.Background()
	if err := (&stopServices{f.rt}).Do(ctx, f.s); err != nil {
		t.Fatal(err)
	}
	f.calls = nil
	err := (&startServices{f.rt}).Do(ctx, f.s)
	if err == nil || !strings.Contains(err.Error(), "docker start 4f1c9a2b3c4d (web)") {
		t.Fatalf("start-services = %v, want docker start 4f1c9a2b3c4d (web) failed", err)
	}
	calls, _ := f.got()
	checkCalls(t, "start-services", calls, join(
		startDockerLast,
		[]string{dockerPS, dockerH + "start " + redisID, dockerH + "start " + webID, dockerH + "stop " + redisID}))
	for _, c := range f.s.Containers {
		if c.Started {
			t.Errorf("%s still marked started", c.Container)
		}
	}
}
