package lifeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rootswap/rootswap/internal/cli"
)

// ptyFlushWait bounds how long output still buffered in the PTY is
// forwarded after the shell returned: a background program that kept the
// terminal open must not hold the session forever.
const ptyFlushWait = 2 * time.Second

// session is one "session" channel: at most one pty, then one shell or
// exec, whose exit status ends it.
type session struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	s       *Server
	who     string
	ch      ssh.Channel
	term    string
	pty     *pty
	started bool
	// startArgs is set by a shell or exec request until the shell starts.
	startArgs *[]string
	done      chan struct{} // closed when the shell goroutine has finished
	ptyOut    chan struct{} // closed when terminal output has been forwarded
}

// RFC 4254 request payloads.
type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

type windowChange struct {
	Cols, Rows    uint32
	Width, Height uint32
}

type envRequest struct{ Name, Value string }

type execRequest struct{ Command string }

type exitStatus struct{ Status uint32 }

func (s *Server) serveSession(who string, nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		s.logf("%s: accept session: %v", who, err)
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	sess := &session{s: s, who: who, ch: ch, done: make(chan struct{})}
	for req := range reqs {
		ok := sess.handle(req)
		if req.WantReply {
			req.Reply(ok, nil)
		}
		// Only after the reply: a quick shell could otherwise close the
		// channel before the client heard its exec was accepted.
		if ok && sess.startArgs != nil {
			sess.start(ctx, *sess.startArgs)
			sess.startArgs = nil
		}
	}
	// The channel is gone: the shell ended it, the client hung up, or
	// Close dropped the connection. Make a still running shell return:
	// cancel its context and hang up its terminal.
	cancel()
	if sess.pty != nil {
		sess.pty.master.Close()
	}
	ch.Close()
	if sess.started {
		<-sess.done
	}
	if sess.pty != nil {
		sess.pty.close()
	}
}

// handle answers one channel request; the return value is the reply.
// shell and exec set startArgs; the shell starts once the reply is out.
func (sess *session) handle(req *ssh.Request) bool {
	s := sess.s
	switch req.Type {
	case "pty-req":
		var r ptyRequest
		if sess.started || sess.pty != nil || ssh.Unmarshal(req.Payload, &r) != nil {
			return false
		}
		p, err := openPTY(s.opts.ptmx)
		if err != nil {
			s.logf("%s: no terminal: %v", sess.who, err)
			return false
		}
		if err := p.setWinsize(r.Cols, r.Rows, r.Width, r.Height); err != nil {
			s.logf("%s: %v", sess.who, err)
		}
		sess.pty = p
		sess.term = r.Term
		return true
	case "window-change":
		var r windowChange
		if sess.pty == nil || ssh.Unmarshal(req.Payload, &r) != nil {
			return false
		}
		if err := sess.pty.setWinsize(r.Cols, r.Rows, r.Width, r.Height); err != nil {
			s.logf("%s: %v", sess.who, err)
			return false
		}
		return true
	case "env":
		// TERM only: anything else (LD_PRELOAD, PATH) would change how
		// the shell runs for a client that only holds a key.
		var r envRequest
		if sess.started || ssh.Unmarshal(req.Payload, &r) != nil || r.Name != "TERM" {
			return false
		}
		sess.term = r.Value
		return true
	case "shell":
		if sess.started {
			return false
		}
		s.logf("%s: shell (pty %v)", sess.who, sess.pty != nil)
		sess.started, sess.startArgs = true, &[]string{}
		return true
	case "exec":
		var r execRequest
		if sess.started || ssh.Unmarshal(req.Payload, &r) != nil {
			return false
		}
		s.logf("%s: exec %q (pty %v)", sess.who, r.Command, sess.pty != nil)
		sess.started, sess.startArgs = true, &[]string{"-c", r.Command}
		return true
	default:
		// subsystem (sftp), x11-req, auth-agent-req, signal: not offered.
		return false
	}
}

// start runs the shell in a goroutine of this process: the rescue shell
// runs applets in-process and must work when neither root has /bin.
func (sess *session) start(ctx context.Context, args []string) {
	env := sess.env()
	if sess.pty != nil {
		// Terminal output to the client; client input to the terminal
		// (it ends when the master is closed).
		sess.ptyOut = make(chan struct{})
		sess.s.wg.Add(2)
		go func() {
			defer sess.s.wg.Done()
			defer close(sess.ptyOut)
			io.Copy(sess.ch, sess.pty.master)
		}()
		go func() {
			defer sess.s.wg.Done()
			io.Copy(sess.pty.master, sess.ch)
		}()
	}
	go func() {
		defer close(sess.done)
		status := runShell(ctx, sess.s.opts.Shell, env, args)
		if sess.pty != nil {
			sess.finishPTY()
		}
		sess.s.logf("%s: ended, exit status %d", sess.who, status)
		sess.ch.CloseWrite()
		sess.ch.SendRequest("exit-status", false, ssh.Marshal(exitStatus{status}))
		sess.ch.Close()
	}()
}

// env is the session's copy of the template with its own streams and TERM.
func (sess *session) env() *cli.Env {
	env := *sess.s.opts.Env
	if sess.pty != nil {
		env.Stdin, env.Stdout, env.Stderr = sess.pty.slave, sess.pty.slave, sess.pty.slave
	} else {
		env.Stdin, env.Stdout, env.Stderr = sess.ch, sess.ch, sess.ch.Stderr()
	}
	getenv := env.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	term := sess.term
	env.Getenv = func(name string) string {
		if name == "TERM" {
			return term
		}
		return getenv(name)
	}
	return &env
}

// finishPTY forwards what the shell left in the terminal: closing the last
// slave descriptor makes master reads return EIO once the buffer is empty.
func (sess *session) finishPTY() {
	sess.pty.slave.Close()
	select {
	case <-sess.ptyOut:
	case <-time.After(ptyFlushWait):
		sess.pty.master.SetReadDeadline(time.Now())
		<-sess.ptyOut
	}
}

// runShell runs shell and maps its error to an exit status.
func runShell(ctx context.Context, shell Shell, env *cli.Env, args []string) (status uint32) {
	defer func() {
		// A panic in one session must not take the engine down with it.
		if r := recover(); r != nil {
			fmt.Fprintf(env.Stderr, "lifeline: shell panicked: %v\n", r)
			status = 255
		}
	}()
	err := shell(ctx, env, args)
	var code cli.ExitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return uint32(code)
	case errors.Is(err, cli.ErrUsage):
		fmt.Fprintf(env.Stderr, "%v\n", err)
		return 2
	default:
		fmt.Fprintf(env.Stderr, "%v\n", err)
		return 1
	}
}
