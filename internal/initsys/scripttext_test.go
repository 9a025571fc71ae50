package initsys

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseScriptFixtures(t *testing.T) {
	tests := []struct {
		file string
		want ScriptFacts
	}{
		{"busybox/etc/init.d/S01syslogd", ScriptFacts{Pidfiles: []string{"/var/run/syslogd.pid"}, Executables: []string{"/sbin/syslogd"}}},
		{"busybox/etc/init.d/S40scheduler", ScriptFacts{Pidfiles: []string{"/var/run/cron-daily.pid"}, Executables: []string{"/usr/sbin/crond"}}},
		{"busybox/etc/init.d/S45httpd", ScriptFacts{Executables: []string{"/usr/sbin/httpd"}}},
		{"busybox/etc/init.d/S50webserver", ScriptFacts{Pidfiles: []string{"/var/run/nginx.pid"}, Executables: []string{"/usr/sbin/nginx"}}},
		{"busybox/etc/init.d/S50dropbear", ScriptFacts{Executables: []string{"/usr/sbin/dropbear"}}},
		{"busybox/etc/init.d/S60network", ScriptFacts{Executables: []string{"/sbin/ifup", "/sbin/ifdown"}}},
		{"busybox/etc/init.d/rcS", ScriptFacts{}},
		{"openrc/etc/init.d/dropbear", ScriptFacts{Pidfiles: []string{"/run/dropbear-main.pid"}, Executables: []string{"/usr/sbin/dropbear"}}},
		{"openrc/etc/init.d/webapp", ScriptFacts{Executables: []string{"/opt/webapp/bin/server"}}},
		{"openrc/etc/init.d/chronyd", ScriptFacts{Executables: []string{"/usr/sbin/chronyd"}}},
	}
	for _, tc := range tests {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if got := ParseScript(filepath.Base(tc.file), string(b)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseScript(%s) =\n  %+v\nwant\n  %+v", tc.file, got, tc.want)
		}
	}
}

func TestParseScriptForms(t *testing.T) {
	tests := []struct {
		name, text string
		want       ScriptFacts
	}{
		{"sshd", `pidfile="${RC_PREFIX%/}/run/${RC_SVCNAME}.pid"`, ScriptFacts{Pidfiles: []string{"/run/sshd.pid"}}},
		{"x", `PID_FILE=${PIDDIR:-/run/x}/x.pid`, ScriptFacts{Pidfiles: []string{"/run/x/x.pid"}}},
		{"x", `PIDDIR=/run/y; PID_FILE=${PIDDIR:-/run/x}/x.pid`, ScriptFacts{Pidfiles: []string{"/run/y/x.pid"}}},
		{"x", `start-stop-daemon --start --pidfile $UNSET/x.pid --exec $UNSET/x`, ScriptFacts{}},
		{"x", `kill $(cat /var/run/xyz.pid)`, ScriptFacts{Pidfiles: []string{"/var/run/xyz.pid"}}},
		{"x", `dnsmasq --pid-file=/run/dnsmasq/dnsmasq.pid`, ScriptFacts{Pidfiles: []string{"/run/dnsmasq/dnsmasq.pid"}}},
		{"x", `pidof -p /run/a.pid a; httpd -p 8080; mkdir -p /var/run/a`, ScriptFacts{Pidfiles: []string{"/run/a.pid"}}},
		{"x", `nginx -g 'pid /run/nginx.pid; daemon on;'`, ScriptFacts{Pidfiles: []string{"/run/nginx.pid"}}},
		{"x", `DAEMON=/usr/sbin/ntpd
[ -x "$DAEMON" ] || exit 0
start-stop-daemon -S -a /usr/bin/python3 -- /opt/x.py`, ScriptFacts{Executables: []string{"/usr/sbin/ntpd"}}},
		{"x", `# PIDFILE=/run/commented.pid
echo "#" /usr/sbin/notacommand`, ScriptFacts{}},
		{"x", `exec /usr/bin/redis-server /etc/redis.conf &`, ScriptFacts{Executables: []string{"/usr/bin/redis-server"}}},
		{"x", "start-stop-daemon -S \\\n  -x /usr/sbin/x", ScriptFacts{Executables: []string{"/usr/sbin/x"}}},
		{"x", `/bin/sh -c /usr/sbin/y; /sbin/start-stop-daemon -S -x /sbin/z`, ScriptFacts{Executables: []string{"/sbin/z"}}},
	}
	for _, tc := range tests {
		if got := ParseScript(tc.name, tc.text); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseScript(%q) =\n  %+v\nwant\n  %+v", tc.text, got, tc.want)
		}
	}
}

// FuzzParseScript: whatever the text, the facts are clean absolute paths
// without the parser's placeholder, each once; a pidfile assignment added
// on a line of its own is always found.
func FuzzParseScript(f *testing.F) {
	ents, err := filepath.Glob("testdata/*/etc/init.d/*")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range ents {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(filepath.Base(p), string(b))
	}
	f.Add("x", `P=${A:-${B}}/x.pid "unterminated $(cat '/run/a.pid`)
	f.Fuzz(func(t *testing.T, name, text string) {
		facts := ParseScript(name, text)
		for _, list := range [][]string{facts.Pidfiles, facts.Executables} {
			seen := map[string]bool{}
			for _, p := range list {
				if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.ContainsAny(p, unknownMark+" \t\n") || seen[p] {
					t.Fatalf("ParseScript(%q) gave %q in %q", text, p, list)
				}
				seen[p] = true
			}
		}
		if strings.HasSuffix(text, "\\") {
			return
		}
		more := ParseScript(name, text+"\nPIDFILE=/var/run/fuzz-probe.pid\n")
		found := false
		for _, p := range more.Pidfiles {
			found = found || p == "/var/run/fuzz-probe.pid"
		}
		if !found {
			t.Fatalf("an added PIDFILE= line after %q was not found: %q", text, more.Pidfiles)
		}
	})
}
