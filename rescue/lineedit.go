package rescue

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// errInterrupt is Ctrl-C at the prompt: drop the line (and any unfinished
// multi-line command) and prompt again.
var errInterrupt = errors.New("interrupted")

// editor reads lines with emacs-style editing from a VT100-ish terminal:
// what ssh -t gives. It reads one byte at a time so that nothing typed
// after Enter is swallowed: that belongs to the command being started.
type editor struct {
	in   io.Reader
	out  io.Writer
	tty  *terminal // nil: the other end is a terminal we do not own (SSH channel)
	hist *history

	buf  []rune
	pos  int
	one  [1]byte
	dead bool // the input ended
}

func newEditor(in io.Reader, out io.Writer, tty *terminal, hist *history) *editor {
	return &editor{in: in, out: out, tty: tty, hist: hist}
}

// readByte reads exactly one byte; EINTR (a signal at the prompt) is retried.
func (e *editor) readByte() (byte, error) {
	for {
		n, err := e.in.Read(e.one[:])
		if n == 1 {
			return e.one[0], nil
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err == nil {
			continue
		}
		return 0, err
	}
}

func (e *editor) readRune(first byte) (rune, error) {
	if first < utf8.RuneSelf {
		return rune(first), nil
	}
	b := []byte{first}
	for !utf8.FullRune(b) && len(b) < utf8.UTFMax {
		c, err := e.readByte()
		if err != nil {
			return 0, err
		}
		b = append(b, c)
	}
	r, _ := utf8.DecodeRune(b)
	return r, nil
}

// readLine shows prompt and returns the line typed, without the newline.
// It returns io.EOF for Ctrl-D on an empty line or the end of input, and
// errInterrupt for Ctrl-C. The terminal is in raw mode only inside.
func (e *editor) readLine(prompt string) (line string, err error) {
	if e.dead {
		return "", io.EOF
	}
	if e.tty != nil {
		restore, err := e.tty.raw()
		if err != nil {
			return "", err
		}
		defer restore()
	}
	e.buf, e.pos = e.buf[:0], 0
	histPos := e.hist.len()
	draft := ""
	e.redraw(prompt)
	for {
		c, err := e.readByte()
		if err != nil {
			e.dead = true
			if len(e.buf) > 0 {
				io.WriteString(e.out, "\r\n")
				return string(e.buf), nil
			}
			return "", io.EOF
		}
		switch c {
		case '\r', '\n':
			io.WriteString(e.out, "\r\n")
			return string(e.buf), nil
		case 0x01: // Ctrl-A
			e.pos = 0
		case 0x05: // Ctrl-E
			e.pos = len(e.buf)
		case 0x02: // Ctrl-B
			e.left()
		case 0x06: // Ctrl-F
			e.right()
		case 0x7f, 0x08: // Backspace
			if e.pos > 0 {
				e.buf = append(e.buf[:e.pos-1], e.buf[e.pos:]...)
				e.pos--
			}
		case 0x15: // Ctrl-U: kill to the start
			e.buf = append(e.buf[:0], e.buf[e.pos:]...)
			e.pos = 0
		case 0x0b: // Ctrl-K: kill to the end
			e.buf = e.buf[:e.pos]
		case 0x17: // Ctrl-W: kill the word before the cursor
			start := e.pos
			for start > 0 && unicode.IsSpace(e.buf[start-1]) {
				start--
			}
			for start > 0 && !unicode.IsSpace(e.buf[start-1]) {
				start--
			}
			e.buf = append(e.buf[:start], e.buf[e.pos:]...)
			e.pos = start
		case 0x03: // Ctrl-C
			io.WriteString(e.out, "^C\r\n")
			return "", errInterrupt
		case 0x04: // Ctrl-D
			if len(e.buf) == 0 {
				io.WriteString(e.out, "\r\n")
				return "", io.EOF
			}
			e.deleteAtCursor()
		case 0x0c: // Ctrl-L
			io.WriteString(e.out, "\x1b[H\x1b[2J")
		case 0x10: // Ctrl-P
			histPos, draft = e.historyMove(histPos, -1, draft)
		case 0x0e: // Ctrl-N
			histPos, draft = e.historyMove(histPos, +1, draft)
		case 0x1b:
			switch e.escape() {
			case "A":
				histPos, draft = e.historyMove(histPos, -1, draft)
			case "B":
				histPos, draft = e.historyMove(histPos, +1, draft)
			case "C":
				e.right()
			case "D":
				e.left()
			case "H", "1~", "7~":
				e.pos = 0
			case "F", "4~", "8~":
				e.pos = len(e.buf)
			case "3~":
				e.deleteAtCursor()
			}
		case '\t':
			// no completion; a tab in a command line is a separator
			e.insert(' ')
		default:
			r, err := e.readRune(c)
			if err != nil {
				continue
			}
			if unicode.IsPrint(r) {
				e.insert(r)
			}
		}
		e.redraw(prompt)
	}
}

func (e *editor) insert(r rune) {
	e.buf = append(e.buf, 0)
	copy(e.buf[e.pos+1:], e.buf[e.pos:])
	e.buf[e.pos] = r
	e.pos++
}

func (e *editor) left() {
	if e.pos > 0 {
		e.pos--
	}
}

func (e *editor) right() {
	if e.pos < len(e.buf) {
		e.pos++
	}
}

func (e *editor) deleteAtCursor() {
	if e.pos < len(e.buf) {
		e.buf = append(e.buf[:e.pos], e.buf[e.pos+1:]...)
	}
}

// historyMove steps through history; draft keeps the line being typed
// so that coming back down restores it.
func (e *editor) historyMove(pos, step int, draft string) (int, string) {
	next := pos + step
	if next < 0 || next > e.hist.len() {
		return pos, draft
	}
	if pos == e.hist.len() {
		draft = string(e.buf)
	}
	if next == e.hist.len() {
		e.buf = []rune(draft)
	} else {
		e.buf = []rune(e.hist.at(next))
	}
	e.pos = len(e.buf)
	return next, draft
}

// escape reads the rest of an escape sequence after ESC and returns its
// distinctive part: "A" for ESC [ A, "3~" for ESC [ 3 ~, "H" for ESC O H.
func (e *editor) escape() string {
	c, err := e.readByte()
	if err != nil || (c != '[' && c != 'O') {
		return ""
	}
	var seq []byte
	for len(seq) < 16 {
		c, err := e.readByte()
		if err != nil {
			return ""
		}
		seq = append(seq, c)
		if c >= 0x40 && c <= 0x7e {
			break
		}
	}
	s := string(seq)
	// Drop modifiers (ESC [ 1 ; 5 C is Ctrl-Right): treat as the plain key.
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[len(s)-1:]
	}
	return s
}

