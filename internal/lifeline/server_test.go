package lifeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/cli"

	"github.com/rootswap/rootswap/internal/testutil"
)

// Every listener in these tests is on 127.0.0.1 with an ephemeral port,
// except TestDefaultListenInNetNS, which has a network namespace of its own.

// waitLimit bounds every wait for a condition; tests never sleep.
const waitLimit = 10 * time.Second

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	s, _ := newKeyPair(t)
	return s
}

func newKeyPair(t *testing.T) (ssh.Signer, ed25519.PrivateKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, priv
}

// testShell is a tiny command language for exec sessions:
// "echo WORDS", "exit N", "fail MSG", "env", "block".
func testShell(calls *atomic.Int32, blocked chan<- struct{}) Shell {
	return func(ctx context.Context, env *cli.Env, args []string) error {
		calls.Add(1)
		if len(args) != 2 || args[0] != "-c" {
			return fmt.Errorf("want [-c CMD], got %q", args)
		}
		cmd, arg, _ := strings.Cut(args[1], " ")
		switch cmd {
		case "echo":
			fmt.Fprintln(env.Stdout, arg)
			return nil
		case "exit":
			n, _ := strconv.Atoi(arg)
			return cli.ExitCode(n)
		case "fail":
			return errors.New(arg)
		case "env":
			fmt.Fprintf(env.Stdout, "TERM=%s LD_PRELOAD=%s HOME=%s proc=%s\n",
				env.Getenv("TERM"), env.Getenv("LD_PRELOAD"), env.Getenv("HOME"), env.ProcRoot)
			return nil
		case "tty":
			_, isFile := env.Stdin.(*os.File)
			fmt.Fprintf(env.Stdout, "stdin is a file: %v\n", isFile)
			return nil
		case "block":
			blocked <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		}
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// startServer starts a lifeline on 127.0.0.1 that authorizes key.
func startServer(t *testing.T, opts Options, key ssh.PublicKey) (*Server, *testutil.SyncBuffer) {
	t.Helper()
	log := &testutil.SyncBuffer{}
	opts.Listen = []string{"127.0.0.1:0"}
	opts.AuthorizedKeys = []ssh.PublicKey{key}
	opts.Log = log
	if opts.Env == nil {
		opts.Env = &cli.Env{ProcRoot: "/proc", Getenv: func(string) string { return "" }}
	}
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, log
}

// dial logs in as root with auth and returns the client and the host key
// the server presented.
func dial(t *testing.T, s *Server, cfg ssh.ClientConfig) (*ssh.Client, ssh.PublicKey, error) {
	t.Helper()
	var hostKey ssh.PublicKey
	cfg.User = "root"
	cfg.Timeout = waitLimit
	cfg.HostKeyCallback = func(_ string, _ net.Addr, k ssh.PublicKey) error { hostKey = k; return nil }
	c, err := ssh.Dial("tcp", s.Addrs()[0].String(), &cfg)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, hostKey, err
}

func TestExecWithAuthorizedKey(t *testing.T) {
	key := newSigner(t)
	var calls atomic.Int32
	s, log := startServer(t, Options{Shell: testShell(&calls, nil)}, key.PublicKey())

	var banner string
	c, hostKey, err := dial(t, s, ssh.ClientConfig{
		Auth:           []ssh.AuthMethod{ssh.PublicKeys(key)},
		BannerCallback: func(msg string) error { banner = msg; return nil },
	})
	if err != nil {
		t.Fatalf("login with the authorized key: %v", err)
	}
	if got := ssh.FingerprintSHA256(hostKey); got != s.Fingerprint() {
		t.Errorf("client saw host key %s, Fingerprint() says %s", got, s.Fingerprint())
	}
	// Nothing before login says a swap runs here.
	if banner != "" || !bytes.Equal(c.ServerVersion(), []byte("SSH-2.0-Go")) {
		t.Errorf("banner %q, server version %q: want none and SSH-2.0-Go", banner, c.ServerVersion())
	}

	for _, tc := range []struct {
		cmd, stdout, stderr string
		status              int // -1: success
	}{
		{"echo hi", "hi\n", "", -1},
		{"exit 7", "", "", 7},
		{"fail disk on fire", "", "disk on fire\n", 1},
	} {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		sess.Stdout, sess.Stderr = &stdout, &stderr
		err = sess.Run(tc.cmd)
		status := -1
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			status = ee.ExitStatus()
		} else if err != nil {
			t.Fatalf("%s: %v", tc.cmd, err)
		}
		if status != tc.status || stdout.String() != tc.stdout || stderr.String() != tc.stderr {
			t.Errorf("%s: got status %d stdout %q stderr %q, want %d %q %q", tc.cmd, status, stdout.String(), stderr.String(), tc.status, tc.stdout, tc.stderr)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("shell ran %d times, want 3", n)
	}
	want := fmt.Sprintf(`accepted ssh-ed25519 key %s for "root" from %s`, ssh.FingerprintSHA256(key.PublicKey()), c.LocalAddr())
	if !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

func TestUnknownKeyRefused(t *testing.T) {
	authorized, stranger := newSigner(t), newSigner(t)
	var calls atomic.Int32
	s, log := startServer(t, Options{Shell: testShell(&calls, nil)}, authorized.PublicKey())

	_, _, err := dial(t, s, ssh.ClientConfig{
		Auth:           []ssh.AuthMethod{ssh.PublicKeys(stranger)},
		BannerCallback: func(string) error { return nil },
	})
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("login with an unknown key: got %v, want an authentication failure", err)
	}
	want := fmt.Sprintf(`refused ssh-ed25519 key %s for "root" from 127.0.0.1:`, ssh.FingerprintSHA256(stranger.PublicKey()))
	if !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	if strings.Contains(log.String(), "accepted") || calls.Load() != 0 {
		t.Errorf("unknown key got in (shell ran %d times):\n%s", calls.Load(), log)
	}
}

func TestPasswordAndKeyboardInteractiveRefused(t *testing.T) {
	var calls atomic.Int32
	s, log := startServer(t, Options{Shell: testShell(&calls, nil)}, newSigner(t).PublicKey())
	if s.config.PasswordCallback != nil || s.config.KeyboardInteractiveCallback != nil || s.config.NoClientAuth {
		t.Fatal("server config has a password, keyboard-interactive or no-auth path")
	}

	// x/crypto's client only tries a method the server lists; neither
	// callback being asked means the server did not offer it.
	var asked atomic.Int32
	_, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{
		ssh.PasswordCallback(func() (string, error) { asked.Add(1); return "hunter2", nil }),
		ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			asked.Add(1)
			return []string{"hunter2"}, nil
		}),
	}})
	if err == nil {
		t.Fatal("login without a key succeeded")
	}
	if asked.Load() != 0 || calls.Load() != 0 {
		t.Errorf("password/keyboard-interactive asked %d times, shell ran %d times; want 0, 0", asked.Load(), calls.Load())
	}

	// OpenSSH's client shows the list the server sends.
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Log("ssh (openssh-client) not installed: method list not checked with OpenSSH")
		return
	}
	host, port, _ := net.SplitHostPort(s.Addrs()[0].String())
	out, err := exec.Command("ssh", "-v", "-F", "/dev/null", "-o", "BatchMode=no", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=password,keyboard-interactive",
		"-o", "NumberOfPasswordPrompts=0", "-p", port, "root@"+host, "true").CombinedOutput()
	if err == nil {
		t.Fatalf("ssh with password logged in:\n%s", out)
	}
	if !bytes.Contains(out, []byte("Authentications that can continue: publickey\r\n")) &&
		!bytes.Contains(out, []byte("Authentications that can continue: publickey\n")) {
		t.Errorf("OpenSSH did not see publickey as the only method:\n%s", out)
	}
	if !strings.Contains(log.String(), "closed before login") {
		t.Errorf("log lacks the failed OpenSSH attempt:\n%s", log)
	}
}

