package copy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// directFile does I/O on one side of the copy. For an *os.File it turns
// O_DIRECT on (fcntl F_SETFL, so the caller's descriptor is reused and
// put back as it was) and off again for a piece that is not aligned,
// which only ever is the tail: the reader and the writer each own one
// side, so the flag never changes under a concurrent I/O on the same
// descriptor.
type directFile struct {
	r      io.ReaderAt
	w      io.WriterAt
	f      *os.File
	direct bool // O_DIRECT wanted and accepted
	on     bool // O_DIRECT currently set
	flags  int  // the flags found, restored at the end
}

func newDirectFile(x any, want bool) *directFile {
	d := &directFile{}
	d.r, _ = x.(io.ReaderAt)
	d.w, _ = x.(io.WriterAt)
	f, ok := x.(*os.File)
	if !ok {
		return d
	}
	d.f = f
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return d
	}
	d.flags = flags
	d.on = flags&unix.O_DIRECT != 0
	if want && !d.on {
		// tmpfs and some others refuse O_DIRECT with EINVAL: buffered
		// I/O it is, which Result.Direct* reports.
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFL, flags|unix.O_DIRECT); err == nil {
			d.on = true
		}
	}
	d.direct = d.on
	return d
}

func (d *directFile) restore() {
	if d.f != nil && d.on != (d.flags&unix.O_DIRECT != 0) {
		unix.FcntlInt(d.f.Fd(), unix.F_SETFL, d.flags)
	}
}

// setDirect switches O_DIRECT for the next I/O: on for an aligned one,
// off for an unaligned one.
func (d *directFile) setDirect(p []byte, off int64) error {
	if !d.direct {
		return nil
	}
	aligned := off%Align == 0 && len(p)%Align == 0 && uintptr(unsafe.Pointer(unsafe.SliceData(p)))%Align == 0
	if aligned == d.on {
		return nil
	}
	flags := d.flags &^ unix.O_DIRECT
	if aligned {
		flags |= unix.O_DIRECT
	}
	if _, err := unix.FcntlInt(d.f.Fd(), unix.F_SETFL, flags); err != nil {
		return &os.PathError{Op: "fcntl F_SETFL O_DIRECT", Path: d.f.Name(), Err: err}
	}
	d.on = aligned
	return nil
}

func (d *directFile) readAt(p []byte, off int64) (int, error) {
	if d.r == nil {
		return 0, fmt.Errorf("%s: cannot be read", pathOf(d.w))
	}
	if err := d.setDirect(p, off); err != nil {
		return 0, err
	}
	n, err := d.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read %s at %d: %w", pathOf(d.r), off+int64(n), unwrapPathError(err))
	}
	return n, err
}

func (d *directFile) writeAt(p []byte, off int64) error {
	if err := d.setDirect(p, off); err != nil {
		return err
	}
	n, err := d.w.WriteAt(p, off)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return fmt.Errorf("write %s at %d: %w", pathOf(d.w), off+int64(n), unwrapPathError(err))
	}
	return nil
}

// sync makes the written data durable; a non-file has nothing to sync.
func (d *directFile) sync() error {
	if d.f == nil {
		return nil
	}
	if err := unix.Fdatasync(int(d.f.Fd())); err != nil && !errors.Is(err, unix.EINVAL) {
		return &os.PathError{Op: "fdatasync", Path: d.f.Name(), Err: err}
	}
	return nil
}

// dropCache makes the next reads come from the device rather than from
// the page cache, for a verify without O_DIRECT. The data was synced.
func (d *directFile) dropCache() {
	if d.f != nil && !d.direct {
		unix.Fadvise(int(d.f.Fd()), 0, 0, unix.FADV_DONTNEED)
	}
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// AlignedBuffer is n bytes starting at an Align boundary, as O_DIRECT
// requires of user memory.
func AlignedBuffer(n int) []byte {
	b := make([]byte, n+Align)
	skip := (Align - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%Align)) % Align
	return b[skip : skip+n : skip+n]
}
