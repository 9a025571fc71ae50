package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// stageTree lays out the server's root filesystem in dir, the tree
// mkfs.ext3 -d copies into root.img.
func (s *Server) stageTree(ctx context.Context, dir string) error {
	o := s.opts
	for _, d := range []struct {
		path string
		perm os.FileMode
	}{
		{"bin", 0o755}, {"sbin", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
		{"etc/init.d", 0o755}, {"etc/inittab.d", 0o755}, {"root", 0o700}, {"tmp", 0o1777},
		{"var/log", 0o755}, {"var/www", 0o755}, {"var/tmp", 0o1777},
		{"var/lib/syslogd", 0o755}, {"var/spool/cron/crontabs", 0o700},
		{"proc", 0o555}, {"sys", 0o555}, {"dev", 0o755}, {"run", 0o755},
		{"mnt/oldroot", 0o755}, {"mnt/newroot", 0o755},
	} {
		p := filepath.Join(dir, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		// MkdirAll obeys the umask; the sticky bits must be exact.
		if err := os.Chmod(p, d.perm); err != nil {
			return err
		}
	}

	for _, d := range s.variantDirs() {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := s.stageSquashfs(ctx, dir); err != nil {
		return err
	}
	// A dynamic host busybox comes with its libraries; busybox-static
	// has none.
	if err := installProgram(dir, s.Busybox, "/bin/busybox"); err != nil {
		return fmt.Errorf("sandbox: installing busybox %s: %w", s.Busybox, err)
	}
	if err := installAppletLinks(ctx, dir, s.Busybox); err != nil {
		return err
	}
	if s.Init == InitSysvinit {
		if err := installSysvinit(ctx, o, dir, s.logf); err != nil {
			return err
		}
	}
	for _, tool := range o.HostTools {
		src, err := exec.LookPath(tool)
		if err != nil {
			return fmt.Errorf("sandbox: host tool %s: %w", tool, err)
		}
		if err := installProgram(dir, src, "/sbin/"+filepath.Base(tool)); err != nil {
			return fmt.Errorf("sandbox: installing host tool %s: %w", tool, err)
		}
	}
	if err := copyFile(o.Binary, filepath.Join(dir, "usr/sbin/rootswap"), 0o755); err != nil {
		return fmt.Errorf("sandbox: installing rootswap: %w", err)
	}

	for _, l := range []struct{ target, name string }{
		{"../run", "var/run"},
		{"/proc/self/mounts", "etc/mtab"},
	} {
		if err := os.Symlink(l.target, filepath.Join(dir, l.name)); err != nil {
			return err
		}
	}
	for _, f := range s.files() {
		p := filepath.Join(dir, f.path)
		if err := os.WriteFile(p, []byte(f.content), f.perm); err != nil {
			return err
		}
		if err := os.Chmod(p, f.perm); err != nil {
			return err
		}
	}
	return nil
}

// installAppletLinks does what busybox --install -s does, with relative
// links made in the staging tree: one per applet at the path busybox
// lists for it (/bin/sh -> busybox, /usr/sbin/httpd -> ../../bin/busybox).
func installAppletLinks(ctx context.Context, root, bb string) error {
	out, err := run(ctx, bb, "--list-full")
	if err != nil {
		return err
	}
	for _, rel := range strings.Fields(out) {
		if rel == "linuxrc" || rel == "bin/busybox" {
			continue
		}
		target, err := filepath.Rel(filepath.Dir(filepath.Join("/", rel)), "/bin/busybox")
		if err != nil {
			return err
		}
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(target, p); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}

type stagedFile struct {
	path    string
	perm    os.FileMode
	content string
}

// files are the server's configuration and service scripts.
func (s *Server) files() []stagedFile {
	fs := []stagedFile{
		{"etc/hostname", 0o644, "sandbox\n"},
		{"etc/hosts", 0o644, "127.0.0.1\tlocalhost sandbox\n"},
		{"etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"},
		{"etc/group", 0o644, "root:x:0:\ndaemon:x:1:\nutmp:x:43:\nnogroup:x:65534:\n"},
		{"etc/shadow", 0o640, "root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"},
		{"etc/fstab", 0o644, "# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\nLABEL=sandbox-root\t/\text3\tdefaults\t0\t1\n"},
		{"etc/inittab", 0o644, s.inittab()},
		{"etc/init.d/rcS", 0o755, s.rcS()},
		{"etc/init.d/functions", 0o644, initFunctions},
		{"var/www/index.html", 0o644, Page},
		{"var/log/messages", 0o640, ""},
		{"var/log/wtmp", 0o664, ""},
		{"var/spool/cron/crontabs/root", 0o600, "# a writer on the root filesystem, once a minute\n* * * * * logger -t cron tick\n"},
	}
	for _, svc := range append(s.services(), s.variantServices()...) {
		pidfile := ""
		if s.opts.Buildroot {
			// Named by the daemon, in the script's own text, as Buildroot's are.
			pidfile = "PIDFILE=/var/run/" + svc.name + ".pid"
		}
		fs = append(fs, stagedFile{"etc/init.d/" + s.scriptName(svc.name), 0o755, fmt.Sprintf(serviceScript, svc.comment, svc.name, pidfile, svc.start, svc.stopExec)})
	}
	if s.opts.Buildroot {
		fs = append(fs, stagedFile{"etc/init.d/rcK", 0o755, rcK})
	}
	return append(fs, s.variantFiles()...)
}

// rcS is the boot script: the default one, or Buildroot's.
func (s *Server) rcS() string {
	if s.opts.Buildroot {
		return fmt.Sprintf(rcSBuildroot, s.variantSetup())
	}
	return fmt.Sprintf(rcS, s.variantSetup(), strings.Join(s.ServiceNames(), " "))
}

// Page is what httpd serves at /.
const Page = "<html><body><h1>rootswap sandbox</h1><p>served from the root filesystem</p></body></html>\n"

// service is one init.d script. stopExec, when set, makes the script stop
// the daemon the way Debian's do, start-stop-daemon --stop --exec, which
// matches /proc/PID/exe: after a pivot it no longer finds the old daemon
// (its exe is under /mnt/oldroot), as on a real sysvinit host.
type service struct{ name, comment, start, stopExec string }

func (s *Server) services() []service {
	return []service{
		{"syslogd", "busybox syslogd writing /var/log/messages; /dev/log -> " + SyslogSocket + " (a unix socket bound on /)",
			"exec syslogd -n -O /var/log/messages", ""},
		{"crond", "busybox crond, runs /var/spool/cron/crontabs/root",
			"exec crond -f -c /var/spool/cron/crontabs", ""},
		{"httpd", fmt.Sprintf("busybox httpd serving /var/www on port %d (inside the server's network namespace)", s.HTTPPort),
			fmt.Sprintf("exec httpd -f -p %d -h /var/www", s.HTTPPort), "/bin/busybox"},
		{"holder", "keeps " + HeldFile + " open after deleting it, as a daemon with a rotated log would",
			"exec 3>" + HeldFile + "; rm -f " + HeldFile + "; exec sleep 2147483647", ""},
	}
}

// serviceScript is an /etc/init.d script: %s comment, %s name, %s an
// optional PIDFILE= line, %s the
// foreground command (run in a background subshell that execs the
// daemon, so $! is the daemon's pid).
const serviceScript = `#!/bin/sh
# %s
NAME=%s
%s
start_daemon() { %s; }
STOP_EXEC=%s
. /etc/init.d/functions
`

// initFunctions is sourced by every service script: start/stop/restart/
// status by the pidfile /run/$NAME.pid.
const initFunctions = `# sourced by /etc/init.d/* : pidfile $PIDFILE, /run/$NAME.pid unless set
PATH=/usr/sbin:/usr/bin:/sbin:/bin
PIDFILE=${PIDFILE:-/run/$NAME.pid}

running() {
	[ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

do_start() {
	if running; then
		echo "$NAME: already running ($(cat "$PIDFILE"))"
		return 0
	fi
	cd /
	start_daemon </dev/null >/dev/null 2>&1 &
	echo $! >"$PIDFILE"
	echo "$NAME: started ($!)"
}

do_stop() {
	if ! running; then
		rm -f "$PIDFILE"
		echo "$NAME: not running"
		return 0
	fi
	pid=$(cat "$PIDFILE")
	if [ -n "$STOP_EXEC" ]; then
		start-stop-daemon -K -q -p "$PIDFILE" -x "$STOP_EXEC"
		usleep 200000
		rm -f "$PIDFILE"
		echo "$NAME: stopped"
		return 0
	fi
	kill "$pid"
	n=0
	while kill -0 "$pid" 2>/dev/null; do
		n=$((n + 1))
		[ $n -eq 50 ] && kill -9 "$pid"
		usleep 100000
	done
	rm -f "$PIDFILE"
	echo "$NAME: stopped ($pid)"
}

case "$1" in
start) do_start ;;
stop) do_stop ;;
restart) do_stop; do_start ;;
status) if running; then echo "$NAME: running ($(cat "$PIDFILE"))"; else echo "$NAME: stopped"; exit 3; fi ;;
*) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
`

// rcS brings the server up after the stage script has mounted its
// filesystems: names, loopback, the syslog socket link, then the services.
const rcS = `#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
hostname -F /etc/hostname
ip link set lo up
: >/run/utmp
%s
for s in %s; do
	/etc/init.d/$s start
done
`

func (s *Server) inittab() string {
	if s.Init == InitBusybox {
		return `# busybox init
::sysinit:/etc/init.d/rcS
# stands in for agetty on tty1
::respawn:` + GettyCmdline + `
::restart:/sbin/init
`
	}
	return `# sysvinit
id:2:initdefault:
si::sysinit:/etc/init.d/rcS
# stands in for agetty on tty1
t1:2345:respawn:` + GettyCmdline + `
`
}