// TestOpenSSHClient logs in with OpenSSH's ssh and the authorized key, the
// way an admin will, and checks it trusts exactly the advertised host key.
func TestOpenSSHClient(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("ssh (openssh-client) not installed")
	}
	key, priv := newKeyPair(t)
	s, _ := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil)}, key.PublicKey())
	dir := t.TempDir()
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	idFile, knownHosts := filepath.Join(dir, "id"), filepath.Join(dir, "known_hosts")
	host, port, _ := net.SplitHostPort(s.Addrs()[0].String())
	if err := os.WriteFile(idFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	hostLine := fmt.Sprintf("[%s]:%s %s", host, port, ssh.MarshalAuthorizedKey(s.HostKey()))
	if err := os.WriteFile(knownHosts, []byte(hostLine), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+knownHosts, "-o", "IdentitiesOnly=yes", "-i", idFile,
		"-p", port, "root@"+host, "exit 6")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 6 {
		t.Fatalf("ssh ... 'exit 6': %v\n%s", err, out)
	}
	cmd.Args[len(cmd.Args)-1] = "echo hi"
	out, err = exec.Command(cmd.Args[0], cmd.Args[1:]...).CombinedOutput()
	if err != nil || string(out) != "hi\n" {
		t.Errorf("ssh ... 'echo hi': got %q, %v; want \"hi\\n\"", out, err)
	}
}

