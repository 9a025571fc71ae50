package lifeline

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rootswap/rootswap/internal/cli"
)

// dialFrom opens a TCP connection to the server from a loopback address
// of its own (127.0.0.2, ...): each is a distinct source to the server.
func dialFrom(t *testing.T, s *Server, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitLimit}
	c, err := d.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// versionLine reads what the server says first: its SSH version line, or
// an error when it hung up instead.
func versionLine(c net.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(waitLimit))
	return bufio.NewReader(c).ReadString('\n')
}

// waitClosed reads until the server hangs up; false if it did not within
// waitLimit.
func waitClosed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(waitLimit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// One address holding its share of unauthenticated connections gets no
// more; another address still gets in.
func TestPerSourceLimit(t *testing.T) {
	lim := defaultLimits
	lim.perSource = 2
	s, log := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil), lim: lim}, newSigner(t).PublicKey())
	for i := 0; i < 2; i++ {
		if v, err := versionLine(dialFrom(t, s, "127.0.0.2")); err != nil || !strings.HasPrefix(v, "SSH-2.0-") {
			t.Fatalf("connection %d from 127.0.0.2: %q, %v", i+1, v, err)
		}
	}
	if v, err := versionLine(dialFrom(t, s, "127.0.0.2")); err == nil {
		t.Errorf("third connection from 127.0.0.2 got %q, want it dropped", v)
	}
	if v, err := versionLine(dialFrom(t, s, "127.0.0.3")); err != nil || !strings.HasPrefix(v, "SSH-2.0-") {
		t.Errorf("connection from 127.0.0.3: %q, %v; want the version line", v, err)
	}
	if want := "dropped connection from 127.0.0.2:"; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

// MaxStartups start:rate:full: all in below start, none at full, some in
// between.
func TestRandomEarlyDrop(t *testing.T) {
	lim := limits{perSource: 1000, start: 4, rate: 50, full: 8}
	g := gate{l: &lim, src: map[string]int{}}
	for i := 0; i < 4; i++ {
		if why := g.admit("192.0.2.1"); why != "" {
			t.Fatalf("connection %d below start refused: %s", i+1, why)
		}
	}
	admitted, dropped := 0, 0
	for i := 0; i < 1000; i++ {
		if g.admit("192.0.2.1") == "" {
			admitted++
			g.release("192.0.2.1")
		} else {
			dropped++
		}
	}
	if admitted == 0 || dropped == 0 {
		t.Errorf("at start: %d admitted, %d dropped of 1000; want some of each (50 %%)", admitted, dropped)
	}
	for g.total < lim.full {
		g.admit("192.0.2.1")
	}
	for i := 0; i < 100; i++ {
		if why := g.admit("192.0.2.2"); why == "" {
			t.Fatal("a connection admitted at full")
		}
	}
	for g.total > 0 {
		g.release("192.0.2.1")
	}
	if len(g.src) != 0 {
		t.Errorf("sources left after every release: %v", g.src)
	}
}

// LoginGraceTime: a connection that never logs in is closed.
func TestLoginGrace(t *testing.T) {
	lim := defaultLimits
	lim.grace = 100 * time.Millisecond
	s, _ := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil), lim: lim}, newSigner(t).PublicKey())
	if !waitClosed(dialFrom(t, s, "127.0.0.2")) {
		t.Errorf("an idle unauthenticated connection still open after %v", waitLimit)
	}
}

// MaxSessions: per connection and in all.
func TestSessionCaps(t *testing.T) {
	lim := defaultLimits
	lim.connSessions, lim.sessions = 2, 3
	key := newSigner(t)
	blocked := make(chan struct{}, 10)
	s, log := startServer(t, Options{Shell: testShell(new(atomic.Int32), blocked), lim: lim}, key.PublicKey())
	open := func(c *ssh.Client) error {
		sess, err := c.NewSession()
		if err != nil {
			return err
		}
		if err := sess.Start("block"); err != nil {
			return err
		}
		<-blocked
		return nil
	}
	a, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := open(a); err != nil {
			t.Fatalf("session %d: %v", i+1, err)
		}
	}
	if err := open(a); err == nil {
		t.Error("a third session on one connection was opened (at most 2)")
	}
	b, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := open(b); err != nil {
		t.Fatalf("first session of a second connection: %v", err)
	}
	if err := open(b); err == nil {
		t.Error("a fourth session in all was opened (at most 3)")
	}
	if !strings.Contains(log.String(), "session refused") {
		t.Errorf("log lacks the refused sessions:\n%s", log)
	}
}

// A login that holds no session is hung up after the unused intervals.
func TestUnusedConnectionClosed(t *testing.T) {
	lim := defaultLimits
	lim.alive, lim.unused = 20*time.Millisecond, 3
	key := newSigner(t)
	s, log := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil), lim: lim}, key.PublicKey())
	c, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("an idle login without sessions was never closed")
	}
	if !strings.Contains(log.String(), "no session for a while") {
		t.Errorf("log lacks why:\n%s", log)
	}
}

