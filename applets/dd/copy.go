package dd

import (
	"context"
	"fmt"
	"math"
	"os/signal"
	"time"

	"github.com/rootswap/rootswap/internal/ddargs"
	"golang.org/x/sys/unix"
)

// exit is a failure whose messages were printed: only the status is
// left to return.
type exit struct {
	code int
	now  bool // end at once: no sync, no close, no statistics
}

func (e *exit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// fail is a fatal copy error, already reported: the copy stops, the
// files are synced and closed, and the statistics are printed.
func fail() error { return &exit{code: 1} }

// job is one dd copy on the plain path: stdin, stdout, pipes, devices
// and files, one read per input block.
type job struct {
	r   *runner
	cfg *ddargs.Config
	ctx context.Context
	err *stderr
	t   *tally

	in, out  *end
	inInfo   file
	zstd     bool // in is a decompressor: its reads come in odd sizes
	fullRead bool // iflag=fullblock, or zstd

	// records and tail: input blocks still to copy, then a last read of
	// tail bytes (count_bytes); records is MaxInt64 without count=.
	records, tail int64

	ibuf []byte
	ob   blocker
	// partialRead is the size of the last short read, for the warning
	// that suggests iflag=fullblock; warned says it was given.
	partialRead int64
	warnPartial bool
	warned      bool
	status      int  // exit status so far
	holeAtEnd   bool // conv=sparse skipped the last block written
	directOut   bool // O_DIRECT still set on the output
}

// blocker gathers input blocks into output blocks of obs bytes.
type blocker struct {
	buf []byte
	n   int
}

// run copies and returns dd's exit status.
func (j *job) run() int {
	cfg := j.cfg
	j.records, j.tail = cfg.CountRecords()
	j.fullRead = cfg.IFlag.Fullblock || j.zstd
	j.warnPartial = cfg.BS && !j.fullRead && (cfg.Count >= 0 || cfg.Skip > 0)
	if code, ok := j.open(); !ok {
		return code
	}
	j.t.mu.Lock()
	j.t.start = j.t.now()
	j.t.next = j.t.start.Add(time.Second)
	j.t.mu.Unlock()
	err := j.copy()
	if ex, ok := err.(*exit); ok && ex.now {
		return ex.code
	}
	if err != nil {
		j.status = 1
	}
	j.finish(err == nil)
	if !j.closeAll() {
		return 1
	}
	j.t.mu.Lock()
	j.t.summary()
	j.t.mu.Unlock()
	return j.status
}

// copy positions both ends, then moves blocks until count= is met or
// the input ends.
func (j *job) copy() error {
	if j.records == 0 && j.tail == 0 && j.cfg.Skip == 0 && j.cfg.Seek == 0 {
		return nil
	}
	if err := j.skip(); err != nil {
		return err
	}
	if err := j.seek(); err != nil {
		return err
	}
	if j.records == 0 && j.tail == 0 {
		return nil
	}
	if err := j.buffers(); err != nil {
		return err
	}
	if err := j.fast(); err != nil {
		return err
	}
	for j.records > 0 || j.tail > 0 {
		if err := j.interrupt(); err != nil {
			return err
		}
		size := j.cfg.IBS
		if j.records == 0 {
			size = j.tail
		}
		n, err := j.readBlock(j.ibuf[:size])
		if err != nil {
			if err := j.readFailed(err, n, size); err != nil {
				return err
			}
			n = 0
			if !j.cfg.Conv.Sync {
				j.consume()
				continue
			}
		} else if n == 0 {
			return nil
		} else {
			j.t.mu.Lock()
			countRecord(&j.t.n.InFull, &j.t.n.InPartial, n, j.cfg.IBS)
			j.t.mu.Unlock()
		}
		j.consume()
		if j.cfg.Conv.Sync && n < j.cfg.IBS {
			clear(j.ibuf[n:j.cfg.IBS])
			n = j.cfg.IBS
		}
		if err := j.output(j.ibuf[:n]); err != nil {
			return err
		}
		j.t.mu.Lock()
		j.t.tick()
		j.t.mu.Unlock()
	}
	return nil
}

func (j *job) consume() {
	if j.records > 0 {
		if j.records != math.MaxInt64 {
			j.records--
		}
	} else {
		j.tail = 0
	}
}

// buffers allocates the input block and, unless every block is written
// as it was read (bs=), the output block.
func (j *job) buffers() error {
	var err error
	if j.ibuf == nil {
		if j.ibuf, err = buffer(j.cfg.IBS); err != nil {
			j.err.errorf(nil, "memory exhausted by input buffer of size %d bytes (%s)", j.cfg.IBS, ddargs.HumanSI(j.cfg.IBS, true))
			return &exit{code: 1, now: true}
		}
	}
	if !j.cfg.BS {
		if j.ob.buf, err = buffer(j.cfg.OBS); err != nil {
			j.err.errorf(nil, "memory exhausted by output buffer of size %d bytes (%s)", j.cfg.OBS, ddargs.HumanSI(j.cfg.OBS, true))
			return &exit{code: 1, now: true}
		}
	}
	return nil
}

// interrupt stops an in-process copy whose context was cancelled, as
// SIGINT stops the process: statistics, then status 130.
func (j *job) interrupt() error {
	if j.ctx.Err() == nil {
		return nil
	}
	j.t.mu.Lock()
	j.t.summary()
	j.t.mu.Unlock()
	return &exit{code: 130, now: true}
}

// readBlock reads one input block: one read(2), or with fullblock as
// many as it takes to fill p or reach the end. A short read is noted
// for the fullblock warning.
func (j *job) readBlock(p []byte) (int64, error) {
	var got int
	for {
		n, err := j.in.read(p[got:])
		got += n
		if err != nil {
			return int64(got), err
		}
		if !j.fullRead || n == 0 || got == len(p) {
			break
		}
	}
	n := int64(got)
	if int64(len(p)) == j.cfg.IBS && n > 0 && j.partialRead > 0 && j.warnPartial && !j.warned {
		j.warned = true
		unit := "bytes"
		if j.partialRead == 1 {
			unit = "byte"
		}
		j.err.errorf(nil, "warning: partial read (%d %s); suggest iflag=fullblock", j.partialRead, unit)
	}
	if n > 0 && n < j.cfg.IBS {
		j.partialRead = n
	} else if n == j.cfg.IBS {
		j.partialRead = 0
	}
	return n, nil
}

// readFailed reports a read error. Without conv=noerror it ends the
// copy; with it the statistics follow the message, the block counts as
// a partial record, and a seekable input moves past the bad block.
func (j *job) readFailed(err error, got, size int64) error {
	if !j.cfg.Conv.Noerror {
		j.err.errorf(err, "error reading %s", quoteaf(j.in.name))
		return fail()
	}
	// Under noerror the error is part of the statistics: silent with
	// status=none, and the exit status stays 0.
	j.t.mu.Lock()
	if j.cfg.Status != "none" {
		j.err.errorf(err, "error reading %s", quoteaf(j.in.name))
	}
	j.t.summary()
	j.t.n.InPartial++
	j.t.mu.Unlock()
	if _, serr := j.in.seek(size-got, unix.SEEK_CUR); serr != nil && errnoOf(serr) != unix.ESPIPE {
		j.err.errorf(serr, "%s: cannot seek", quotef(j.in.name))
		return fail()
	}
	return nil
}

// output hands one input block (padded already) to the output: as it
// is with bs=, else through the blocker.
func (j *job) output(p []byte) error {
	if j.cfg.BS {
		n, err := j.put(p, j.cfg.IBS)
		j.t.mu.Lock()
		j.t.n.Bytes += n
		if err == nil {
			countRecord(&j.t.n.OutFull, &j.t.n.OutPartial, n, j.cfg.OBS)
		}
		j.t.mu.Unlock()
		if err != nil {
			j.writeFailed(err, "error writing %s")
			return fail()
		}
		return nil
	}
	for len(p) > 0 {
		c := copy(j.ob.buf[j.ob.n:], p)
		j.ob.n += c
		p = p[c:]
		if int64(j.ob.n) == j.cfg.OBS {
			if err := j.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush writes the blocker's content as one output record, full or
// (at the end) partial.
func (j *job) flush() error {
	if j.ob.n == 0 {
		return nil
	}
	n, err := j.put(j.ob.buf[:j.ob.n], j.cfg.OBS)
	j.ob.n = 0
	j.t.mu.Lock()
	j.t.n.Bytes += n
	countRecord(&j.t.n.OutFull, &j.t.n.OutPartial, n, j.cfg.OBS)
	j.t.mu.Unlock()
	if err != nil {
		j.writeFailed(err, "writing to %s")
		return fail()
	}
	return nil
}

// put writes p whole, retrying short writes; with conv=sparse a block
// of zeros becomes a hole instead. bs is the record size: a shorter
// block is the last one, written without O_DIRECT (which needs whole
// sectors). It returns how much was written.
func (j *job) put(p []byte, bs int64) (int64, error) {
	if j.cfg.Conv.Sparse && allZero(p) {
		if _, err := j.out.seek(int64(len(p)), unix.SEEK_CUR); err != nil {
			return 0, err
		}
		j.holeAtEnd = true
		return int64(len(p)), nil
	}
	j.holeAtEnd = false
	if j.directOut && int64(len(p)) < bs {
		j.directOut = false
		if err := j.out.setFlags(0, unix.O_DIRECT); err != nil {
			j.err.errorf(err, "failed to turn off O_DIRECT")
			return 0, fail()
		}
	}
	var done int64
	for done < int64(len(p)) {
		n, err := j.out.write(p[done:])
		done += int64(n)
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, unix.ENOSPC
		}
	}
	return done, nil
}

func allZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// writeFailed reports a write error; a pipe with no reader ends the
// process by SIGPIPE, as the kernel would have (the copy thread blocks
// it), unless SIGPIPE was ignored when dd started.
func (j *job) writeFailed(err error, format string) {
	if _, reported := err.(*exit); reported {
		return
	}
	if errnoOf(err) == unix.EPIPE && j.r.owner && !signal.Ignored(unix.SIGPIPE) {
		dieBySignal(unix.SIGPIPE)
	}
	j.err.errorf(err, format, quoteaf(j.out.name))
}

// finish writes the last partial output block, gives a sparse file its
// full length, drops caches (nocache) and syncs (conv=fsync,
// conv=fdatasync). After a failure only the sync is done.
func (j *job) finish(ok bool) {
	cfg := j.cfg
	if ok {
		if err := j.flush(); err != nil {
			j.status = 1
		} else if j.holeAtEnd {
			j.fillHole()
		}
	}
	if cfg.IFlag.Nocache && j.in.fd >= 0 {
		unix.Fadvise(j.in.fd, 0, 0, unix.FADV_DONTNEED)
	}
	if cfg.OFlag.Nocache && j.out.fd >= 0 {
		unix.Fdatasync(j.out.fd)
		unix.Fadvise(j.out.fd, 0, 0, unix.FADV_DONTNEED)
	}
	if j.out.fd < 0 || j.out.bad {
		return
	}
	switch {
	case cfg.Conv.Fsync:
		if err := unix.Fsync(j.out.fd); err != nil {
			j.err.errorf(err, "fsync failed for %s", quoteaf(j.out.name))
			j.status = 1
		}
	case cfg.Conv.Fdatasync:
		if err := unix.Fdatasync(j.out.fd); err != nil {
			j.err.errorf(err, "fdatasync failed for %s", quoteaf(j.out.name))
			j.status = 1
		}
	}
}

// fillHole extends a regular file that ends in a skipped block of zeros
// to where the copy ended.
func (j *job) fillHole() {
	pos, err := j.out.seek(0, unix.SEEK_CUR)
	if err != nil {
		return
	}
	st, err := j.out.fstat()
	if err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size >= pos {
		return
	}
	if err := unix.Ftruncate(j.out.fd, pos); err != nil {
		j.err.errorf(err, "failed to truncate to %d bytes in output file %s", pos, quoteaf(j.out.name))
		j.status = 1
	}
}

// closeAll closes both ends; a failure ends dd at once, without
// statistics.
func (j *job) closeAll() bool {
	freeBuffer(j.ibuf)
	freeBuffer(j.ob.buf)
	if err := j.in.close(); err != nil {
		j.err.errorf(err, "closing input file %s", quoteaf(j.in.name))
		return false
	}
	if err := j.out.close(); err != nil {
		j.err.errorf(err, "closing output file %s", quoteaf(j.out.name))
		return false
	}
	return true
}

// lastWords is SIGINT's statistics. The lock stays held, so that the
// copy writes nothing more before the process dies.
func (t *tally) lastWords() {
	t.mu.Lock()
	t.summary()
}
