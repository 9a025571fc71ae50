package sandbox

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// console is the server's /dev/console: a pty whose slave is bind-mounted
// there (as LXC does), so init and its children get a real terminal while
// the host keeps what they print. The host side drains the master all the
// time: a full pty would block every writer in the server.
type console struct {
	master, slave *os.File
	path          string // the slave, /dev/pts/N on the host
	out           io.Writer

	mu   sync.Mutex
	tail []byte
	done chan struct{}
}

const consoleTail = 16 << 10

func openConsole(out io.Writer) (*console, error) {
	// O_NONBLOCK puts the master in Go's poller, so Close ends the reader.
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("sandbox: console pty: %w", err)
	}
	var n int
	var ioctlErr error
	rc, err := m.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) {
			if ioctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioctlErr != nil {
				return
			}
			n, ioctlErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		})
	}
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("sandbox: console pty: unlockpt/ptsname: %w", err)
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	// Holding the slave open keeps the master readable (no EIO) while no
	// process in the server has the console open.
	s, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("sandbox: console pty: %w", err)
	}
	c := &console{master: m, slave: s, path: path, out: out, done: make(chan struct{})}
	go c.drain()
	return c, nil
}

func (c *console) drain() {
	defer close(c.done)
	buf := make([]byte, 4096)
	for {
		n, err := c.master.Read(buf)
		if n > 0 {
			// The tty turns \n into \r\n (init sets the console sane).
			out := bytes.ReplaceAll(buf[:n], []byte("\r"), nil)
			c.out.Write(out)
			c.mu.Lock()
			c.tail = append(c.tail, out...)
			if len(c.tail) > consoleTail {
				c.tail = append([]byte(nil), c.tail[len(c.tail)-consoleTail:]...)
			}
			c.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Tail is the last output the server printed on its console.
func (c *console) Tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.tail)
}

func (c *console) Close() error {
	c.slave.Close()
	err := c.master.Close()
	<-c.done
	return err
}