// fakeConn is the ConnMetadata the auth log needs.
type fakeConn struct{ ssh.ConnMetadata }

func (fakeConn) User() string         { return "root" }
func (fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000} }

func TestPasswordAttemptLogged(t *testing.T) {
	s, log := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil)}, newSigner(t).PublicKey())
	s.authLog(fakeConn{}, "none", errors.New("no auth"))
	s.authLog(fakeConn{}, "password", errors.New("ssh: password auth not configured"))
	want := `refused password authentication for "root" from 192.0.2.1:40000: only public keys are accepted`
	if got := log.String(); !strings.Contains(got, want) || strings.Contains(got, "refused none") {
		t.Errorf("log: got\n%s\nwant %q and no line for the none probe", got, want)
	}
}

func TestEnvAcceptsTERMOnly(t *testing.T) {
	key := newSigner(t)
	tmpl := &cli.Env{ProcRoot: "/fixture/proc", Getenv: func(k string) string {
		if k == "HOME" {
			return "/root"
		}
		return ""
	}}
	s, _ := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil), Env: tmpl}, key.PublicKey())
	c, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Setenv("TERM", "vt100"); err != nil {
		t.Errorf("Setenv TERM: %v", err)
	}
	if err := sess.Setenv("LD_PRELOAD", "/tmp/evil.so"); err == nil {
		t.Error("Setenv LD_PRELOAD accepted")
	}
	out, err := sess.Output("env")
	if err != nil {
		t.Fatal(err)
	}
	if want := "TERM=vt100 LD_PRELOAD= HOME=/root proc=/fixture/proc\n"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// ptyShell reports the terminal it runs on, then echoes lines.
func ptyShell(ctx context.Context, env *cli.Env, args []string) error {
	f, ok := env.Stdin.(*os.File)
	if !ok {
		fmt.Fprintln(env.Stdout, "no tty")
		return cli.ExitCode(9)
	}
	winsize := func() string {
		ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("rows=%d cols=%d", ws.Row, ws.Col)
	}
	fmt.Fprintf(env.Stdout, "tty %s term=%s args=%q\n", winsize(), env.Getenv("TERM"), args)
	in := bufio.NewScanner(env.Stdin)
	for in.Scan() {
		switch line := in.Text(); line {
		case "size":
			fmt.Fprintf(env.Stdout, "now %s\n", winsize())
		case "quit":
			return cli.ExitCode(5)
		default:
			fmt.Fprintf(env.Stdout, "echo:%s\n", line)
		}
	}
	return in.Err()
}

// reader collects a session's output and lets a test wait for a string.
type reader struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	more chan struct{}
}

