package initsys

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// benchTree is a server of the size where speed matters: 1,000
// processes (100 daemons started by 50 init scripts, 9 workers each),
// scripts as long as Debian's LSB ones, a pidfile per script.
func benchTree(tb testing.TB) *tree {
	tr := newTree(tb)
	tr.process(1, 0, "init", "/sbin/init", "init [2]")
	tr.fifo("run/initctl")
	tr.symlink(tr.root, "var/run", "/run")
	pid := 100
	for s := 0; s < 50; s++ {
		name := fmt.Sprintf("daemon%02d", s)
		tr.file("etc/init.d/"+name, lsbScript(name))
		for d := 0; d < 2; d++ {
			main := pid
			if d == 0 {
				tr.file("run/"+name+".pid", fmt.Sprintf("%d\n", main))
			}
			tr.process(main, 1, name, "/usr/sbin/"+name, "/usr/sbin/"+name, "-f")
			pid++
			for w := 0; w < 9; w++ {
				tr.process(pid, main, name, "/usr/sbin/"+name, name+": worker")
				pid++
			}
		}
	}
	return tr
}

// lsbScript is a Debian-sized init script for daemon name.
func lsbScript(name string) string {
	var s strings.Builder
	fmt.Fprintf(&s, "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: %s\n### END INIT INFO\n", name)
	fmt.Fprintf(&s, "PATH=/sbin:/usr/sbin:/bin:/usr/bin\nNAME=%s\nDAEMON=/usr/sbin/$NAME\nPIDFILE=/run/$NAME.pid\nSCRIPTNAME=/etc/init.d/$NAME\n", name)
	s.WriteString("[ -x \"$DAEMON\" ] || exit 0\n[ -r /etc/default/$NAME ] && . /etc/default/$NAME\n. /lib/lsb/init-functions\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&s, "do_step%d() {\n\tstart-stop-daemon --start --quiet --pidfile $PIDFILE --exec $DAEMON --test > /dev/null || return 1\n\tlog_daemon_msg \"step %d\" \"$NAME\"\n}\n", i, i)
	}
	s.WriteString("case \"$1\" in\n  start) do_step0 ;;\n  stop) start-stop-daemon --stop --retry=TERM/30/KILL/5 --pidfile $PIDFILE --name $NAME ;;\n  status) status_of_proc \"$DAEMON\" \"$NAME\" ;;\nesac\n")
	return s.String()
}

// BenchmarkServiceOfAll is what plan does: the service of every
// process, through one Lookup.
func BenchmarkServiceOfAll(b *testing.B) {
	benchServiceOfAll(b, func(sys System) Lookup { return NewLookup(sys) })
}

// BenchmarkServiceOfEach asks System.ServiceOf of every process, one
// lookup each: the scripts come from the index, the pidfiles are read
// each time.
func BenchmarkServiceOfEach(b *testing.B) {
	benchServiceOfAll(b, func(sys System) Lookup { return sys })
}

func benchServiceOfAll(b *testing.B, lookup func(System) Lookup) {
	tr := benchTree(b)
	sys, err := tr.config(nil).Detect(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	pids := tr.config(nil).pids()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l := lookup(sys)
		found := 0
		for _, pid := range pids {
			if svc, ok := l.ServiceOf(pid); ok && svc.Restartable {
				found++
			}
		}
		if found != 1000 {
			b.Fatalf("found the service of %d processes, want 1000", found)
		}
	}
}

// BenchmarkBusyboxRunning is one "is it running" of a busybox rcS
// script on the same server.
func BenchmarkBusyboxRunning(b *testing.B) {
	tr := benchTree(b)
	tr.symlink(tr.proc, "1/exe", "/bin/busybox")
	sys, err := tr.config(nil).Detect(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if sys.Kind() != KindBusybox {
		b.Fatalf("detected %s, want busybox", sys.Kind())
	}
	svc := Service{Name: "daemon49", Kind: InitDScript, Restartable: true}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if ok, err := sys.Running(context.Background(), svc); err != nil || !ok {
			b.Fatalf("Running = %v, %v", ok, err)
		}
	}
}

// BenchmarkServiceOfLive asks, as sysvinit would, the service of every
// process of this machine, from its own /proc, /etc/init.d and /run.
func BenchmarkServiceOfLive(b *testing.B) {
	sys := &SysV{cfg: Config{cache: newCache()}}
	pids := sys.cfg.pids()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l := NewLookup(sys)
		for _, pid := range pids {
			l.ServiceOf(pid)
		}
	}
	b.ReportMetric(float64(len(pids)), "procs")
}
