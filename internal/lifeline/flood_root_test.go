package lifeline

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rootswap/rootswap/internal/caplog"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/testutil"
)

// The flood of issue 13, against a lifeline with the engine's defaults
// writing to a log in a small tmpfs as the engine's does: hundreds of idle
// connections from 127.0.0.2 and dozens of clients from other addresses
// offering refused keys with 60 KiB user names. The admin, from
// 127.0.0.3, logs in on the first try, the log stays small and the
// tmpfs keeps its room for the journal.
func TestFloodRoot(t *testing.T) {
	dir := testutil.Tmpfs(t, "8m")
	f, err := os.OpenFile(filepath.Join(dir, "engine.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	admin := newSigner(t)
	s, err := Start(context.Background(), Options{
		Listen: []string{"127.0.0.1:0"}, AuthorizedKeys: []ssh.PublicKey{admin.PublicKey()},
		Shell: testShell(new(atomic.Int32), nil), Log: caplog.New(f, caplog.Share(dir, 8)),
		Env: &cli.Env{ProcRoot: "/proc", Getenv: func(string) string { return "" }},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// 300 connections that send nothing, from one address.
	idle := make([]net.Conn, 0, 300)
	for i := 0; i < 300; i++ {
		idle = append(idle, dialFrom(t, s, "127.0.0.2"))
	}
	// Some of them were let in to wait for their login grace.
	held := 0
	for _, c := range idle[:10] {
		if v, err := versionLine(c); err == nil && strings.HasPrefix(v, "SSH-2.0-") {
			held++
		}
	}
	if held == 0 || held > defaultLimits.perSource {
		t.Errorf("%d of the first 10 idle connections from one address were let in, want 1 to %d", held, defaultLimits.perSource)
	}

	// 40 clients, each from an address of its own, each offering a refused
	// key three times with a 60 KiB user name.
	huge := strings.Repeat("x", 60<<10)
	strangers := make([]ssh.Signer, 40)
	for i := range strangers {
		strangers[i] = newSigner(t)
	}
	var wg sync.WaitGroup
	var refused atomic.Int32
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := net.IPv4(127, 0, 1, byte(10+i))
			for j := 0; j < 3; j++ {
				if _, err := login(s, src, huge, strangers[i]); err != nil {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if refused.Load() != 120 {
		t.Errorf("%d of 120 stranger logins refused", refused.Load())
	}

	// The admin, from 127.0.0.3, while the idle connections still wait
	// (and once the server has seen the strangers go: they are not what
	// this tests, and random early drop could take the admin's try).
	for i := 0; ; i++ {
		s.gate.mu.Lock()
		n := s.gate.total
		s.gate.mu.Unlock()
		if n <= defaultLimits.perSource {
			break
		}
		if i > 1000 {
			t.Fatalf("%d unauthenticated connections still counted", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := login(s, net.IPv4(127, 0, 0, 3), "root", admin)
	if err != nil {
		t.Fatalf("the admin's login during the flood: %v", err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.Output("echo in")
	c.Close()
	if err != nil || string(out) != "in\n" {
		t.Fatalf("the admin's command: %q, %v", out, err)
	}

	// The log: every line short, few lines, little memory; the journal's room kept.
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		lines++
		if len(sc.Text()) > maxLogLine+64 {
			t.Errorf("log line of %d bytes", len(sc.Text()))
		}
	}
	if len(data) > 64<<10 {
		t.Errorf("the flood wrote %d bytes (%d lines) of log, want at most 64 KiB", len(data), lines)
	}
	if free := testutil.FreeBytes(t, dir); free < 7<<20 {
		t.Errorf("%d bytes free of the 8 MiB tmpfs after the flood", free)
	}
	if err := os.WriteFile(filepath.Join(dir, "journal"), make([]byte, 4<<20), 0o600); err != nil {
		t.Errorf("a 4 MiB journal after the flood: %v", err)
	}
	t.Logf("%d lines, %d bytes of log", lines, len(data))
}

// login connects from the address src as user with key.
func login(s *Server, src net.IP, user string, key ssh.Signer) (*ssh.Client, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: waitLimit}
	conn, err := d.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		return nil, err
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, "", &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: waitLimit})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}