func newReader(t *testing.T, r interface{ Read([]byte) (int, error) }) *reader {
	rd := &reader{more: make(chan struct{}, 1)}
	go func() {
		p := make([]byte, 4096)
		for {
			n, err := r.Read(p)
			rd.mu.Lock()
			rd.buf.Write(p[:n])
			rd.mu.Unlock()
			select {
			case rd.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return rd
}

func (rd *reader) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		rd.mu.Lock()
		got := rd.buf.String()
		rd.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		select {
		case <-rd.more:
		case <-deadline:
			t.Fatalf("output lacks %q:\n%q", want, got)
		}
	}
}

func TestPTYSession(t *testing.T) {
	if _, err := os.Stat(devPtmx); err != nil {
		t.Skipf("no %s here: %v", devPtmx, err)
	}
	key := newSigner(t)
	s, _ := startServer(t, Options{Shell: ptyShell}, key.PublicKey())
	c, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatalf("pty-req: %v", err)
	}
	stdin, _ := sess.StdinPipe()
	stdout, _ := sess.StdoutPipe()
	out := newReader(t, stdout)
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	// "\r\n": the line discipline's ONLCR, so this really went through a tty.
	out.waitFor(t, "tty rows=24 cols=80 term=xterm-256color args=[]\r\n")
	fmt.Fprint(stdin, "hello\r")
	out.waitFor(t, "echo:hello\r\n")

	// With a reply, the resize is done before the next line is read.
	ok, err := sess.SendRequest("window-change", true, ssh.Marshal(windowChange{Cols: 132, Rows: 50}))
	if !ok || err != nil {
		t.Fatalf("window-change: %v %v", ok, err)
	}
	fmt.Fprint(stdin, "size\r")
	out.waitFor(t, "now rows=50 cols=132\r\n")

	fmt.Fprint(stdin, "quit\r")
	err = sess.Wait()
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 5 {
		t.Errorf("exit: got %v, want status 5", err)
	}
}

func TestPTYUnavailable(t *testing.T) {
	key := newSigner(t)
	opts := Options{Shell: testShell(new(atomic.Int32), nil), ptmx: filepath.Join(t.TempDir(), "no-ptmx")}
	s, log := startServer(t, opts, key.PublicKey())
	c, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
		t.Fatal("pty-req succeeded without a ptmx")
	}
	// The session still works, on the channel itself.
	out, err := sess.Output("tty")
	if err != nil || string(out) != "stdin is a file: false\n" {
		t.Errorf("got %q, %v; want a session without a terminal", out, err)
	}
	if !strings.Contains(log.String(), "no terminal: statfs "+opts.ptmx) {
		t.Errorf("log does not say why there is no terminal:\n%s", log)
	}
}

func TestCloseEndsSessions(t *testing.T) {
	key := newSigner(t)
	blocked := make(chan struct{}, 1)
	var calls atomic.Int32
	execShell := testShell(&calls, blocked)
	var readEnded atomic.Bool
	shell := func(ctx context.Context, env *cli.Env, args []string) error {
		if len(args) == 0 {
			// Interactive, and deaf to ctx: only the terminal's
			// hang-up can end it.
			blocked <- struct{}{}
			var p [64]byte
			for {
				if _, err := env.Stdin.Read(p[:]); err != nil {
					readEnded.Store(true)
					return err
				}
			}
		}
		return execShell(ctx, env, args)
	}
	s, _ := startServer(t, Options{Shell: shell}, key.PublicKey())
	c, _, err := dial(t, s, ssh.ClientConfig{Auth: []ssh.AuthMethod{ssh.PublicKeys(key)}})
	if err != nil {
		t.Fatal(err)
	}

	execSess, _ := c.NewSession()
	if err := execSess.Start("block"); err != nil {
		t.Fatal(err)
	}
	<-blocked
	ptySess, _ := c.NewSession()
	withPTY := ptySess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}) == nil
	if err := ptySess.Shell(); err != nil {
		t.Fatal(err)
	}
	<-blocked

	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Close returns after the shells did; the client notices the drop.
	if withPTY && !readEnded.Load() {
		t.Error("the interactive shell's read did not end")
	}
	for _, sess := range []*ssh.Session{execSess, ptySess} {
		waited := make(chan error, 1)
		go func() { waited <- sess.Wait() }()
		select {
		case err := <-waited:
			if err == nil {
				t.Error("session ended cleanly after Close; want a dropped connection")
			}
		case <-time.After(waitLimit):
			t.Fatal("session still open after Close")
		}
	}
	if conn, err := net.Dial("tcp", s.Addrs()[0].String()); err == nil {
		conn.Close()
		t.Error("still accepting connections after Close")
	}
}

