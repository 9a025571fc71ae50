package initsys

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The index reads a script again when its entry changes, and only then.
func TestScriptIndexFollowsChanges(t *testing.T) {
	tr := newTree(t)
	tr.process(1, 0, "init", "/sbin/init", "init [2]")
	tr.fifo("run/initctl")
	tr.process(300, 1, "webd", "/opt/web/bin/webd", "/opt/web/bin/webd")
	tr.file("run/web-main.pid", "300\n")
	script := tr.file("etc/init.d/alpha", "#!/bin/sh\nPIDFILE=/run/web-main.pid\n")
	sys, err := tr.config(nil).Detect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	name := func() string {
		svc, _ := sys.ServiceOf(300)
		return svc.Name
	}
	if got := name(); got != "alpha" {
		t.Fatalf("ServiceOf(300) = %q, want alpha", got)
	}

	// Same size, same mtime, same inode: the index answers without
	// reading the script again (an admin's editor changes at least one).
	fi, err := os.Stat(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, []byte("#!/bin/sh\nPIDFILE=/run/web-xxxx.pid\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(script, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "alpha" {
		t.Errorf("after a rewrite that kept size and mtime: ServiceOf(300) = %q, want alpha (from the index)", got)
	}

	// A new mtime: read again, and the pidfile it names now is another.
	later := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(script, later, later); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "web-main" {
		t.Errorf("after the script changed: ServiceOf(300) = %q, want web-main (its pidfile, which no script names)", got)
	}

	// A new script, then a renamed one.
	tr.file("etc/init.d/S50web", "#!/bin/sh\nDAEMON=/opt/web/bin/webd\n")
	if got := name(); got != "S50web" {
		t.Errorf("after S50web appeared: ServiceOf(300) = %q, want S50web", got)
	}
	if err := os.Rename(filepath.Join(tr.root, "etc/init.d/S50web"), filepath.Join(tr.root, "etc/init.d/S60web")); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "S60web" {
		t.Errorf("after the rename: ServiceOf(300) = %q, want S60web", got)
	}
	if err := os.Remove(filepath.Join(tr.root, "etc/init.d/S60web")); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "web-main" {
		t.Errorf("after the removal: ServiceOf(300) = %q, want web-main", got)
	}
}

// A Lookup answers as ServiceOf does, process by process.
func TestLookupAnswersAsServiceOf(t *testing.T) {
	btr, bcfg := busyboxTree(t)
	bcfg.cache = newCache()
	otr, ocfg := openRCTree(t)
	ocfg.cache = newCache()
	sutr := superviseTree(t)
	sucfg := sutr.config(nil)
	sucfg.cache = newCache()
	str := sysvTree(t)
	scfg := str.config(nil)
	scfg.cache = newCache()
	for _, tc := range []struct {
		name string
		sys  System
		proc string
	}{
		{"busybox", &Busybox{cfg: bcfg}, btr.proc},
		{"openrc", &OpenRC{SysV: SysV{cfg: ocfg}}, otr.proc},
		{"sysvinit", &SysV{cfg: scfg}, str.proc},
		{"runit and s6 under sysvinit", &SysV{cfg: sucfg}, sutr.proc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLookup(tc.sys)
			if _, same := l.(System); same {
				t.Fatal("NewLookup returned the System itself, want a lookup of its own")
			}
			pids := Config{ProcRoot: tc.proc}.pids()
			found := 0
			for _, pid := range pids {
				want, wok := tc.sys.ServiceOf(pid)
				got, ok := l.ServiceOf(pid)
				if ok != wok || got != want {
					t.Errorf("pid %d: lookup = %+v, %v; ServiceOf = %+v, %v", pid, got, ok, want, wok)
				}
				if ok {
					found++
				}
			}
			if found == 0 {
				t.Errorf("no service found for any of %d processes", len(pids))
			}
		})
	}
}
