package dd

import (
	"math"
	"math/bits"

	"github.com/rootswap/rootswap/internal/ddargs"
	"golang.org/x/sys/unix"
)

// openFlags maps iflag=/oflag= symbols to open(2) flags.
func openFlags(f ddargs.Flags) int {
	fl := 0
	for _, m := range []struct {
		on   bool
		flag int
	}{
		{f.Append, unix.O_APPEND}, {f.Direct, unix.O_DIRECT}, {f.Directory, unix.O_DIRECTORY},
		{f.Dsync, unix.O_DSYNC}, {f.Noatime, unix.O_NOATIME}, {f.Noctty, unix.O_NOCTTY},
		{f.Nofollow, unix.O_NOFOLLOW}, {f.Nonblock, unix.O_NONBLOCK}, {f.Sync, unix.O_SYNC},
	} {
		if m.on {
			fl |= m.flag
		}
	}
	return fl
}

// open opens if= and of= (or takes the standard streams and sets their
// flags), refusing first what the checks refuse when a block device is
// involved, and truncates of= to where writing starts unless
// conv=notrunc. ok is false when dd ends here, without statistics.
func (j *job) open() (code int, ok bool) {
	cfg := j.cfg
	if j.in == nil {
		if cfg.If == "" {
			j.in = j.r.stdin()
			if err := j.in.setFlags(openFlags(cfg.IFlag), 0); err != nil {
				j.err.errorf(err, "setting flags for %s", quoteaf(j.in.name))
				return 1, false
			}
		} else {
			fd, err := unix.Open(cfg.If, unix.O_RDONLY|unix.O_CLOEXEC|openFlags(cfg.IFlag), 0)
			if err != nil {
				j.err.errorf(err, "failed to open %s", quoteaf(cfg.If))
				return 1, false
			}
			j.in = &end{fd: fd, name: cfg.If, own: true}
		}
	}
	if cfg.Of == "" {
		j.out = j.r.stdout()
		if err := j.out.setFlags(openFlags(cfg.OFlag), 0); err != nil {
			j.err.errorf(err, "setting flags for %s", quoteaf(j.out.name))
			return 1, false
		}
		j.directOut = cfg.OFlag.Direct
		return 0, true
	}
	outInfo, _ := statFile(cfg.Of)
	if j.inInfo.isBlk() || outInfo.isBlk() || outInfo.isReg() {
		if err := j.refuse(outInfo); err != nil {
			j.err.errorf(nil, "%v", err)
			return 1, false
		}
	}
	fl := unix.O_WRONLY | unix.O_CLOEXEC | openFlags(cfg.OFlag)
	if !cfg.Conv.Nocreat {
		fl |= unix.O_CREAT
	}
	if cfg.Conv.Excl {
		fl |= unix.O_EXCL
	}
	fd, err := unix.Open(cfg.Of, fl, 0o666)
	if err != nil {
		j.err.errorf(err, "failed to open %s", quoteaf(cfg.Of))
		return 1, false
	}
	j.out = &end{fd: fd, name: cfg.Of, own: true}
	j.directOut = cfg.OFlag.Direct
	if cfg.Conv.Notrunc {
		return 0, true
	}
	recs, extra := cfg.SeekRecords()
	size, fits := offset(recs, cfg.OBS, extra)
	if recs == 0 {
		// GNU dd 9.1 keeps nothing of the old file when seek= is less
		// than one output block: the bytes before it become zeros.
		size = 0
	}
	if !fits {
		j.err.errorf(nil, "offset too large: cannot truncate to a length of seek=%d (%d-byte) blocks", recs, cfg.OBS)
		return 1, false
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		// Only a regular file must take the length; a device or a
		// FIFO has none to set.
		if st, serr := j.out.fstat(); serr == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			j.err.errorf(err, "failed to truncate to %d bytes in output file %s", size, quoteaf(cfg.Of))
		}
	}
	return 0, true
}

// refuse runs the checks that protect block devices and the files behind
// loop devices: a target in use, one that overlaps the source, a source
// mounted read-write, a target smaller than what is copied.
func (j *job) refuse(outInfo file) error {
	if err := j.r.checkSource(j.inInfo); err != nil {
		return err
	}
	need := int64(0)
	if j.inInfo.isBlk() || (j.inInfo.exists && j.inInfo.isReg()) {
		size := j.inInfo.st.Size
		if j.inInfo.isBlk() {
			if n, err := blockSize(j.cfg.If); err == nil {
				size = n
			}
		}
		n := max(size-j.cfg.SkipBytes(), 0)
		if c := j.cfg.CountBytes(); c >= 0 {
			n = min(n, c)
		}
		need = j.cfg.SeekBytes() + n
	}
	return j.r.checkTarget(j.inInfo, outInfo, need)
}

// offset is records*bs+extra, and whether it fits an int64.
func offset(records, bs, extra int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(records), uint64(bs))
	if hi != 0 || lo > math.MaxInt64-uint64(extra) {
		return 0, false
	}
	return int64(lo) + extra, true
}

// skip moves the input past skip= before copying: a seek where the
// input can seek, else reads of whole input blocks (each read counts as
// one, as in the copy) and a last read of the extra bytes. Running out
// of input first is reported and copying goes on from the end.
func (j *job) skip() error {
	recs, extra := j.cfg.SkipRecords()
	if recs == 0 && extra == 0 {
		return nil
	}
	off, fits := offset(recs, j.cfg.IBS, extra)
	if !fits {
		j.err.errorf(unix.EOVERFLOW, "%s: cannot skip", quotef(j.in.name))
		return fail()
	}
	if pos, err := j.in.seek(off, unix.SEEK_CUR); err == nil {
		if st, err := j.in.fstat(); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && pos > st.Size {
			j.err.errorf(nil, "%s: cannot skip to specified offset", quotef(j.in.name))
		}
		return nil
	}
	if j.ibuf == nil {
		var err error
		if j.ibuf, err = buffer(j.cfg.IBS); err != nil {
			j.err.errorf(nil, "memory exhausted by input buffer of size %d bytes (%s)", j.cfg.IBS, ddargs.HumanSI(j.cfg.IBS, true))
			return &exit{code: 1, now: true}
		}
	}
	var skipped int64
	read := func(size int64) bool {
		n, err := j.readBlock(j.ibuf[:size])
		if err != nil {
			j.err.errorf(err, "error reading %s", quoteaf(j.in.name))
			return false
		}
		skipped += n
		return n > 0
	}
	more := true
	for i := int64(0); i < recs && more; i++ {
		more = read(j.cfg.IBS)
	}
	if more && extra > 0 {
		read(extra)
	}
	if skipped < off {
		j.err.errorf(nil, "%s: cannot skip to specified offset", quotef(j.in.name))
	}
	return nil
}

// seek moves the output to seek= before writing; an output that cannot
// seek (a pipe) ends the copy.
func (j *job) seek() error {
	recs, extra := j.cfg.SeekRecords()
	if recs == 0 && extra == 0 {
		return nil
	}
	off, fits := offset(recs, j.cfg.OBS, extra)
	var err error = unix.EOVERFLOW
	if fits {
		_, err = j.out.seek(off, unix.SEEK_CUR)
	}
	if err != nil {
		j.err.errorf(err, "%s: cannot seek", quotef(j.out.name))
		return fail()
	}
	return nil
}

// blockSize is a block device's size in bytes.
func blockSize(path string) (int64, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	n, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	return int64(n), err
}
