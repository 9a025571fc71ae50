package lifeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// Policy is who the lifeline lets in, resolved once from sshd's
// configuration and the key files: plan shows it, the engine starts with
// it, both by Resolve.
type Policy struct {
	Keys          []ssh.PublicKey
	From, NotFrom []string // Options.From and NotFrom
	Files         []string // the key files read
	SSHD          string   // where the configuration came from
	Notes         []string // keys left out, and why
}

// KeySource says where the keys come from.
type KeySource struct {
	// Keys is --lifeline-keys: a file of root's with the keys to accept,
	// for hosts where the admin logs in as a user and becomes root with
	// sudo. Empty: root's AuthorizedKeysFile.
	Keys string
	// Home is root's home directory; empty: /etc/passwd's, else /root.
	Home string
	top  string // where checks of a file outside Home stop ("/"); tests
	// groups are root's groups' names; nil: from /etc/group. Tests.
	groups []string
	// Client is the admin's own SSH connection (SessionConn), for which
	// sshd's Match blocks are evaluated; nil on a console.
	Client *Conn
}

// Resolve reads sshd's configuration (sshd -T) and the keys: the one way
// plan and run decide who the lifeline lets in. An error is a refusal
// that names the setting and what to do.
func Resolve(ctx context.Context, src KeySource) (*Policy, error) {
	return resolve(ctx, src, findSSHD(sshdPaths[:]), sshdConfigFile)
}

// resolve evaluates sshd's Match blocks with `sshd -T -C` for root, once,
// before the swap: the lifeline must let the admin in when neither root
// can run sshd, so it cannot ask sshd at login. Blocks that look only at
// the user hold for every client. Blocks that look at the client (Match
// Address, Host, LocalAddress, LocalPort...) are evaluated for the
// admin's own connection, and the lifeline then takes clients from that
// address only: the policy of any other client is unknown, and guessing
// it could let in one sshd would refuse.
func resolve(ctx context.Context, src KeySource, bin, file string) (*Policy, error) {
	cfg, from, dep := defaultSSHD(), noSSHD, ""
	if bin != "" {
		client := Conn{Addr: "127.0.0.1"} // any address: no Match looks at it
		if dep = clientMatch(path.Dir(file), file, 0); dep != "" {
			if src.Client == nil {
				return nil, errors.New("sshd's policy depends on the client (" + dep + ") and no SSH session says who the client is; run rootswap from your SSH session, or pass --no-lifeline")
			}
		}
		if src.Client != nil {
			client = *src.Client
		}
		var err error
		if cfg, from, err = readSSHDConfig(ctx, bin, client); err != nil {
			return nil, err
		}
	}
	p, err := LoadPolicy(cfg, src)
	if p == nil {
		return nil, err
	}
	p.SSHD = from
	if dep != "" && err == nil {
		a := src.Client.Addr
		if !allowedFrom(p.From, p.NotFrom, a) {
			return nil, errors.New("sshd lets root in from elsewhere only, not from your address " + a + fixHint)
		}
		p.From = []string{a}
		p.SSHD += "; clients from " + a + " only: " + dep
	}
	return p, err
}

const fixHint = "; give --lifeline-keys FILE (root's, not writable by others) with the keys to accept, or pass --no-lifeline"

