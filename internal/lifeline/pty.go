package lifeline

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// devPtmx is the pty multiplexer. After a pivot the engine has moved /dev
// back before the lifeline is needed; until then a PTY request may fail,
// and the client can still run commands without one.
const devPtmx = "/dev/ptmx"

// pty is one pseudo-terminal pair: master stays with the lifeline, slave
// becomes the shell's stdin, stdout and stderr.
type pty struct {
	master *os.File
	slave  *os.File
}

// openPTY allocates a pty pair through ptmx. It refuses a ptmx that lives on
// a disk filesystem: an open device node on either root would pin that
// root and make it impossible to unmount (a static /dev before the real
// /dev is moved back).
func openPTY(ptmx string) (*pty, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(ptmx, &st); err != nil {
		return nil, &os.PathError{Op: "statfs", Path: ptmx, Err: err}
	}
	if st.Type != unix.TMPFS_MAGIC && st.Type != unix.DEVPTS_SUPER_MAGIC {
		return nil, &os.PathError{Op: "open", Path: ptmx, Err: fmt.Errorf("on a filesystem of type %#x, not devtmpfs/devpts: it would pin a root filesystem", st.Type)}
	}
	// os.OpenFile puts the character device in non-blocking mode under the
	// runtime poller, so Close and read deadlines interrupt reads.
	master, err := os.OpenFile(ptmx, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	var n int
	var ioctlErr error
	err = controlFD(master, func(fd int) {
		if ioctlErr = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); ioctlErr != nil {
			ioctlErr = fmt.Errorf("ioctl(TIOCSPTLCK): %w", ioctlErr)
			return
		}
		if n, ioctlErr = unix.IoctlGetInt(fd, unix.TIOCGPTN); ioctlErr != nil {
			ioctlErr = fmt.Errorf("ioctl(TIOCGPTN): %w", ioctlErr)
		}
	})
	if err == nil {
		err = ioctlErr
	}
	if err != nil {
		master.Close()
		return nil, &os.PathError{Op: "unlock", Path: ptmx, Err: err}
	}
	slavePath := "/dev/pts/" + strconv.Itoa(n)
	slave, err := openPeer(master, slavePath)
	if err != nil {
		master.Close()
		return nil, err
	}
	return &pty{master: master, slave: slave}, nil
}

// openPeer opens the slave side. TIOCGPTPEER (Linux 4.13) opens it from the
// master itself, so it works whatever is mounted at /dev/pts in this mount
// namespace; older kernels fall back to the /dev/pts/N path.
func openPeer(master *os.File, slavePath string) (*os.File, error) {
	var fd int
	var peerErr error
	err := controlFD(master, func(mfd int) {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER,
			uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
		if errno != 0 {
			peerErr = errno
			return
		}
		fd = int(r)
	})
	if err == nil && peerErr == nil {
		return os.NewFile(uintptr(fd), slavePath), nil
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open pty slave (ioctl(TIOCGPTPEER): %v): %w", peerErr, err)
	}
	return slave, nil
}

// setWinsize applies a window size to the terminal (TIOCSWINSZ on the
// master reaches the slave and raises SIGWINCH for its process group).
func (p *pty) setWinsize(cols, rows, width, height uint32) error {
	ws := &unix.Winsize{Col: clamp16(cols), Row: clamp16(rows), Xpixel: clamp16(width), Ypixel: clamp16(height)}
	var ioctlErr error
	if err := controlFD(p.master, func(fd int) { ioctlErr = unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) }); err != nil {
		return err
	}
	if ioctlErr != nil {
		return &os.PathError{Op: "ioctl(TIOCSWINSZ)", Path: p.slave.Name(), Err: ioctlErr}
	}
	return nil
}

func (p *pty) close() {
	p.slave.Close()
	p.master.Close()
}

// controlFD runs fn on f's descriptor without f.Fd(), which would switch the
// file to blocking mode and take it off the poller.
func controlFD(f *os.File, fn func(fd int)) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { fn(int(fd)) })
}

func clamp16(v uint32) uint16 {
	if v > 0xffff {
		return 0xffff
	}
	return uint16(v)
}
