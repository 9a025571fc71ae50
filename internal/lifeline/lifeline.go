// Package lifeline is the SSH server that `rootswap run` keeps alive while
// it swaps the root filesystem: a way back in when sshd is stopped, when
// it cannot start from the new root, or when neither root is usable.
//
// It is built to touch neither root once started: the authorized keys are
// read once, before, and kept in memory; the host key is generated in
// memory; sessions run a Go shell in-process (no /bin/sh needed). Only
// public keys are accepted — no password, no keyboard-interactive.
package lifeline

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rootswap/rootswap/internal/cli"
)

// DefaultPort is where the lifeline listens unless told otherwise.
const DefaultPort = 2222

// Shell runs one session: interactive when args is empty, a command line
// for ["-c", command]. env carries the session's streams (the PTY slave,
// or the SSH channel itself). It must return when ctx is done or its
// streams fail. cli.ExitCode(n) sets the exit status; nil is 0, a usage
// error 2, any other error 1 (its text goes to the session's stderr).
type Shell func(ctx context.Context, env *cli.Env, args []string) error

// Options configures Start.
type Options struct {
	// Listen lists addresses: "host:port", or a bare host/IP that gets
	// Port. Empty means every address of the host, IPv4 and IPv6
	// (":2222").
	Listen []string
	// Port is the port for bare hosts and the default listener;
	// 0 means DefaultPort.
	Port int
	// AuthorizedKeys are the only keys let in (see LoadAuthorizedKeys).
	AuthorizedKeys []ssh.PublicKey
	// Shell runs each session (the rescue shell).
	Shell Shell
	// Env is the template for each session's environment: Applets,
	// ProcRoot, SysRoot, Now, Getenv, Self are kept; the streams are
	// replaced. nil means cli.OSEnv().
	Env *cli.Env
	// From, when set, is the only clients let in (AllowUsers root@HOST in
	// sshd's configuration); NotFrom the clients refused (DenyUsers
	// root@HOST). Address patterns as sshd's: * and ? wildcards, a
	// leading ! negates, CIDR blocks.
	From, NotFrom []string
	// Log receives one line per connection, authentication attempt and
	// session, each bounded in length; unauthenticated events in rate.
	// nil discards.
	Log io.Writer

	// ptmx overrides /dev/ptmx in tests; lim the limits.
	ptmx string
	lim  limits
}

// closeWaitSessions bounds how long Close waits for shells to return.
const closeWaitSessions = 10 * time.Second

// Server is a running lifeline.
type Server struct {
	opts      Options
	config    *ssh.ServerConfig
	hostKey   ssh.Signer
	listeners []net.Listener
	logMu     sync.Mutex
	log       io.Writer
	now       func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops, connections, sessions
	lim    limits
	gate   gate         // unauthenticated connections
	open   atomic.Int32 // sessions of all connections

	// The rate of unauthenticated log lines (logMu).
	tokens     float64
	tokensAt   time.Time
	suppressed int

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]bool

	closeOnce sync.Once
	closeErr  error
}

// Start generates a host key and listens on every address of opts. It
// returns once all listeners are up, or the first listen error with every
// listener closed again. The server stops when ctx is done or on Close.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if len(opts.AuthorizedKeys) == 0 {
		return nil, errNoKeys
	}
	if opts.Shell == nil {
		return nil, errors.New("lifeline: no shell to run")
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.Env == nil {
		opts.Env = cli.OSEnv()
	}
	if opts.ptmx == "" {
		opts.ptmx = devPtmx
	}
	addrs, err := listenAddrs(opts.Listen, opts.Port)
	if err != nil {
		return nil, err
	}

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lifeline: generate ed25519 host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("lifeline: host key: %w", err)
	}

	s := &Server{
		opts:    opts,
		hostKey: signer,
		log:     opts.Log,
		now:     opts.Env.Now,
		lim:     opts.lim.withDefaults(),
		conns:   map[net.Conn]bool{},
	}
	s.gate = gate{l: &s.lim, src: map[string]int{}}
	if s.log == nil {
		s.log = io.Discard
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.tokens, s.tokensAt = float64(s.lim.logBurst), s.now()
	s.config = s.serverConfig()
	s.config.AddHostKey(signer)

	for _, a := range addrs {
		l, err := listenTCP(a)
		if err != nil {
			for _, l := range s.listeners {
				l.Close()
			}
			return nil, fmt.Errorf("lifeline: %w", err)
		}
		s.listeners = append(s.listeners, l)
	}

	s.ctx, s.cancel = context.WithCancel(ctx)
	for _, l := range s.listeners {
		s.logf("listening on %s, host key %s", l.Addr(), s.Fingerprint())
		s.wg.Add(1)
		go s.acceptLoop(l)
	}
	go func() {
		<-s.ctx.Done()
		s.Close()
	}()
	return s, nil
}

