package filecopy

import (
	"golang.org/x/sys/unix"
)

// data copies a regular file's bytes: holes stay holes (SEEK_DATA and
// SEEK_HOLE); within one filesystem copy_file_range lets the kernel
// copy, or share the extents (xfs, btrfs).
func (w *worker) data(dst, src int, st *unix.Statx_t) (int64, error) {
	size := int64(st.Size)
	switch {
	case size == 0:
		return 0, nil
	case int64(st.Blocks)*512 < size:
		return w.sparse(dst, src, size)
	case !w.j.noCFR.Load():
		var total int64
		for {
			n, err := unix.CopyFileRange(src, nil, dst, nil, 1<<30, 0)
			if err == unix.EINTR {
				continue
			}
			if err != nil && total == 0 {
				// Another filesystem (EXDEV) or no support: read and
				// write, for the rest of this copy too.
				w.j.noCFR.Store(true)
				return w.stream(dst, src, size)
			}
			total += int64(n)
			if err != nil || n == 0 {
				return total, err
			}
		}
	}
	return w.stream(dst, src, size)
}

// stream copies from the current offsets to the end of src. A read
// shorter than the buffer that reaches the size from statx is the last
// one: a small file costs one read.
func (w *worker) stream(dst, src int, size int64) (int64, error) {
	var total int64
	for {
		n, err := unix.Read(src, w.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return total, err
		}
		if err := writeAll(dst, w.buf[:n], -1); err != nil {
			return total, err
		}
		total += int64(n)
		if n < len(w.buf) && total >= size {
			return total, nil
		}
	}
}

// sparse sets the size, then copies the data segments of src at their
// offsets: the holes between and after them stay holes. Every write
// lands within the size: a write past the end makes xfs preallocate
// beyond it, blocks that the next segment's write then takes into the
// file where the source has a hole.
func (w *worker) sparse(dst, src int, size int64) (int64, error) {
	if err := unix.Ftruncate(dst, size); err != nil {
		return 0, err
	}
	var total, off int64
	for {
		data, err := unix.Seek(src, off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break // no data after off
		}
		if err != nil {
			return total, err
		}
		end, err := unix.Seek(src, data, unix.SEEK_HOLE)
		if err != nil {
			return total, err
		}
		for data < end {
			n, err := unix.Pread(src, w.buf[:min(int64(len(w.buf)), end-data)], data)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return total, err
			}
			if n == 0 {
				break // shrunk meanwhile
			}
			if err := writeAll(dst, w.buf[:n], data); err != nil {
				return total, err
			}
			data += int64(n)
			total += int64(n)
		}
		off = end
	}
	return total, nil
}

// writeAll writes b at off, or at the file offset when off < 0.
func writeAll(fd int, b []byte, off int64) error {
	for len(b) > 0 {
		var n int
		var err error
		if off < 0 {
			n, err = unix.Write(fd, b)
		} else {
			n, err = unix.Pwrite(fd, b, off)
			off += int64(n)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
