package lifeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SSHDConfig is what the lifeline takes from sshd's effective
// configuration (`sshd -T`): it hands out a root shell, so it must let in
// no key that sshd would keep out of one.
type SSHDConfig struct {
	PermitRootLogin    string   // yes, prohibit-password, forced-commands-only, no
	PubkeyAuth         bool     // pubkeyauthentication
	StrictModes        bool     // strictmodes
	AuthorizedKeysFile []string // with %h %u %U %%, relative to the home
	AuthMethods        []string // authenticationmethods: "any" or method lists
	RevokedKeys        string   // "" when none
	AllowUsers         []string
	DenyUsers          []string
	AllowGroups        []string
	DenyGroups         []string
}

// defaultSSHD is OpenSSH's default configuration (since 7.0), assumed
// where no sshd is installed (dropbear, or none at all).
func defaultSSHD() *SSHDConfig {
	return &SSHDConfig{PermitRootLogin: "prohibit-password", PubkeyAuth: true, StrictModes: true,
		AuthorizedKeysFile: []string{".ssh/authorized_keys", ".ssh/authorized_keys2"}, AuthMethods: []string{"any"}}
}

// ParseSSHDConfig reads the output of `sshd -T`: one lower-case keyword
// and its value a line; keywords that take several values (allowusers)
// come once for each. Keywords the lifeline does not use are skipped.
func ParseSSHDConfig(data []byte) (*SSHDConfig, error) {
	c := defaultSSHD()
	seen := false
	for _, line := range strings.Split(string(data), "\n") {
		key, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		val = strings.TrimSpace(val)
		switch key {
		case "permitrootlogin":
			seen = true
			if val == "without-password" { // its name before OpenSSH 7.0
				val = "prohibit-password"
			}
			switch val {
			case "yes", "prohibit-password", "forced-commands-only", "no":
				c.PermitRootLogin = val
			default:
				return nil, fmt.Errorf("sshd -T: permitrootlogin %q: unknown value", clip(val, maxLogName))
			}
		case "pubkeyauthentication":
			c.PubkeyAuth = val != "no"
		case "strictmodes":
			c.StrictModes = val != "no"
		case "authorizedkeysfile":
			c.AuthorizedKeysFile = strings.Fields(val)
		case "authenticationmethods":
			c.AuthMethods = strings.Fields(val)
		case "revokedkeys":
			c.RevokedKeys = val
			if val == "none" {
				c.RevokedKeys = ""
			}
		case "allowusers":
			c.AllowUsers = append(c.AllowUsers, strings.Fields(val)...)
		case "denyusers":
			c.DenyUsers = append(c.DenyUsers, strings.Fields(val)...)
		case "allowgroups":
			c.AllowGroups = append(c.AllowGroups, strings.Fields(val)...)
		case "denygroups":
			c.DenyGroups = append(c.DenyGroups, strings.Fields(val)...)
		}
	}
	if !seen {
		return nil, errors.New("sshd -T: no permitrootlogin line: not sshd's configuration")
	}
	return c, nil
}

// sshdPaths are where sshd is looked for before PATH (which often lacks
// /usr/sbin in an admin's sudo session).
var sshdPaths = [...]string{"/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"}

// Conn is a connection as sshd's Match blocks see it: the client's
// address, and the address and port it reached sshd on.
type Conn struct {
	Addr  string `json:"addr"`
	LAddr string `json:"laddr,omitempty"`
	LPort int    `json:"lport,omitempty"`
}

// sshdConfigFile is where sshd reads its configuration without -f.
const sshdConfigFile = "/etc/ssh/sshd_config"

// noSSHD is where the configuration came from without sshd.
const noSSHD = "no sshd here: OpenSSH's defaults"

// findSSHD is the sshd binary, "" when there is none.
func findSSHD(paths []string) string {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	p, _ := exec.LookPath("sshd")
	return p
}

// readSSHDConfig runs `sshd -T -C` for root coming in as client and
// parses it: sshd itself evaluates its Match blocks for that connection.
func readSSHDConfig(ctx context.Context, bin string, client Conn) (*SSHDConfig, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Older sshd insists on user, host and addr together with -C;
	// host is the address, as with sshd's default UseDNS no.
	spec := "user=root,host=" + client.Addr + ",addr=" + client.Addr
	if client.LAddr != "" {
		spec += ",laddr=" + client.LAddr + ",lport=" + strconv.Itoa(client.LPort)
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-T", "-C", spec)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		// Its policy unknown, the lifeline cannot follow it.
		msg := strings.ReplaceAll(strings.TrimSpace(stderr.String()), "\n", " / ")
		return nil, "", fmt.Errorf("%s -T: %w: %s; make `sshd -T` work (it wants its host keys and /run/sshd), or pass --no-lifeline", bin, err, clip(msg, maxLogLine))
	}
	c, err := ParseSSHDConfig(out.Bytes())
	return c, bin + " -T -C " + spec, err
}

// clientMatch names the first Match criterion of sshd's configuration
// (file and what it Includes) that looks at more than the user: the
// client's address or name, the local address or port, or a criterion
// this code does not know. "" when every Match block is about users and
// groups: root's evaluation then holds for every client. A file that
// cannot be read counts as such a criterion.
func clientMatch(etc, file string, depth int) string {
	data, err := os.ReadFile(file)
	if err != nil || depth > 16 {
		return "unreadable " + file
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '=' })
		if len(f) == 0 {
			continue
		}
		switch strings.ToLower(f[0]) {
		case "include":
			for _, pat := range f[1:] {
				if !path.IsAbs(pat) {
					pat = path.Join(etc, pat) // sshd's own directory, not the including file's
				}
				names, _ := filepath.Glob(pat)
				for _, n := range names {
					if c := clientMatch(etc, n, depth+1); c != "" {
						return c
					}
				}
			}
		case "match":
			for i := 1; i < len(f); i++ {
				switch strings.ToLower(f[i]) {
				case "all":
				case "user", "group":
					i++
				default:
					return "Match " + f[i] + " in " + file
				}
			}
		}
	}
	return ""
}

// matchGlob is sshd's match_pattern: * and ? wildcards, whole string.
func matchGlob(pat, s string) bool {
	ok, err := path.Match(pat, s)
	return ok && err == nil
}

// matchAddr is sshd's host list for the address of a client: comma
// separated, a leading ! negates (and wins), CIDR blocks or wildcards.
// (sshd also matches host names, with UseDNS; the lifeline has addresses
// only.)
func matchAddr(list, ip string) bool {
	addr := net.ParseIP(ip)
	hit := false
	for _, p := range strings.Split(list, ",") {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		var m bool
		if _, n, err := net.ParseCIDR(p); err == nil {
			m = addr != nil && n.Contains(addr)
		} else {
			m = matchGlob(p, ip)
		}
		if m && neg {
			return false
		}
		hit = hit || m
	}
	return hit
}

// fromAllowed applies Options.From and NotFrom to a client's address.
func (s *Server) fromAllowed(ip string) bool { return allowedFrom(s.opts.From, s.opts.NotFrom, ip) }

func allowedFrom(from, notFrom []string, ip string) bool {
	ok := len(from) == 0
	for _, p := range from {
		ok = ok || matchAddr(p, ip)
	}
	for _, p := range notFrom {
		ok = ok && !matchAddr(p, ip)
	}
	return ok
}
