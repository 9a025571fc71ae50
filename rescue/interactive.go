package rescue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// lineSource is where the interactive loop gets its lines.
type lineSource interface {
	readLine(prompt string) (string, error)
}

// plainLines reads lines without editing (interactive on a pipe: sh -i).
type plainLines struct {
	r   *bufio.Reader
	out io.Writer
}

func (p *plainLines) readLine(prompt string) (string, error) {
	io.WriteString(p.out, prompt)
	line, err := p.r.ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// parserInput feeds the parser one line per Read, prompting with PS1 or,
// inside an unfinished command, "> ".
type parserInput struct {
	src     lineSource
	parser  *syntax.Parser
	prompt  func() string
	hist    *history
	stderr  io.Writer
	pending string
}

func (p *parserInput) Read(b []byte) (int, error) {
	if p.pending == "" {
		prompt := p.prompt()
		if p.parser.Incomplete() {
			prompt = "> "
		}
		line, err := p.src.readLine(prompt)
		if err != nil {
			return 0, err
		}
		if err := p.hist.add(line); err != nil {
			fmt.Fprintf(p.stderr, "sh: history: %s\n", errText(err))
		}
		p.pending = line + "\n"
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

// interactive is the prompt loop. On a terminal the shell owns Ctrl-C: at
// the prompt it clears the line, while a command runs it cancels that
// command only; SIGTERM and SIGHUP end the shell.
func (s *shell) interactive(ctx context.Context, params []string) (err error) {
	stdin := s.env.Stdin
	tty := openTerminal(stdin)
	defer tty.restore()

	r, err := s.newRunner(stdin, params, true)
	if err != nil {
		return err
	}
	hist := loadHistory(s.historyFile())
	var src lineSource
	if tty != nil || s.opts.Interactive {
		src = newEditor(stdin, s.env.Stdout, tty, hist)
	} else {
		src = &plainLines{r: bufio.NewReader(stdin), out: s.env.Stderr}
	}
	prompt := s.opts.Prompt
	if prompt == nil {
		prompt = func() string { return defaultPrompt }
	}

	base := ctx
	var interrupts chan os.Signal
	if tty != nil {
		// The dispatcher's context is cancelled by the first Ctrl-C; at a
		// terminal that Ctrl-C was meant for one command, not the shell.
		base = context.WithoutCancel(ctx)
		interrupts = make(chan os.Signal, 1)
		signal.Notify(interrupts, os.Interrupt)
		defer signal.Stop(interrupts)
		quit := make(chan os.Signal, 1)
		signal.Notify(quit, syscall.SIGTERM, syscall.SIGHUP)
		defer signal.Stop(quit)
		var cancel context.CancelFunc
		base, cancel = context.WithCancel(base)
		defer cancel()
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-quit:
				cancel()
			case <-done:
			}
		}()
	}

	var last error
	for {
		parser := syntax.NewParser()
		in := &parserInput{src: src, parser: parser, prompt: prompt, hist: hist, stderr: s.env.Stderr}
		perr := parser.Interactive(in, func(stmts []*syntax.Stmt) bool {
			if parser.Incomplete() {
				return true
			}
			for _, st := range stmts {
				last = s.runInteractive(base, r, st, interrupts)
				if r.Exited() || base.Err() != nil {
					return false
				}
			}
			return true
		})
		switch {
		case r.Exited():
			return exitError(last)
		case base.Err() != nil:
			return exitError(last)
		case errors.Is(perr, errInterrupt):
			continue
		case perr == nil || errors.Is(perr, io.EOF):
			fmt.Fprintln(s.env.Stderr, "exit")
			return exitError(last)
		default:
			if !isParseError(perr) {
				return perr // the terminal went away
			}
			fmt.Fprintf(s.env.Stderr, "sh: %v\n", perr)
			last = interp.ExitStatus(2)
		}
	}
}

// isParseError tells syntax errors (print and prompt again) from read
// errors (end the shell).
func isParseError(err error) bool {
	var pe syntax.ParseError
	var qe syntax.QuoteError
	var le syntax.LangError
	return errors.As(err, &pe) || errors.As(err, &qe) || errors.As(err, &le)
}

// runInteractive runs one statement; a Ctrl-C while it runs cancels it.
// Errors that are not exit statuses are printed, not fatal: a rescue
// shell keeps going.
func (s *shell) runInteractive(ctx context.Context, r *interp.Runner, st *syntax.Stmt, interrupts chan os.Signal) error {
	cmdCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if interrupts != nil {
		select { // a Ctrl-C from before this command is not for it
		case <-interrupts:
		default:
		}
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-interrupts:
				cancel()
			case <-done:
			}
		}()
	}
	err := r.Run(cmdCtx, st)
	if _, ok := interp.IsExitStatus(err); err != nil && !ok {
		if cmdCtx.Err() != nil && ctx.Err() == nil {
			fmt.Fprintln(s.env.Stderr)
			return interp.ExitStatus(130)
		}
		fmt.Fprintf(s.env.Stderr, "sh: %v\n", err)
		return interp.ExitStatus(1)
	}
	return err
}

// historyFile is $HISTFILE from the shell's starting environment.
func (s *shell) historyFile() string {
	environ := s.opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	file := ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "HISTFILE="); ok {
			file = v
		}
	}
	return file
}