// LoadPolicy applies cfg to the keys of src.
func LoadPolicy(cfg *SSHDConfig, src KeySource) (*Policy, error) {
	if !cfg.PubkeyAuth {
		return nil, errors.New("sshd takes no public keys (PubkeyAuthentication no), the only way into the lifeline; pass --no-lifeline")
	}
	if !keyOnly(cfg.AuthMethods) {
		return nil, fmt.Errorf("sshd requires more than a key (AuthenticationMethods %s) and the lifeline takes keys only: it would be a way around the second factor; pass --no-lifeline",
			strings.Join(cfg.AuthMethods, " "))
	}
	revoked, err := loadRevoked(cfg.RevokedKeys)
	if err != nil {
		return nil, err
	}
	if src.top == "" {
		src.top = "/"
	}
	p := &Policy{}
	if src.Keys != "" {
		// Root wrote this file for the lifeline: sshd's rules about root
		// logins (PermitRootLogin no is the usual reason for it) do not
		// apply, its checks always do.
		if err := checkSecure(src.Keys, src.top, true); err != nil {
			return nil, err
		}
		p.Files = []string{src.Keys}
	} else {
		if src.groups == nil && len(cfg.AllowGroups)+len(cfg.DenyGroups) > 0 {
			src.groups = rootGroups()
		}
		if err := rootAllowed(cfg, p, src.groups); err != nil {
			return nil, err
		}
		home := src.Home
		if home == "" {
			home = "/root"
			if u, err := user.Lookup("root"); err == nil && u.HomeDir != "" {
				home = u.HomeDir
			}
		}
		for _, f := range cfg.AuthorizedKeysFile {
			if f == "none" {
				continue
			}
			f = expandKeysPath(f, home)
			if _, err := os.Lstat(f); errors.Is(err, os.ErrNotExist) {
				continue // sshd skips a missing file too
			}
			top := src.top
			if strings.HasPrefix(f, home+"/") {
				top = home // sshd's StrictModes stops at the home too
			}
			if err := checkSecure(f, top, cfg.StrictModes); err != nil {
				return nil, err
			}
			p.Files = append(p.Files, f)
		}
	}
	seen := map[string]bool{}
	for _, f := range p.Files {
		keys, err := LoadAuthorizedKeys(f)
		var ake *AuthorizedKeysError
		if errors.As(err, &ake) {
			for _, l := range ake.Lines {
				p.Notes = append(p.Notes, fmt.Sprintf("%s:%d: %v", f, l.Line, l.Err))
			}
		} else if err != nil {
			return nil, err
		}
		for _, k := range keys {
			blob := string(k.Marshal())
			switch {
			case revoked[blob]:
				p.Notes = append(p.Notes, fmt.Sprintf("%s: %s key %s is in RevokedKeys; not accepted", f, k.Type(), ssh.FingerprintSHA256(k)))
			case !seen[blob]:
				seen[blob] = true
				p.Keys = append(p.Keys, k)
			}
		}
	}
	if len(p.Keys) == 0 {
		what := "no key file"
		if len(p.Files) > 0 {
			what = strings.Join(p.Files, ", ") + ": no usable key"
		}
		to := src.Keys
		if to == "" {
			to = "/root/.ssh/authorized_keys"
		}
		return p, errors.New(what + "; add your key to " + to + ", or pass --no-lifeline")
	}
	return p, nil
}

// keyOnly says whether one public key satisfies AuthenticationMethods.
func keyOnly(methods []string) bool {
	for _, m := range methods {
		if m == "any" || m == "publickey" {
			return true
		}
	}
	return len(methods) == 0
}

// rootGroups are the names of root's groups (its primary one first).
func rootGroups() []string {
	var out []string
	if u, err := user.Lookup("root"); err == nil {
		ids, _ := u.GroupIds()
		for _, id := range append([]string{u.Gid}, ids...) {
			if g, err := user.LookupGroupId(id); err == nil {
				out = append(out, g.Name)
			}
		}
	}
	return out
}

// anyGroup says whether a pattern of pats matches a group of groups.
func anyGroup(pats, groups []string) string {
	for _, p := range pats {
		for _, g := range groups {
			if matchGlob(p, g) {
				return p
			}
		}
	}
	return ""
}

