package dd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// stderr is dd's standard error as GNU dd writes its messages: a pending
// progress line is ended first, every message is one write, and a failed
// write is remembered, since GNU exits 1 when stderr could not be written.
type stderr struct {
	w      io.Writer
	prefix string // "dd: " through a link named dd, else "rootswap dd: "
	// progressLen is the length of the progress line drawn with \r,
	// 0 when the cursor is at the start of a line.
	progressLen int
	failed      bool
}

func (s *stderr) write(str string) {
	if _, err := io.WriteString(s.w, str); err != nil {
		s.failed = true
	}
}

// endLine ends a progress line so that what follows starts a line.
func (s *stderr) endLine() {
	if s.progressLen > 0 {
		s.write("\n")
		s.progressLen = 0
	}
}

// errorf writes one message: "dd: text[: strerror]\n".
func (s *stderr) errorf(err error, format string, args ...any) {
	s.endLine()
	msg := s.prefix + fmt.Sprintf(format, args...)
	if err != nil {
		msg += ": " + strerror(err)
	}
	s.write(msg + "\n")
}

// strerror is glibc's text for an errno (Go's, capitalised the same way)
// and the message of any other error.
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		t := errno.Error()
		if t != "" {
			t = strings.ToUpper(t[:1]) + t[1:]
		}
		return t
	}
	return err.Error()
}

// errnoOf is the errno inside err, or 0.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}

// quoteaf quotes a file name as GNU dd's messages do: shell-escaped,
// always quoted.
func quoteaf(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	if !strings.ContainsAny(s, "\"$`\\!") {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// quotef quotes a file name only when the shell would need it, as in
// GNU dd's "X: cannot seek".
func quotef(s string) string {
	if s == "" {
		return "''"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("%+,-./:@_", c) >= 0:
		case (c == '#' || c == '~') && i > 0:
		default:
			return quoteaf(s)
		}
	}
	return s
}

// closedAtStart reports whether standard descriptor fd was closed when
// the process started: the Go runtime then opens /dev/null read-write in
// its place (a shell's 2>/dev/null opens it write-only), where GNU dd
// would get EBADF.
func closedAtStart(fd int) bool {
	var st, null unix.Stat_t
	if unix.Fstat(fd, &st) != nil || unix.Stat(os.DevNull, &null) != nil {
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != null.Rdev {
		return false
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_ACCMODE == unix.O_RDWR
}

// badFD is a standard stream that was closed at start.
type badFD struct{}

func (badFD) Write([]byte) (int, error) { return 0, unix.EBADF }