// redraw repaints the line: carriage return, prompt, text, clear to the
// end, then the cursor back to its place.
func (e *editor) redraw(prompt string) {
	var b strings.Builder
	b.WriteString("\r")
	b.WriteString(prompt)
	b.WriteString(string(e.buf))
	b.WriteString("\x1b[K")
	if back := len(e.buf) - e.pos; back > 0 {
		fmt.Fprintf(&b, "\x1b[%dD", back)
	}
	io.WriteString(e.out, b.String())
}

// terminal is a tty whose mode the shell switches between raw (at the
// prompt) and how it found it (while commands run).
type terminal struct {
	fd    int
	saved unix.Termios
}

// openTerminal returns the terminal behind f, or nil when f is not one.
func openTerminal(r io.Reader) *terminal {
	if !isTerminal(r) {
		return nil
	}
	fd := int(r.(*os.File).Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil
	}
	return &terminal{fd: fd, saved: *t}
}

// raw puts the terminal in raw mode (no echo, no line discipline, no
// signals from Ctrl-C: the editor handles the keys) and returns the undo.
// Output processing stays on, so "\n" still moves to a new line.
func (t *terminal) raw() (restore func(), err error) {
	old, err := unix.IoctlGetTermios(t.fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("tcgetattr: %w", err)
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(t.fd, unix.TCSETS, &raw); err != nil {
		return nil, fmt.Errorf("tcsetattr raw: %w", err)
	}
	return func() { unix.IoctlSetTermios(t.fd, unix.TCSETS, old) }, nil
}

// restore puts back the mode the shell started with (on exit and panic).
func (t *terminal) restore() {
	if t != nil {
		unix.IoctlSetTermios(t.fd, unix.TCSETS, &t.saved)
	}
}

// history is the list of lines entered, oldest first, appended to
// $HISTFILE when that is set.
type history struct {
	lines []string
	file  string
}

const historyMax = 1000

func loadHistory(file string) *history {
	h := &history{file: file}
	if file == "" {
		return h
	}
	if data, err := os.ReadFile(file); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.TrimSpace(l) != "" {
				h.lines = append(h.lines, l)
			}
		}
		if len(h.lines) > historyMax {
			h.lines = h.lines[len(h.lines)-historyMax:]
		}
	}
	return h
}

func (h *history) len() int        { return len(h.lines) }
func (h *history) at(i int) string { return h.lines[i] }

// add records a line: not blank ones, not a repeat of the last.
func (h *history) add(line string) error {
	if strings.TrimSpace(line) == "" || (len(h.lines) > 0 && h.lines[len(h.lines)-1] == line) {
		return nil
	}
	h.lines = append(h.lines, line)
	if len(h.lines) > historyMax {
		h.lines = h.lines[1:]
	}
	if h.file == "" {
		return nil
	}
	f, err := os.OpenFile(h.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, line+"\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