// rootAllowed applies PermitRootLogin, AllowUsers, DenyUsers, AllowGroups
// and DenyGroups to root (of groups): the lifeline's shell is root's.
// user@host entries become address restrictions of the lifeline.
func rootAllowed(cfg *SSHDConfig, p *Policy, groups []string) error {
	switch cfg.PermitRootLogin {
	case "no":
		return errors.New("sshd lets no root login in (PermitRootLogin no): root's keys will not open the lifeline either" + fixHint)
	case "forced-commands-only":
		return errors.New("sshd lets root in only with a forced command= (PermitRootLogin forced-commands-only), which the lifeline cannot honour" + fixHint)
	}
	if g := anyGroup(cfg.DenyGroups, groups); g != "" {
		return fmt.Errorf("sshd denies root's group (DenyGroups %s)"+fixHint, g)
	}
	if len(cfg.AllowGroups) > 0 && anyGroup(cfg.AllowGroups, groups) == "" {
		return fmt.Errorf("sshd allows only other groups (AllowGroups %s)"+fixHint, strings.Join(cfg.AllowGroups, " "))
	}
	for _, e := range cfg.DenyUsers {
		u, host, at := strings.Cut(e, "@")
		if matchGlob(u, "root") {
			if !at {
				return fmt.Errorf("sshd denies root (DenyUsers %s)"+fixHint, e)
			}
			p.NotFrom = append(p.NotFrom, host)
		}
	}
	if len(cfg.AllowUsers) == 0 {
		return nil
	}
	for _, e := range cfg.AllowUsers {
		u, host, at := strings.Cut(e, "@")
		if matchGlob(u, "root") {
			if !at {
				p.From = nil
				return nil
			}
			p.From = append(p.From, host)
		}
	}
	if len(p.From) == 0 {
		return fmt.Errorf("sshd allows only other users (AllowUsers %s)"+fixHint, strings.Join(cfg.AllowUsers, " "))
	}
	return nil
}

// expandKeysPath expands AuthorizedKeysFile's tokens for root: %h the
// home, %u the user, %U the uid, %% a %; a relative path is in the home.
func expandKeysPath(f, home string) string {
	var b []byte
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b = append(b, f[i])
			continue
		}
		i++
		switch f[i] {
		case 'h':
			b = append(b, home...)
		case 'u':
			b = append(b, "root"...)
		case 'U':
			b = append(b, '0')
		default: // %% and unknown tokens, which sshd refuses
			b = append(b, f[i])
		}
	}
	if f = string(b); !strings.HasPrefix(f, "/") {
		f = home + "/" + f
	}
	return filepath.Clean(f)
}

// krlMagic starts an OpenSSH key revocation list (ssh-keygen -k).
const krlMagic = "SSHKRL\n\x00"

// loadRevoked reads RevokedKeys as sshd does: a file it cannot read
// revokes every key. The binary KRL format is refused, not guessed at.
func loadRevoked(path string) (map[string]bool, error) {
	out := map[string]bool{}
	if path == "" {
		return out, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("RevokedKeys %s cannot be read, so sshd refuses every key: %w; pass --no-lifeline", path, err)
	}
	if bytes.HasPrefix(data, []byte(krlMagic)) {
		return nil, fmt.Errorf("RevokedKeys %s is a binary key revocation list, which the lifeline cannot read; list the revoked keys as public key lines, or pass --no-lifeline", path)
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if k, _, _, _, err := ssh.ParseAuthorizedKey(line); err == nil {
			out[string(k.Marshal())] = true
		}
	}
	return out, nil
}

// checkSecure applies sshd's StrictModes to a key file for root: the file
// (a symlink is followed, so its target is what is checked: never another
// user's file) and every directory up to top owned by root and writable by
// nobody else. strict false (StrictModes no) checks only that it is a
// regular file.
func checkSecure(name, top string, strict bool) error {
	real, err := filepath.EvalSymlinks(name)
	if err != nil {
		return err
	}
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case p == real && !fi.Mode().IsRegular():
			return fmt.Errorf("%s: not a regular file", real)
		case !strict:
		case st.Uid != 0:
			return fmt.Errorf("%s (for %s) is owned by uid %d, not root: sshd's StrictModes refuses it, so does the lifeline; make it root's and writable by root only (chown root, chmod go-w), or pass --no-lifeline", p, name, st.Uid)
		case fi.Mode().Perm()&0o022 != 0:
			return fmt.Errorf("%s (for %s) is writable by group or others (%v): sshd's StrictModes refuses it, so does the lifeline; make it root's and writable by root only (chown root, chmod go-w), or pass --no-lifeline", p, name, fi.Mode().Perm())
		}
		if !strict || p == top || p == "/" || p == "." {
			return nil
		}
	}
}