// CheckListen checks --lifeline-listen's addresses as the server will
// take them: IP addresses, with or without a port.
func CheckListen(listen []string) error {
	_, err := listenAddrs(listen, DefaultPort)
	return err
}

// listenAddrs turns Options.Listen into "host:port" addresses for
// net.Listen. A bare ":port"-less entry ("10.0.0.5", "::1", "[::1]") gets
// port; an empty list means ":port", which Go opens as one dual-stack
// IPv6 socket accepting IPv4 too (or IPv4 alone when IPv6 is off).
func listenAddrs(listen []string, port int) ([]string, error) {
	p := strconv.Itoa(port)
	if len(listen) == 0 {
		return []string{":" + p}, nil
	}
	var out []string
	for _, a := range listen {
		if a == "" {
			return nil, errors.New("lifeline: empty listen address")
		}
		if _, _, err := net.SplitHostPort(a); err == nil {
			out = append(out, a)
			continue
		}
		host := a
		if strings.HasPrefix(a, "[") && strings.HasSuffix(a, "]") {
			host = a[1 : len(a)-1]
		}
		if strings.ContainsAny(host, "[]") {
			return nil, fmt.Errorf("lifeline: bad listen address %q", a)
		}
		out = append(out, net.JoinHostPort(host, p))
	}
	for _, a := range out {
		if host, _, _ := net.SplitHostPort(a); host != "" {
			if _, err := netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("lifeline: listen address %q: an IP address, not a name", a)
			}
		}
	}
	return out, nil
}

// listenTCP listens on "IP:port" (or ":port"). IP addresses only:
// net.Listen would bring in Go's DNS resolver, some 220 KB of binary, for
// names nobody gives here.
func listenTCP(a string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return nil, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: bad port", a)
	}
	ta := &net.TCPAddr{Port: int(p)}
	if host != "" {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("listen address %q: not an IP address", a)
		}
		ta = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p)))
	}
	return net.ListenTCP("tcp", ta)
}

// serverConfig accepts public keys only. With PasswordCallback and
// KeyboardInteractiveCallback nil, x/crypto/ssh neither offers those
// methods nor has anything to call when a client tries them anyway. The
// version string is x/crypto's default and there is no banner: nothing
// tells a peer before login that a swap is running.
func (s *Server) serverConfig() *ssh.ServerConfig {
	return &ssh.ServerConfig{
		PublicKeyCallback:         s.checkKey,
		VerifiedPublicKeyCallback: s.keyVerified,
		AuthLogCallback:           s.authLog,
		MaxAuthTries:              s.lim.authTries,
	}
}

// userOf is the user name a client sent, bounded for the log.
func userOf(conn ssh.ConnMetadata) string { return clip(conn.User(), maxLogName) }

// permFingerprint carries the accepted key's fingerprint to the session log.
const permFingerprint = "lifeline-key"

// checkKey is asked about every key a client offers (x/crypto caches the
// answer per connection and checks the signature itself afterwards). It
// compares the whole wire form against every authorized key without
// stopping early, so the time taken says nothing about which bytes
// matched.
func (s *Server) checkKey(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	offered := key.Marshal()
	match := 0
	for _, k := range s.opts.AuthorizedKeys {
		match |= subtle.ConstantTimeCompare(offered, k.Marshal())
	}
	if match != 1 {
		s.noisef("refused %s key %s for %q from %s: not an authorized key", key.Type(), ssh.FingerprintSHA256(key), userOf(conn), conn.RemoteAddr())
		return nil, errors.New("lifeline: key not authorized")
	}
	return &ssh.Permissions{Extensions: map[string]string{permFingerprint: key.Type() + " " + ssh.FingerprintSHA256(key)}}, nil
}

// keyVerified runs once the client has proved it holds the private key.
func (s *Server) keyVerified(conn ssh.ConnMetadata, key ssh.PublicKey, perms *ssh.Permissions, _ string) (*ssh.Permissions, error) {
	s.logf("accepted %s key %s for %q from %s", key.Type(), ssh.FingerprintSHA256(key), userOf(conn), conn.RemoteAddr())
	return perms, nil
}

// authLog records the attempts no callback sees: passwords,
// keyboard-interactive and anything else a client tries.
func (s *Server) authLog(conn ssh.ConnMetadata, method string, err error) {
	switch method {
	case "none", "publickey":
		return // "none" is every client's opening probe; keys are logged above
	}
	if err != nil {
		s.noisef("refused %s authentication for %q from %s: only public keys are accepted", clip(method, maxLogName), userOf(conn), conn.RemoteAddr())
	}
}

// Fingerprint is the host key's fingerprint as `ssh-keygen -lf` prints it
// ("SHA256:" and unpadded base64), to compare with what a client shows.
func (s *Server) Fingerprint() string { return ssh.FingerprintSHA256(s.hostKey.PublicKey()) }

