package lifeline

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The fixtures are real `sshd -T` output of Debian 12's OpenSSH 9.2p1:
// with an empty configuration, and with testdata/sshd_config-strict.
func TestParseSSHDConfig(t *testing.T) {
	for _, tc := range []struct {
		file string
		want SSHDConfig
	}{
		{"sshd-T-debian12-default.txt", SSHDConfig{PermitRootLogin: "prohibit-password", PubkeyAuth: true, StrictModes: true,
			AuthorizedKeysFile: []string{".ssh/authorized_keys", ".ssh/authorized_keys2"}, AuthMethods: []string{"any"}}},
		{"sshd-T-debian12-strict.txt", SSHDConfig{PermitRootLogin: "forced-commands-only", PubkeyAuth: true, StrictModes: true,
			AuthorizedKeysFile: []string{"/etc/ssh/keys/%u", ".ssh/authorized_keys", "%h/.ssh/k2_%%"},
			AuthMethods:        []string{"publickey,keyboard-interactive:pam", "publickey,password"},
			RevokedKeys:        "/etc/ssh/revoked_keys",
			AllowUsers:         []string{"root@10.0.0.*", "admin"}, DenyUsers: []string{"bob", "root@192.168.1.0/24"}}},
		{"sshd-T-debian12-groups.txt", SSHDConfig{PermitRootLogin: "yes", PubkeyAuth: true, StrictModes: true,
			AuthorizedKeysFile: []string{".ssh/authorized_keys", ".ssh/authorized_keys2"}, AuthMethods: []string{"any"},
			AllowGroups: []string{"wheel", "adm*"}, DenyGroups: []string{"games"}}},
	} {
		data, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseSSHDConfig(data)
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.file, *got, tc.want)
		}
	}
	for _, bad := range []string{"", "port 22\n", "permitrootlogin maybe\n"} {
		if c, err := ParseSSHDConfig([]byte(bad)); err == nil {
			t.Errorf("ParseSSHDConfig(%q) = %+v, want an error", bad, c)
		}
	}
}

func FuzzParseSSHDConfig(f *testing.F) {
	for _, name := range []string{"sshd-T-debian12-default.txt", "sshd-T-debian12-strict.txt", "sshd-T-debian12-groups.txt"} {
		data, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("permitrootlogin without-password\nallowusers  a  b\r\nrevokedkeys none\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseSSHDConfig(data)
		if err != nil {
			return
		}
		switch c.PermitRootLogin {
		case "yes", "prohibit-password", "forced-commands-only", "no":
		default:
			t.Fatalf("permitrootlogin %q", c.PermitRootLogin)
		}
		// Every list entry is one word: an entry with a blank would
		// match other than sshd matches.
		for _, l := range [][]string{c.AuthorizedKeysFile, c.AuthMethods, c.AllowUsers, c.DenyUsers, c.AllowGroups, c.DenyGroups} {
			for _, e := range l {
				if e == "" || strings.ContainsAny(e, " \t\r\n") {
					t.Fatalf("entry %q", e)
				}
			}
		}
		if c.RevokedKeys == "none" {
			t.Fatal("revokedkeys none kept as a path")
		}
		// The policy built on it never panics either (without files: a
		// fuzzed path could name /dev/zero).
		c.AuthorizedKeysFile, c.RevokedKeys = nil, ""
		LoadPolicy(c, KeySource{Home: "/nonexistent"})
	})
}

func TestMatchAddr(t *testing.T) {
	for _, tc := range []struct {
		list, ip string
		want     bool
	}{
		{"10.0.0.*", "10.0.0.7", true},
		{"10.0.0.*", "10.0.1.7", false},
		{"192.168.1.0/24", "192.168.1.200", true},
		{"192.168.1.0/24", "192.168.2.1", false},
		{"10.*,!10.0.0.5", "10.0.0.5", false},
		{"10.*,!10.0.0.5", "10.0.0.6", true},
		{"2001:db8::/32", "2001:db8::1", true},
		{"?.?.?.?", "1.2.3.4", true},
	} {
		if got := matchAddr(tc.list, tc.ip); got != tc.want {
			t.Errorf("matchAddr(%q, %q) = %v, want %v", tc.list, tc.ip, got, tc.want)
		}
	}
}

