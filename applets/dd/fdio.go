package dd

import (
	"io"
	"runtime"

	"golang.org/x/sys/unix"
)

// end is one side of the copy: a file descriptor, or, when the applet
// runs in-process with streams that are not files (the rescue shell's
// pipes, tests), a plain reader or writer that cannot seek.
type end struct {
	fd   int // -1 without one
	r    io.Reader
	w    io.Writer
	name string // for messages: the path, "standard input" or "standard output"
	// bad marks a standard stream that was closed at start: every call
	// fails with EBADF, as it would for GNU dd.
	bad bool
	// own is true for descriptors opened here (if=, of=) and for the
	// standard ones when dd is the process: closed at the end, where a
	// failure is reported as GNU does.
	own bool
}

// read is one read(2), restarted on EINTR.
func (e *end) read(p []byte) (int, error) {
	switch {
	case e.bad:
		return 0, unix.EBADF
	case e.fd >= 0:
		for {
			n, err := unix.Read(e.fd, p)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return 0, err
			}
			return n, nil
		}
	case e.r != nil:
		for {
			n, err := e.r.Read(p)
			if n > 0 || err != nil {
				if err == io.EOF {
					err = nil
				}
				return n, err
			}
		}
	}
	return 0, unix.EBADF
}

// write is one write(2), restarted on EINTR; it may write less than p.
func (e *end) write(p []byte) (int, error) {
	switch {
	case e.bad:
		return 0, unix.EBADF
	case e.fd >= 0:
		for {
			n, err := unix.Write(e.fd, p)
			if err == unix.EINTR {
				continue
			}
			if n < 0 {
				n = 0
			}
			return n, err
		}
	case e.w != nil:
		return e.w.Write(p)
	}
	return 0, unix.EBADF
}

func (e *end) seek(off int64, whence int) (int64, error) {
	if e.bad {
		return -1, unix.EBADF
	}
	if e.fd < 0 {
		return -1, unix.ESPIPE
	}
	return unix.Seek(e.fd, off, whence)
}

func (e *end) fstat() (unix.Stat_t, error) {
	var st unix.Stat_t
	if e.bad {
		return st, unix.EBADF
	}
	if e.fd < 0 {
		st.Mode = unix.S_IFIFO
		return st, nil
	}
	err := unix.Fstat(e.fd, &st)
	return st, err
}

func (e *end) close() error {
	if e.bad {
		return unix.EBADF
	}
	if !e.own || e.fd < 0 {
		return nil
	}
	fd := e.fd
	e.fd = -1
	err := unix.Close(fd)
	if err == unix.EINTR {
		err = nil // the descriptor is gone either way on Linux
	}
	return err
}

func (e *end) setFlags(on, off int) error {
	if e.fd < 0 {
		return nil
	}
	fl, err := unix.FcntlInt(uintptr(e.fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if nfl := fl&^off | on; nfl != fl {
		_, err = unix.FcntlInt(uintptr(e.fd), unix.F_SETFL, nfl)
	}
	return err
}

// buffer is a page-aligned anonymous mapping (O_DIRECT needs aligned
// buffers); unlike make, a size the kernel refuses comes back as an
// error, as malloc's NULL does for GNU dd, instead of killing the
// runtime.
func buffer(n int64) ([]byte, error) {
	if n <= 0 || n != int64(int(n)) {
		return nil, unix.ENOMEM
	}
	return unix.Mmap(-1, 0, int(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

func freeBuffer(b []byte) {
	if b != nil {
		unix.Munmap(b)
	}
}

// quietSignals are blocked on the thread that reads and writes: a signal
// arriving during read(2) from /dev/zero, /dev/urandom or a terminal
// makes the kernel return a short count, and the Go runtime sends them
// unasked (SIGURG to preempt, SIGPROF, SIGCHLD). GNU dd receives none
// of these, so its reads of character devices are always full. Faults
// stay deliverable; process-directed signals (SIGINT, SIGUSR1) go to
// the runtime's other threads and reach the watcher.
func quietSignals() unix.Sigset_t {
	var set unix.Sigset_t
	for sig := 1; sig < 32; sig++ {
		switch unix.Signal(sig) {
		case unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGSYS, unix.SIGABRT:
			continue
		}
		set.Val[(sig-1)/64] |= 1 << ((sig - 1) % 64)
	}
	return set
}

// onQuietThread runs fn on an OS thread of its own with quietSignals
// blocked, and waits for it.
func onQuietThread(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		set := quietSignals()
		var old unix.Sigset_t
		if unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old) == nil {
			defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
		}
		fn()
	}()
	<-done
}