// HostKey is the public host key (ssh.MarshalAuthorizedKey gives the
// "ssh-ed25519 AAAA..." form for a known_hosts line).
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// Addrs are the addresses actually listened on (with the real port when
// an entry asked for port 0).
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Close stops listening, drops every connection (ending its sessions) and
// waits for the sessions' shells to return, for at most 10 s: a
// shell that ignores its context must not hold up the end of a run.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		for _, l := range s.listeners {
			l.Close()
		}
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()

		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		select {
		case <-done:
			s.logf("stopped")
		case <-time.After(closeWaitSessions):
			s.closeErr = fmt.Errorf("lifeline: sessions still running %v after close", closeWaitSessions)
			s.logf("%v", s.closeErr)
		}
	})
	return s.closeErr
}

func (s *Server) acceptLoop(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: say so, breathe, keep the line open.
			s.logf("accept on %s: %v", l.Addr(), err)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		src := sourceOf(c.RemoteAddr())
		if !s.fromAllowed(src) {
			s.noisef("refused connection from %s: sshd's policy for root does not let it in", c.RemoteAddr())
			c.Close()
			continue
		}
		if why := s.gate.admit(src); why != "" {
			s.noisef("dropped connection from %s: %s", c.RemoteAddr(), why)
			c.Close()
			continue
		}
		if !s.track(c) {
			s.gate.release(src)
			c.Close()
			return
		}
		s.wg.Add(1)
		go s.serveConn(c, src)
	}
}

// track registers a connection so Close can drop it; false once closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = true
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) serveConn(c net.Conn, src string) {
	defer s.wg.Done()
	defer s.untrack(c)

	// LoginGraceTime: the handshake and authentication together.
	c.SetDeadline(time.Now().Add(s.lim.grace))
	sconn, chans, reqs, err := ssh.NewServerConn(c, s.config)
	s.gate.release(src)
	if err != nil {
		if s.ctx.Err() == nil {
			s.noisef("connection from %s closed before login: %s", c.RemoteAddr(), clip(err.Error(), maxLogName*2))
		}
		return
	}
	c.SetDeadline(time.Time{})
	defer sconn.Close()
	go ssh.DiscardRequests(reqs)

	who := fmt.Sprintf("%q from %s (%s)", clip(sconn.User(), maxLogName), sconn.RemoteAddr(), sconn.Permissions.Extensions[permFingerprint])
	var open atomic.Int32 // this connection's sessions
	done := make(chan struct{})
	defer close(done)
	go s.keepAlive(sconn, &open, done, who)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "the lifeline offers sessions only")
			continue
		}
		// MaxSessions, per connection and in all: each may hold a PTY.
		// The total is taken before it is checked: connections race for it.
		if all := s.open.Add(1); open.Load() >= int32(s.lim.connSessions) || all > int32(s.lim.sessions) {
			s.open.Add(-1)
			s.logf("%s: session refused: %d open on this connection, %d in all (at most %d, %d)",
				who, open.Load(), all-1, s.lim.connSessions, s.lim.sessions)
			nc.Reject(ssh.ResourceShortage, "too many sessions")
			continue
		}
		open.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.open.Add(-1)
			defer open.Add(-1)
			s.serveSession(who, nc)
		}()
	}
	s.logf("%s disconnected", who)
}

// keepAlive asks the client for an answer every alive interval (sshd's
// ClientAliveInterval) and hangs up after aliveMax unanswered ones, or
// when the login held no session for unused intervals: a dead or idle
// client must not keep its connection for ever.
func (s *Server) keepAlive(sconn *ssh.ServerConn, open *atomic.Int32, done <-chan struct{}, who string) {
	t := time.NewTicker(s.lim.alive)
	defer t.Stop()
	answered := make(chan struct{}, 1)
	answered <- struct{}{}
	missed, unused := 0, 0
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		select {
		case <-answered:
			missed = 0
			go func() {
				sconn.SendRequest("keepalive@openssh.com", true, nil)
				answered <- struct{}{}
			}()
		default:
			missed++
		}
		if unused++; open.Load() > 0 {
			unused = 0
		}
		why := "no answer to keepalives"
		if missed < s.lim.aliveMax {
			if why = "no session for a while"; unused < s.lim.unused {
				continue
			}
		}
		s.logf("%s: closed: %s", who, why)
		sconn.Close()
		return
	}
}

// logf writes one line, at most maxLogLine bytes; lines from concurrent
// sessions never interleave.
func (s *Server) logf(format string, args ...any) { s.write(false, format, args) }

// noisef is logf for what any peer can cause before login: rate-limited.
func (s *Server) noisef(format string, args ...any) { s.write(true, format, args) }

func (s *Server) write(noisy bool, format string, args []any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if noisy && !s.logAllowed() {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if s.suppressed > 0 {
		msg = fmt.Sprintf("(%d lines about unauthenticated peers left out) %s", s.suppressed, msg)
		s.suppressed = 0
	}
	io.WriteString(s.log, s.now().UTC().Format(time.RFC3339)+" lifeline: "+clip(msg, maxLogLine)+"\n")
}
