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

// sshd -T is run and read; without sshd, OpenSSH's defaults; a failing
// one is a refusal that quotes it.
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
	ok := script("sshd-ok", `[ "$1" = -T ] && exec `+cat+" "+fixture+"\n")
	c, from, err := readSSHDConfig(context.Background(), []string{dir + "/missing", ok})
	if err != nil || c.PermitRootLogin != "forced-commands-only" || from != ok+" -T" {
		t.Errorf("sshd -T: %+v, %q, %v", c, from, err)
	}
	bad := script("sshd-bad", "echo 'Missing privilege separation directory: /run/sshd' >&2; exit 255\n")
	if _, _, err := readSSHDConfig(context.Background(), []string{bad}); err == nil ||
		!strings.Contains(err.Error(), "Missing privilege separation directory") || !strings.Contains(err.Error(), "--no-lifeline") {
		t.Errorf("a failing sshd -T: %v", err)
	}
	c, from, err = readSSHDConfig(context.Background(), []string{dir + "/missing"})
	if err != nil || !reflect.DeepEqual(c, defaultSSHD()) || !strings.Contains(from, "no sshd") {
		t.Errorf("no sshd: %+v, %q, %v", c, from, err)
	}
}
