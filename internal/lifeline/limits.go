package lifeline

import (
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"
)

// limits bound what peers can hold, as sshd's MaxStartups,
// PerSourceMaxStartups, LoginGraceTime, MaxAuthTries, MaxSessions and
// ClientAlive* do: one address flooding the port must not lock out the
// admin coming from another, and a logged-in client must not pile up
// sessions and terminals. Zero fields get the defaults (Start); tests set
// small ones.
type limits struct {
	perSource int // unauthenticated connections from one address
	// start:rate:full: from start unauthenticated connections on, a new
	// one is dropped with a probability rising linearly from rate % to
	// 100 % at full.
	start, rate, full int
	grace             time.Duration // handshake and authentication
	authTries         int
	connSessions      int // sessions on one connection
	sessions          int // sessions of all connections
	alive             time.Duration
	aliveMax          int // unanswered keepalives before hanging up
	unused            int // keepalive intervals a login may hold no session
	logBurst          int // unauthenticated events logged at once
	logPerSec         int // and then each second
}

var defaultLimits = limits{
	perSource: 3, start: 10, rate: 30, full: 60,
	grace: 20 * time.Second, authTries: 6,
	connSessions: 4, sessions: 16,
	alive: 15 * time.Second, aliveMax: 3, unused: 40, // 10 minutes
	logBurst: 20, logPerSec: 2,
}

// withDefaults fills the zero fields of l.
func (l limits) withDefaults() limits {
	d := defaultLimits
	for _, f := range []struct{ v, d *int }{{&l.perSource, &d.perSource}, {&l.start, &d.start}, {&l.rate, &d.rate},
		{&l.full, &d.full}, {&l.authTries, &d.authTries}, {&l.connSessions, &d.connSessions}, {&l.sessions, &d.sessions},
		{&l.aliveMax, &d.aliveMax}, {&l.unused, &d.unused}, {&l.logBurst, &d.logBurst}, {&l.logPerSec, &d.logPerSec}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if l.grace == 0 {
		l.grace = d.grace
	}
	if l.alive == 0 {
		l.alive = d.alive
	}
	return l
}

// gate counts unauthenticated connections, in all and per source address.
type gate struct {
	mu    sync.Mutex
	l     *limits
	total int
	src   map[string]int
}

// admit takes a slot for a new connection from src, or says why not.
func (g *gate) admit(src string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.l
	switch {
	case g.src[src] >= l.perSource:
		return strconv.Itoa(g.src[src]) + " unauthenticated connections from this address"
	case g.total >= l.full:
		return strconv.Itoa(g.total) + " unauthenticated connections in all"
	case g.total >= l.start && rand.IntN(100) < l.rate+(100-l.rate)*(g.total-l.start)/(l.full-l.start):
		return "random early drop at " + strconv.Itoa(g.total) + " unauthenticated connections"
	}
	g.total++
	g.src[src]++
	return ""
}

// release gives back the slot of a connection that logged in or left.
func (g *gate) release(src string) {
	g.mu.Lock()
	g.total--
	if g.src[src]--; g.src[src] <= 0 {
		delete(g.src, src)
	}
	g.mu.Unlock()
}

// sourceOf is the address a connection came from, without its port.
func sourceOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	return a.String()
}

// logBucket lets through logBurst unauthenticated events, then logPerSec
// a second: a flood of refused keys must not fill the engine's tmpfs.
// Call with logMu held.
func (s *Server) logAllowed() bool {
	now := s.now()
	if s.tokens < float64(s.lim.logBurst) {
		s.tokens += now.Sub(s.tokensAt).Seconds() * float64(s.lim.logPerSec)
		s.tokens = min(s.tokens, float64(s.lim.logBurst))
	}
	s.tokensAt = now
	if s.tokens < 1 {
		s.suppressed++
		return false
	}
	s.tokens--
	return true
}

// maxLogLine bounds one log line; maxLogName one name quoted in it (a
// client may send a user name of 60 KiB).
const (
	maxLogLine = 400
	maxLogName = 64
)

// clip shortens s to at most n bytes.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "...(" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}
