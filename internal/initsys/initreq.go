package initsys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The sysvinit control protocol, from sysvinit's initreq.h: a fixed
// 384-byte struct init_request written to init's FIFO in one write.
//
//	offset size
//	0      4    int magic      0x03091969
//	4      4    int cmd        INIT_CMD_RUNLVL = 1
//	8      4    int runlevel   the character: 'u' re-executes init
//	12     4    int sleeptime  seconds between SIGTERM and SIGKILL on a runlevel change
//	16     368  union { struct init_request_bsd; char data[368]; }  zero
//
// The ints are in the host's byte order (init and telinit are the same
// machine).
const (
	InitMagic       = 0x03091969
	InitCmdRunlevel = 1
	InitRequestSize = 384

	// telinitSleeptime is telinit's default -t; 'u' does not use it.
	telinitSleeptime = 5
)

// InitRequest is the struct init_request telinit writes for
// `telinit -t SLEEPTIME RUNLEVEL`.
func InitRequest(runlevel byte, sleeptime int32) []byte {
	b := make([]byte, InitRequestSize)
	binary.NativeEndian.PutUint32(b[0:], InitMagic)
	binary.NativeEndian.PutUint32(b[4:], InitCmdRunlevel)
	binary.NativeEndian.PutUint32(b[8:], uint32(runlevel))
	binary.NativeEndian.PutUint32(b[12:], uint32(sleeptime))
	return b
}

// writeFIFO writes msg to the FIFO at p in one write. It never blocks:
// with nobody reading the FIFO (init not listening) the open fails with
// ENXIO, which is reported as such, instead of hanging the way an
// ordinary open would. It refuses anything but a FIFO, so a stray regular
// file of that name is never written.
func writeFIFO(p string, msg []byte) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode()&os.ModeNamedPipe == 0 {
		return &os.PathError{Op: "write request", Path: p, Err: fmt.Errorf("not a FIFO (%v)", fi.Mode().Type())}
	}
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return &os.PathError{Op: "open", Path: p, Err: fmt.Errorf("no process reads this FIFO, init is not listening on it: %w", err)}
		}
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	n, err := unix.Write(fd, msg)
	if err != nil {
		return &os.PathError{Op: "write", Path: p, Err: err}
	}
	if n != len(msg) {
		return &os.PathError{Op: "write", Path: p, Err: fmt.Errorf("short write: %d of %d bytes", n, len(msg))}
	}
	return nil
}