// sshd -T -C is run for the client and read; without sshd, nothing is
// found; a failing one is a refusal that quotes it.
func TestReadSSHDConfig(t *testing.T) {
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Skip(err)
	}
	fixture, _ := filepath.Abs("testdata/sshd-T-debian12-strict.txt")
	dir := t.TempDir()
	t.Setenv("PATH", dir) // no sshd but the fakes
	script := func(name, body string) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const spec = "user=root,host=192.0.2.9,addr=192.0.2.9,laddr=198.51.100.7,lport=22"
	ok := script("sshd-ok", `[ "$*" = "-T -C `+spec+`" ] && exec `+cat+" "+fixture+"\n")
	if got := findSSHD([]string{dir + "/missing", ok}); got != ok {
		t.Errorf("findSSHD: %q, want %q", got, ok)
	}
	c, from, err := readSSHDConfig(context.Background(), ok, Conn{"192.0.2.9", "198.51.100.7", 22})
	if err != nil || c.PermitRootLogin != "forced-commands-only" || from != ok+" -T -C "+spec {
		t.Errorf("sshd -T: %+v, %q, %v", c, from, err)
	}
	bad := script("sshd-bad", "echo 'Missing privilege separation directory: /run/sshd' >&2; exit 255\n")
	if _, _, err := readSSHDConfig(context.Background(), bad, Conn{Addr: "127.0.0.1"}); err == nil ||
		!strings.Contains(err.Error(), "Missing privilege separation directory") || !strings.Contains(err.Error(), "--no-lifeline") {
		t.Errorf("a failing sshd -T: %v", err)
	}
	if got := findSSHD([]string{dir + "/missing"}); got != "" {
		t.Errorf("findSSHD without sshd: %q", got)
	}
}

// sshd's Match blocks count: sshd itself evaluates them for root (sshd
// -T -C); blocks that look at the client are evaluated for the admin's
// connection, and the lifeline then takes that address only. The fake
// sshd says "permitrootlogin no" for the -C specs that match noWhen.
func TestResolveMatchBlocks(t *testing.T) {
	a := newSigner(t).PublicKey()
	home, src := keyHome(t, authLine(a))
	admin := &Conn{"192.0.2.9", "198.51.100.7", 22}
	for _, tc := range []struct {
		name, config, noWhen string
		client               *Conn
		from                 []string
		refusal              string
	}{
		{"Match User root", "PermitRootLogin yes\nMatch User root\n  PermitRootLogin no\n", "user=root,*", admin, nil, "PermitRootLogin no"},
		{"Match User root, a console", "Match User root\n  PermitRootLogin no\n", "user=root,*", nil, nil, "PermitRootLogin no"},
		{"Match User alice", "Match User alice\n  PermitRootLogin no\n", "user=alice,*", nil, nil, ""},
		{"Match Address, the admin's elsewhere", "Match Address 10.0.0.0/8\n  PermitRootLogin no\n", "*,addr=10.*", admin, []string{"192.0.2.9"}, ""},
		{"Match Address, the admin's in it", "Match Address 10.0.0.0/8\n  PermitRootLogin no\n", "*,addr=10.*", &Conn{"10.1.2.3", "10.0.0.1", 22}, nil, "PermitRootLogin no"},
		{"Match Address, a console", "match address=10.0.0.0/8\n  PermitRootLogin no\n", "*,addr=10.*", nil, nil, "Match address"},
		{"Match LocalPort in an Include", "Include conf.d/*.conf\n", "*,lport=2222", admin, []string{"192.0.2.9"}, ""},
		{"Match User root Address", "Match User root Address 10.*\n  PermitRootLogin no\n", "*,addr=10.*", admin, []string{"192.0.2.9"}, ""},
		{"commented-out Match lines do not count", "#Match Address 10.*\n# Match Host x\n", "*", nil, nil, "PermitRootLogin no"},
	} {
		dir := t.TempDir()
		os.MkdirAll(dir+"/conf.d", 0o755)
		os.WriteFile(dir+"/conf.d/a.conf", []byte("Match LocalPort 2222\n  PermitRootLogin no\n"), 0o644)
		file := dir + "/sshd_config"
		os.WriteFile(file, []byte(tc.config), 0o644)
		bin := dir + "/sshd"
		os.WriteFile(bin, []byte(`#!/bin/sh
if [ "$1 $2" = "-T -C" ]; then case "$3" in `+tc.noWhen+`) echo "permitrootlogin no"; exit;; esac; fi
echo "permitrootlogin yes"
`), 0o755)
		src.Client = tc.client
		p, err := resolve(context.Background(), src, bin, file)
		if tc.refusal != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refusal) {
				t.Errorf("%s: %v, want a refusal with %q", tc.name, err, tc.refusal)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(p.From, tc.from) || len(p.Keys) != 1 {
			t.Errorf("%s: %+v, %v; want clients from %v", tc.name, p, err, tc.from)
		}
	}
	// Without sshd there is no configuration to follow: the defaults,
	// for every client.
	src.Client = nil
	if p, err := resolve(context.Background(), src, "", home+"/none"); err != nil || p.From != nil || p.SSHD != noSSHD {
		t.Errorf("no sshd: %+v, %v", p, err)
	}
	// An unreadable configuration may hide any Match: the admin's
	// address only.
	bin := home + "/sshd"
	os.WriteFile(bin, []byte("#!/bin/sh\necho permitrootlogin yes\n"), 0o755)
	src.Client = admin
	if p, err := resolve(context.Background(), src, bin, home+"/none"); err != nil || !reflect.DeepEqual(p.From, []string{"192.0.2.9"}) {
		t.Errorf("unreadable sshd_config: %+v, %v", p, err)
	}
}