func TestFingerprintMatchesSSHKeygen(t *testing.T) {
	s, _ := startServer(t, Options{Shell: testShell(new(atomic.Int32), nil)}, newSigner(t).PublicKey())
	fp := s.Fingerprint()
	if !regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`).MatchString(fp) {
		t.Errorf("fingerprint %q is not SHA256: and 43 unpadded base64 characters", fp)
	}
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Logf("ssh-keygen (openssh-client) not installed: compared with ssh.FingerprintSHA256 only")
		if want := ssh.FingerprintSHA256(s.HostKey()); fp != want {
			t.Errorf("got %s, want %s", fp, want)
		}
		return
	}
	pub := filepath.Join(t.TempDir(), "host.pub")
	if err := os.WriteFile(pub, ssh.MarshalAuthorizedKey(s.HostKey()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh-keygen", "-lf", pub).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -lf: %v\n%s", err, out)
	}
	// "256 SHA256:... no comment (ED25519)"
	fields := strings.Fields(string(out))
	if len(fields) < 2 || fields[1] != fp || fields[0] != "256" || fields[len(fields)-1] != "(ED25519)" {
		t.Errorf("ssh-keygen -lf: %q; Fingerprint(): %s (ed25519)", out, fp)
	}
}

func TestListenAddrs(t *testing.T) {
	for _, tc := range []struct {
		listen []string
		port   int
		want   []string
	}{
		{nil, 2222, []string{":2222"}},
		{[]string{"10.0.0.5"}, 2222, []string{"10.0.0.5:2222"}},
		{[]string{"::1", "[fe80::1%eth0]"}, 2200, []string{"[::1]:2200", "[fe80::1%eth0]:2200"}},
		{[]string{"[::1]:2201", "127.0.0.1:0", ":2300"}, 2222, []string{"[::1]:2201", "127.0.0.1:0", ":2300"}},
	} {
		got, err := listenAddrs(tc.listen, tc.port)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("listenAddrs(%q, %d) = %q, %v; want %q", tc.listen, tc.port, got, err, tc.want)
		}
	}
	// Names are refused: the server never resolves one.
	for _, bad := range [][]string{{""}, {"[::1"}, {"localhost"}, {"localhost:2222"}} {
		if got, err := listenAddrs(bad, 2222); err == nil {
			t.Errorf("listenAddrs(%q) = %q, want an error", bad, got)
		}
	}
}

func TestStartNeedsKeysAndShell(t *testing.T) {
	loopback := []string{"127.0.0.1:0"}
	if _, err := Start(context.Background(), Options{Listen: loopback, Shell: ptyShell}); err == nil {
		t.Error("started without authorized keys")
	}
	if _, err := Start(context.Background(), Options{Listen: loopback, AuthorizedKeys: []ssh.PublicKey{newSigner(t).PublicKey()}}); err == nil {
		t.Error("started without a shell")
	}
}

func TestContextStopsServer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, Options{Listen: []string{"127.0.0.1:0"}, Shell: ptyShell, AuthorizedKeys: []ssh.PublicKey{newSigner(t).PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(waitLimit)
	for {
		conn, err := net.Dial("tcp", s.Addrs()[0].String())
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening after the context ended")
		}
		time.Sleep(10 * time.Millisecond) // polling for the listener to go
	}
}
