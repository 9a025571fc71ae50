package lifeline

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// LineError is one authorized_keys line the lifeline will not use.
type LineError struct {
	Line int // 1-based
	Err  error
}

// AuthorizedKeysError lists the lines of an authorized_keys file that were
// skipped. LoadAuthorizedKeys returns it together with the keys it could
// use, so a caller can warn and go on when some keys remain.
type AuthorizedKeysError struct {
	Path  string
	Lines []LineError
}

func (e *AuthorizedKeysError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: skipped %d line(s)", e.Path, len(e.Lines))
	for _, l := range e.Lines {
		fmt.Fprintf(&b, "\n  %s:%d: %v", e.Path, l.Line, l.Err)
	}
	return b.String()
}

// harmlessOption are the authorized_keys options that only restrict
// features the lifeline does not offer at all (forwarding, rc files) or
// grant things: a key carrying them may get the lifeline's shell. Any other
// option — command=, from=, no-pty, restrict, expiry-time=,
// cert-authority, and options unknown to us — limits what the key may do in
// a way the lifeline cannot honour, so such a key is left out rather than
// handed a root shell it was deliberately denied (cloud images put exactly
// such a command="echo 'Please login as the user ...'" key in root's file).
func harmlessOption(s string) bool {
	switch s {
	case "no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding", "no-user-rc",
		"port-forwarding", "agent-forwarding", "x11-forwarding", "user-rc", "pty",
		"permitopen", "permitlisten", "environment", "tunnel", "no-touch-required":
		return true
	}
	return false
}

// ParseAuthorizedKeys parses authorized_keys text: every key type
// golang.org/x/crypto/ssh knows, options prefixes, comments, blank lines
// and CRLF line ends. It returns the usable keys (without duplicates, file
// order kept) and one LineError per line it skipped: unparseable, or
// carrying an option the lifeline cannot honour.
func ParseAuthorizedKeys(data []byte) ([]ssh.PublicKey, []LineError) {
	var keys []ssh.PublicKey
	var bad []LineError
	seen := map[string]bool{}
	for n, line := range bytes.Split(data, []byte("\n")) {
		text := bytes.TrimSpace(line)
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		// One line at a time: ssh.ParseAuthorizedKey silently skips
		// lines it cannot parse, and we want to say which ones.
		key, _, options, _, err := ssh.ParseAuthorizedKey(text)
		if err != nil {
			bad = append(bad, LineError{Line: n + 1, Err: fmt.Errorf("not a public key: %w", err)})
			continue
		}
		if opt := restrictingOption(options); opt != "" {
			bad = append(bad, LineError{Line: n + 1, Err: fmt.Errorf("%s key %s has option %s, which the lifeline cannot honour; not accepted",
				key.Type(), ssh.FingerprintSHA256(key), opt)})
			continue
		}
		blob := string(key.Marshal())
		if seen[blob] {
			continue
		}
		seen[blob] = true
		keys = append(keys, key)
	}
	return keys, bad
}

// restrictingOption returns the first option that is not harmless, or "".
func restrictingOption(options []string) string {
	for _, o := range options {
		name, _, _ := strings.Cut(o, "=")
		if !harmlessOption(strings.ToLower(name)) {
			return o
		}
	}
	return ""
}

// LoadAuthorizedKeys reads an authorized_keys file once; the lifeline keeps
// the keys in memory because the file may live on a root that goes away.
// When some lines were skipped it returns the usable keys and an
// *AuthorizedKeysError; when the file cannot be read, no keys and the
// *os.PathError.
func LoadAuthorizedKeys(path string) ([]ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	keys, bad := ParseAuthorizedKeys(data)
	if len(bad) > 0 {
		return keys, &AuthorizedKeysError{Path: path, Lines: bad}
	}
	return keys, nil
}

// errNoKeys is returned by Start when there is nobody to let in.
var errNoKeys = errors.New("lifeline: no authorized keys (a server nobody can log into would only be an open port)")
