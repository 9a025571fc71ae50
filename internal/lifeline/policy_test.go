package lifeline

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/rootswap/rootswap/internal/testutil"
)

// keyHome is a home directory of root's under t.TempDir() with
// .ssh/authorized_keys holding lines, and the KeySource that reads it
// (its checks stop at the temporary directory: /tmp is world-writable).
func keyHome(t *testing.T, lines string) (string, KeySource) {
	t.Helper()
	testutil.RequireRoot(t) // the StrictModes checks want the files root's
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh/authorized_keys"), []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	return home, KeySource{Home: home, top: home}
}

func authLine(k ssh.PublicKey) string { return string(ssh.MarshalAuthorizedKey(k)) }

func TestLoadPolicySSHDSettings(t *testing.T) {
	a, b := newSigner(t).PublicKey(), newSigner(t).PublicKey()
	home, src := keyHome(t, authLine(a)+authLine(b))
	src.groups = []string{"root", "adm"}
	revoked := filepath.Join(home, "revoked")
	os.WriteFile(revoked, []byte("# revoked\n"+authLine(b)), 0o600)
	krl := filepath.Join(home, "krl")
	os.WriteFile(krl, []byte(krlMagic+"\x00\x00\x00\x01"), 0o600)

	for _, tc := range []struct {
		name    string
		edit    func(c *SSHDConfig)
		keys    []ssh.PublicKey
		from    []string
		notFrom []string
		refusal string // part of the error
	}{
		{"defaults", func(*SSHDConfig) {}, []ssh.PublicKey{a, b}, nil, nil, ""},
		{"PermitRootLogin yes", func(c *SSHDConfig) { c.PermitRootLogin = "yes" }, []ssh.PublicKey{a, b}, nil, nil, ""},
		{"PermitRootLogin no", func(c *SSHDConfig) { c.PermitRootLogin = "no" }, nil, nil, nil, "PermitRootLogin no"},
		{"forced-commands-only", func(c *SSHDConfig) { c.PermitRootLogin = "forced-commands-only" }, nil, nil, nil, "forced-commands-only"},
		{"PubkeyAuthentication no", func(c *SSHDConfig) { c.PubkeyAuth = false }, nil, nil, nil, "PubkeyAuthentication no"},
		{"second factor", func(c *SSHDConfig) { c.AuthMethods = []string{"publickey,keyboard-interactive:pam"} }, nil, nil, nil,
			"AuthenticationMethods publickey,keyboard-interactive:pam"},
		{"key or second factor", func(c *SSHDConfig) { c.AuthMethods = []string{"password,keyboard-interactive", "publickey"} },
			[]ssh.PublicKey{a, b}, nil, nil, ""},
		{"revoked plain list", func(c *SSHDConfig) { c.RevokedKeys = revoked }, []ssh.PublicKey{a}, nil, nil, ""},
		{"revoked KRL", func(c *SSHDConfig) { c.RevokedKeys = krl }, nil, nil, nil, "binary key revocation list"},
		{"revoked missing", func(c *SSHDConfig) { c.RevokedKeys = home + "/none" }, nil, nil, nil, "refuses every key"},
		{"AllowUsers without root", func(c *SSHDConfig) { c.AllowUsers = []string{"admin", "ops*"} }, nil, nil, nil, "AllowUsers admin ops*"},
		{"AllowUsers r*", func(c *SSHDConfig) { c.AllowUsers = []string{"admin", "r*"} }, []ssh.PublicKey{a, b}, nil, nil, ""},
		{"AllowUsers root@", func(c *SSHDConfig) { c.AllowUsers = []string{"root@10.0.0.*", "root@192.0.2.0/24"} },
			[]ssh.PublicKey{a, b}, []string{"10.0.0.*", "192.0.2.0/24"}, nil, ""},
		{"DenyUsers root", func(c *SSHDConfig) { c.DenyUsers = []string{"bob", "root"} }, nil, nil, nil, "DenyUsers root"},
		{"AllowGroups ad*", func(c *SSHDConfig) { c.AllowGroups = []string{"wheel", "ad*"} }, []ssh.PublicKey{a, b}, nil, nil, ""},
		{"AllowGroups wheel", func(c *SSHDConfig) { c.AllowGroups = []string{"wheel", "sudo"} }, nil, nil, nil, "AllowGroups wheel sudo"},
		{"DenyGroups adm", func(c *SSHDConfig) { c.DenyGroups = []string{"games", "adm"} }, nil, nil, nil, "DenyGroups adm"},
		{"DenyUsers root@", func(c *SSHDConfig) { c.DenyUsers = []string{"root@192.168.*"} }, []ssh.PublicKey{a, b}, nil, []string{"192.168.*"}, ""},
		{"AuthorizedKeysFile tokens", func(c *SSHDConfig) {
			c.AuthorizedKeysFile = []string{"%h/.ssh/authorized_%%%u", "none", ".ssh/authorized_keys"}
		},
			[]ssh.PublicKey{a, b}, nil, nil, ""},
	} {
		c := defaultSSHD()
		tc.edit(c)
		p, err := LoadPolicy(c, src)
		if tc.refusal != "" {
			if err == nil || !strings.Contains(err.Error(), tc.refusal) {
				t.Errorf("%s: got %v, want a refusal naming %q", tc.name, err, tc.refusal)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(p.Keys, tc.keys) || !reflect.DeepEqual(p.From, tc.from) || !reflect.DeepEqual(p.NotFrom, tc.notFrom) {
			t.Errorf("%s: got %d keys, from %q, not from %q; want %d, %q, %q", tc.name, len(p.Keys), p.From, p.NotFrom, len(tc.keys), tc.from, tc.notFrom)
		}
	}
}

func TestExpandKeysPath(t *testing.T) {
	for in, want := range map[string]string{
		".ssh/authorized_keys":   "/root/.ssh/authorized_keys",
		"%h/.ssh/k_%u":           "/root/.ssh/k_root",
		"/etc/ssh/keys/%u":       "/etc/ssh/keys/root",
		"/etc/ssh/keys/%U.%%":    "/etc/ssh/keys/0.%",
		"/etc/ssh/../ssh/keys/%": "/etc/ssh/keys/%",
	} {
		if got := expandKeysPath(in, "/root"); got != want {
			t.Errorf("expandKeysPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// StrictModes: a key file or directory that another user owns or that
// group or others may write, or a symlink to another user's file, is
// refused; with StrictModes no only the symlink's target must be a file.
func TestLoadPolicyStrictModes(t *testing.T) {
	k := newSigner(t).PublicKey()
	for _, tc := range []struct {
		name    string
		spoil   func(home string) error
		refusal string
	}{
		{"file group-writable", func(h string) error { return os.Chmod(h+"/.ssh/authorized_keys", 0o620) }, "writable by group or others"},
		{"file world-writable", func(h string) error { return os.Chmod(h+"/.ssh/authorized_keys", 0o666) }, "writable by group or others"},
		{"file another user's", func(h string) error { return os.Chown(h+"/.ssh/authorized_keys", 1000, 1000) }, "owned by uid 1000"},
		{"directory writable", func(h string) error { return os.Chmod(h+"/.ssh", 0o777) }, "writable by group or others"},
		{"home another user's", func(h string) error { return os.Chown(h, 1000, 1000) }, "owned by uid 1000"},
		{"symlink to another user's file", func(h string) error {
			other := t.TempDir()
			f := filepath.Join(other, "keys")
			if err := os.WriteFile(f, []byte(authLine(k)), 0o644); err != nil {
				return err
			}
			if err := os.Chown(f, 1000, 1000); err != nil {
				return err
			}
			os.Remove(h + "/.ssh/authorized_keys")
			return os.Symlink(f, h+"/.ssh/authorized_keys")
		}, "owned by uid 1000"},
	} {
		home, src := keyHome(t, authLine(k))
		if err := tc.spoil(home); err != nil {
			t.Fatal(err)
		}
		if tc.name == "symlink to another user's file" {
			src.top = "/" // the target lies outside the home: checked up to /
		}
		_, err := LoadPolicy(defaultSSHD(), src)
		if err == nil || !strings.Contains(err.Error(), tc.refusal) {
			t.Errorf("%s: got %v, want a refusal with %q", tc.name, err, tc.refusal)
		}
	}
	// A symlink to a file of root's in the home is fine.
	home, src := keyHome(t, authLine(k))
	os.Rename(home+"/.ssh/authorized_keys", home+"/.ssh/real")
	os.Symlink("real", home+"/.ssh/authorized_keys")
	if p, err := LoadPolicy(defaultSSHD(), src); err != nil || len(p.Keys) != 1 {
		t.Errorf("symlink to root's own file: %v", err)
	}
}

// --lifeline-keys: the file must be root's and writable by root only;
// sshd's rules about root logins do not apply to it, its key rules do.
func TestLoadPolicyLifelineKeys(t *testing.T) {
	k := newSigner(t).PublicKey()
	home, src := keyHome(t, "")
	src.Keys = filepath.Join(home, "lifeline-keys")
	if err := os.WriteFile(src.Keys, []byte(authLine(k)), 0o600); err != nil {
		t.Fatal(err)
	}
	c := defaultSSHD()
	c.PermitRootLogin = "no"
	p, err := LoadPolicy(c, src)
	if err != nil || !reflect.DeepEqual(p.Keys, []ssh.PublicKey{k}) || !reflect.DeepEqual(p.Files, []string{src.Keys}) {
		t.Fatalf("--lifeline-keys with PermitRootLogin no: %v, %+v", err, p)
	}
	c.AuthMethods = []string{"publickey,password"}
	if _, err := LoadPolicy(c, src); err == nil {
		t.Error("--lifeline-keys let a key-only lifeline start where sshd wants a second factor")
	}
	os.Chmod(src.Keys, 0o644)
	if _, err := LoadPolicy(defaultSSHD(), src); err != nil {
		t.Errorf("a file of root's readable by others: %v", err)
	}
	os.Chmod(src.Keys, 0o602)
	if _, err := LoadPolicy(defaultSSHD(), src); err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Errorf("a world-writable --lifeline-keys: %v", err)
	}
	os.Chmod(src.Keys, 0o600)
	os.Chown(src.Keys, 1000, 1000)
	if _, err := LoadPolicy(defaultSSHD(), src); err == nil || !strings.Contains(err.Error(), "not root") {
		t.Errorf("an admin's own file as --lifeline-keys: %v", err)
	}
	src.Keys = filepath.Join(home, "missing")
	if _, err := LoadPolicy(defaultSSHD(), src); err == nil {
		t.Error("a missing --lifeline-keys file was taken")
	}
}

// The server applies From and NotFrom to every connection.
func TestFromAllowed(t *testing.T) {
	s := &Server{opts: Options{From: []string{"10.0.0.*", "127.0.0.0/8"}, NotFrom: []string{"127.0.0.2"}}}
	for ip, want := range map[string]bool{"10.0.0.9": true, "127.0.0.3": true, "127.0.0.2": false, "192.0.2.1": false} {
		if got := s.fromAllowed(ip); got != want {
			t.Errorf("fromAllowed(%s) = %v, want %v", ip, got, want)
		}
	}
	if !(&Server{}).fromAllowed("192.0.2.1") {
		t.Error("no restriction refused a client")
	}
}

// root's groups come from /etc/group, its primary one first.
func TestRootGroups(t *testing.T) {
	if g := rootGroups(); len(g) == 0 || g[0] != "root" {
		t.Errorf("rootGroups() = %q, want root first", g)
	}
}
