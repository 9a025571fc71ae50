package swap_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/sandbox"
	"golang.org/x/crypto/ssh"
)

// dialIn connects to addr inside the server's network namespace (it has
// only loopback).
func dialIn(t *testing.T, s server, addr string) (net.Conn, error) {
	t.Helper()
	return dialFromIn(s, "", addr)
}

// sshRun runs cmd through the lifeline, from 127.0.0.1.
func sshRun(t *testing.T, s server, cfg *ssh.ClientConfig, cmd string) (string, error) {
	t.Helper()
	return sshFrom(t, s, "", cfg, cmd)
}

func newKey(t *testing.T) (ssh.Signer, []byte) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, ssh.MarshalAuthorizedKey(signer.PublicKey())
}

// startWithKey is a server whose root has an authorized key.
func startWithKey(t *testing.T) (server, ssh.Signer) {
	s := start(t, sandbox.Options{})
	signer, line := newKey(t)
	dir := s.HostPath("/root/.ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), line, 0o600); err != nil {
		t.Fatal(err)
	}
	return s, signer
}

func clientConfig(auth ...ssh.AuthMethod) *ssh.ClientConfig {
	return &ssh.ClientConfig{User: "root", Auth: auth, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
}

// Run waits for confirmation with the lifeline up; the lifeline takes only
// the authorized key, its shell runs applets with no /bin needed, and a
// confirm from a new login releases the old root.
func TestLifelineAndConfirm(t *testing.T) {
	s, signer := startWithKey(t)
	out, code := s.sh(nil, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --confirm-timeout 60s")
	if code != 0 || !strings.Contains(out, "lifeline SSH on") || !strings.Contains(out, "rootswap confirm` within 1m0s") {
		t.Fatalf("run exited %d:\n%s", code, out)
	}
	for i := 0; ; i++ {
		st, _ := s.sh(nil, "/usr/sbin/rootswap status")
		if strings.HasPrefix(st, "waiting-confirm") {
			if !strings.Contains(st, "confirm within") {
				t.Errorf("status does not show the time left:\n%s", st)
			}
			break
		}
		if i > 100 {
			t.Fatalf("never waiting for confirmation:\n%s", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Refused: an unknown key, a password.
	other, _ := newKey(t)
	if _, err := sshRun(t, s, clientConfig(ssh.PublicKeys(other)), "true"); err == nil {
		t.Error("an unknown key was accepted")
	}
	if _, err := sshRun(t, s, clientConfig(ssh.Password("root")), "true"); err == nil {
		t.Error("a password was accepted")
	}
	// Accepted: the rescue shell, with the applets and no PATH.
	got, err := sshRun(t, s, clientConfig(ssh.PublicKeys(signer)), "PATH=; rootswap status | head -n 1; ls /mnt")
	if err != nil || !strings.HasPrefix(got, "waiting-confirm\n") || !strings.Contains(got, "oldroot") {
		t.Fatalf("lifeline session: %v\n%s", err, got)
	}
	// The lifeline's own confirm proves nothing about sshd: refused.
	if got, err := sshRun(t, s, clientConfig(ssh.PublicKeys(signer)), "rootswap confirm"); err == nil || !strings.Contains(got, "proves nothing") {
		t.Errorf("confirm through the lifeline: %v\n%s", err, got)
	}
	if out, code := s.sh(nil, "/usr/sbin/rootswap confirm"); code != 0 {
		t.Fatalf("confirm from a new login: %d\n%s", code, out)
	}
	status, code := s.waitDone()
	if code != 0 {
		t.Fatalf("status %d:\n%s", code, status)
	}
	after := s.snapshot()
	s.checkOn(after, s.TargetDev)
	if _, ok := after.Mounts.Containing("/mnt/oldroot"); ok {
		if m, _ := after.Mounts.Containing("/mnt/oldroot"); m.Point == "/mnt/oldroot" {
			t.Error("old root still mounted after confirm")
		}
	}
	// The lifeline stops with the run: status says succeeded a moment
	// before the engine closes it.
	for i := 0; ; i++ {
		c, err := dialIn(t, s, "127.0.0.1:2222")
		if err != nil {
			break
		}
		c.Close()
		if i == 50 {
			t.Error("the lifeline still listens 5 s after the run ended")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// No confirmation in time: the engine rolls back by itself.
func TestNoConfirmRollsBack(t *testing.T) {
	s, _ := startWithKey(t)
	if out, code := s.sh(nil, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes --confirm-timeout 3s"); code != 0 {
		t.Fatalf("run exited %d:\n%s", code, out)
	}
	status, code := s.waitDone()
	if code != 1 || !strings.HasPrefix(status, "rolled-back\n") || !strings.Contains(status, "no confirmation within 3s") {
		t.Fatalf("status %d, want rolled-back for want of a confirm:\n%s", code, status)
	}
	s.checkOn(s.snapshot(), s.RootDev)
}

// Without a usable key the lifeline could not work: run refuses unless
// --no-lifeline, and changes nothing.
func TestNoKeyRefused(t *testing.T) {
	s := start(t, sandbox.Options{})
	out, code := s.sh(nil, "/usr/sbin/rootswap run --to "+s.TargetDev+" --yes")
	if code != 3 || !strings.Contains(out, "--no-lifeline") {
		t.Errorf("run without keys exited %d:\n%s", code, out)
	}
	s.checkOn(s.snapshot(), s.RootDev)
}
