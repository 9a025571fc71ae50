package lifeline

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// fixtureKey parses testdata/keys/NAME.pub, written by ssh-keygen.
func fixtureKey(t *testing.T, name string) ssh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "keys", name+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatalf("%s.pub: %v", name, err)
	}
	return k
}

func TestParseAuthorizedKeys(t *testing.T) {
	data, err := os.ReadFile("testdata/authorized_keys")
	if err != nil {
		t.Fatal(err)
	}
	keys, bad := ParseAuthorizedKeys(data)

	// Plain, RSA, CRLF with leading blanks, harmless options, tab after
	// options; the duplicate of the first line is dropped.
	var want []ssh.PublicKey
	for _, name := range []string{"ed25519", "rsa", "ecdsa256", "ecdsa384", "ecdsa521"} {
		want = append(want, fixtureKey(t, name))
	}
	if len(keys) != len(want) {
		t.Errorf("got %d keys, want %d", len(keys), len(want))
	}
	for i := 0; i < len(keys) && i < len(want); i++ {
		if !bytes.Equal(keys[i].Marshal(), want[i].Marshal()) {
			t.Errorf("key %d: got %s %s, want %s %s", i, keys[i].Type(), ssh.FingerprintSHA256(keys[i]), want[i].Type(), ssh.FingerprintSHA256(want[i]))
		}
	}

	// Line number → what the reason must mention.
	wantBad := map[int]string{
		8:  `command="echo 'Please login`, // the cloud-image "login as admin" key
		9:  `command="/usr/bin/backup`,    // a forced command
		10: `from="10.0.0.0/8,!10.0.0.1"`, // source restriction
		11: "option restrict,",
		12: "not a public key",
		13: "not a public key",
		14: "not a public key", // type field disagrees with the blob
	}
	got := map[int]string{}
	for _, b := range bad {
		got[b.Line] = b.Err.Error()
	}
	for line, sub := range wantBad {
		msg, ok := got[line]
		if !ok {
			t.Errorf("line %d: not reported", line)
			continue
		}
		if !strings.Contains(msg, sub) {
			t.Errorf("line %d: got %q, want it to mention %q", line, msg, sub)
		}
	}
	for line, msg := range got {
		if _, ok := wantBad[line]; !ok {
			t.Errorf("line %d reported but fine: %s", line, msg)
		}
	}
	// The restricted keys are named by fingerprint, so the admin can find them.
	if fp := ssh.FingerprintSHA256(fixtureKey(t, "forced")); !strings.Contains(got[9], fp) {
		t.Errorf("line 9: got %q, want fingerprint %s", got[9], fp)
	}
}

func TestLoadAuthorizedKeys(t *testing.T) {
	keys, err := LoadAuthorizedKeys("testdata/authorized_keys")
	var ake *AuthorizedKeysError
	if !errors.As(err, &ake) {
		t.Fatalf("got error %v, want *AuthorizedKeysError", err)
	}
	if len(keys) != 5 || len(ake.Lines) != 7 {
		t.Errorf("got %d keys and %d skipped lines, want 5 and 7", len(keys), len(ake.Lines))
	}
	if msg := err.Error(); !strings.Contains(msg, "testdata/authorized_keys:12: not a public key") {
		t.Errorf("error text %q does not name path:line", msg)
	}

	clean := filepath.Join(t.TempDir(), "authorized_keys")
	ed, _ := os.ReadFile("testdata/keys/ed25519.pub")
	if err := os.WriteFile(clean, append([]byte("# only one\n"), ed...), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err = LoadAuthorizedKeys(clean)
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0].Marshal(), fixtureKey(t, "ed25519").Marshal()) {
		t.Errorf("clean file: got %d keys, err %v; want the ed25519 key, nil", len(keys), err)
	}

	keys, err = LoadAuthorizedKeys(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) || keys != nil {
		t.Errorf("missing file: got %d keys, err %v; want none, ErrNotExist", len(keys), err)
	}
}

func FuzzParseAuthorizedKeys(f *testing.F) {
	if data, err := os.ReadFile("testdata/authorized_keys"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("restrict,command=\"x\" ssh-ed25519 AAAA\n\n#c\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, bad := ParseAuthorizedKeys(data)
		if lines := bytes.Count(data, []byte("\n")) + 1; len(keys)+len(bad) > lines {
			t.Fatalf("%d keys + %d bad lines from %d lines", len(keys), len(bad), lines)
		}
		for _, k := range keys {
			again, _, _, _, err := ssh.ParseAuthorizedKey(ssh.MarshalAuthorizedKey(k))
			if err != nil || !bytes.Equal(again.Marshal(), k.Marshal()) {
				t.Fatalf("key %s does not round-trip: %v", k.Type(), err)
			}
		}
		for _, b := range bad {
			if b.Line < 1 || b.Err == nil {
				t.Fatalf("bad line entry %+v", b)
			}
		}
	})
}