// A client that answers no keepalive is hung up even while it holds a
// session.
func TestKeepaliveUnanswered(t *testing.T) {
	lim := defaultLimits
	lim.alive, lim.aliveMax = 20*time.Millisecond, 2
	key := newSigner(t)
	blocked := make(chan struct{}, 1)
	s, log := startServer(t, Options{Shell: testShell(new(atomic.Int32), blocked), lim: lim}, key.PublicKey())
	conn, err := net.Dial("tcp", s.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The global requests (keepalives) are never read, so never answered.
	cc, chans, _, err := ssh.NewClientConn(conn, "", &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for nc := range chans {
			nc.Reject(ssh.Prohibited, "")
		}
	}()
	ch, reqs, err := cc.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	if ok, err := ch.SendRequest("exec", true, ssh.Marshal(execRequest{"block"})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	<-blocked
	done := make(chan error, 1)
	go func() { done <- cc.Wait() }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatal("a client that answers no keepalive was never hung up")
	}
	if !strings.Contains(log.String(), "no answer to keepalives") {
		t.Errorf("log lacks why:\n%s", log)
	}
}

// A 60 KiB user name reaches the log cut short, and refused attempts
// beyond the burst are counted, not written.
func TestLogBounded(t *testing.T) {
	lim := defaultLimits
	lim.logBurst = 5
	frozen := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	env := &cli.Env{ProcRoot: "/proc", Getenv: func(string) string { return "" }, Now: func() time.Time { return frozen }}
	s, log := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil), lim: lim, Env: env}, newSigner(t).PublicKey())
	huge := strings.Repeat("A", 60<<10)
	for i := 0; i < 20; i++ {
		c, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(newSigner(t))}})
		if err == nil {
			c.Close()
			t.Fatal("a stranger's key was accepted")
		}
		s.checkKey(connAs{huge}, newSigner(t).PublicKey())
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	refused := 0
	for _, l := range lines {
		if len(l) > maxLogLine+64 {
			t.Errorf("log line of %d bytes: %.120q...", len(l), l)
		}
		if strings.Contains(l, "refused") || strings.Contains(l, "closed before login") {
			refused++
		}
	}
	if refused != lim.logBurst {
		t.Errorf("%d lines about refused peers with the clock stopped, want the burst (%d):\n%s", refused, lim.logBurst, log)
	}
	// Past the burst the next line says how many were left out.
	s.logf("accepted ...")
	if !strings.Contains(log.String(), "lines about unauthenticated peers left out) accepted") {
		t.Errorf("log does not count what it left out:\n%s", log)
	}
	if !strings.Contains(log.String(), `for "AAAA`) || !strings.Contains(log.String(), "...(61440 bytes)") {
		t.Errorf("the long user name is not shown cut short:\n%.2000s", log)
	}
}

// connAs is a ConnMetadata with a given user name.
type connAs struct{ user string }

func (c connAs) User() string        { return c.user }
func (connAs) SessionID() []byte     { return nil }
func (connAs) ClientVersion() []byte { return nil }
func (connAs) ServerVersion() []byte { return nil }
func (connAs) RemoteAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000} }
func (connAs) LocalAddr() net.Addr   { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 2222} }

// AllowUsers root@HOST and DenyUsers root@HOST: other clients are hung up
// before the version exchange.
func TestFromRestriction(t *testing.T) {
	s, log := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil), From: []string{"127.0.0.3,127.0.0.4"}, NotFrom: []string{"127.0.0.4"}},
		newSigner(t).PublicKey())
	for src, want := range map[string]bool{"127.0.0.2": false, "127.0.0.3": true, "127.0.0.4": false} {
		v, err := versionLine(dialFrom(t, s, src))
		if got := err == nil && strings.HasPrefix(v, "SSH-2.0-"); got != want {
			t.Errorf("from %s: version line %q, %v; want let in %v", src, v, err, want)
		}
	}
	if !strings.Contains(log.String(), "refused connection from 127.0.0.2:") {
		t.Errorf("log lacks the refused address:\n%s", log)
	}
}

// MaxAuthTries: a client offering key after key is hung up (x/crypto lets
// as many rejected key queries through again before counting them).
func TestMaxAuthTries(t *testing.T) {
	lim := defaultLimits
	lim.authTries, lim.logBurst = 2, 100
	s, log := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil), lim: lim}, newSigner(t).PublicKey())
	var keys []ssh.Signer
	for i := 0; i < 10; i++ {
		keys = append(keys, newSigner(t))
	}
	if _, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(keys...)}}); err == nil {
		t.Fatal("a stranger's key was accepted")
	}
	if n := strings.Count(log.String(), "not an authorized key"); n == 0 || n > 2*lim.authTries {
		t.Errorf("%d of 10 offered keys looked at, want at most %d:\n%s", n, 2*lim.authTries, log)
	}
}
