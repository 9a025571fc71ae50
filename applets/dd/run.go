package dd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/cli"
	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/ddargs"
	"github.com/rootswap/rootswap/internal/ext"
	"github.com/rootswap/rootswap/internal/extent"
	"golang.org/x/sys/unix"
)

// directByDefault says whether the engine uses O_DIRECT when neither
// iflag=direct nor oflag=direct asks for it. Chosen from the figures of
// build/bench-dd.sh on loop devices (see the README): bypassing the page
// cache keeps a copy of a whole disk from evicting everything else, and
// with a reader and a writer in parallel costs no throughput.
const directByDefault = true

// maxEngineBuf caps the engine's buffers however large bs= is: four of
// them are in flight.
const maxEngineBuf = 64 << 20

type runner struct {
	env  *cli.Env
	cfg  ddargs.Config
	wrap func(io.WriterAt) io.WriterAt
	// owner is true when dd is the process (see invocation); prog is
	// how it names itself in messages.
	owner bool
	prog  string
	err   *stderr
	// progress is the rootswap progress line of the extensions.
	progress *progress
}

// file is one end of the copy as stat found it.
type file struct {
	path   string
	exists bool
	st     unix.Stat_t
}

func (f file) isReg() bool { return !f.exists || f.st.Mode&unix.S_IFMT == unix.S_IFREG }
func (f file) isBlk() bool { return f.exists && f.st.Mode&unix.S_IFMT == unix.S_IFBLK }

func statFile(path string) (file, error) {
	f := file{path: path}
	err := unix.Stat(path, &f.st)
	if err == nil {
		f.exists = true
		return f, nil
	}
	if errors.Is(err, unix.ENOENT) {
		return f, nil
	}
	return f, &os.PathError{Op: "stat", Path: path, Err: err}
}

// extended runs the rootswap extensions (blocks=, backup=, verify=)
// and restores from zstd files onto files and devices, with the engine.
// Messages are GNU's shape: an error, then the statistics.
func (r *runner) extended(ctx context.Context) int {
	cfg := &r.cfg
	r.progress = newProgress(r.env.Stderr, r.now)
	in, err := os.OpenFile(cfg.If, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		r.err.errorf(unwrap(err), "failed to open %s", quoteaf(cfg.If))
		return 1
	}
	defer in.Close()
	inInfo := file{path: cfg.If, exists: true}
	if err := unix.Fstat(int(in.Fd()), &inInfo.st); err != nil {
		r.err.errorf(err, "cannot fstat %s", quoteaf(cfg.If))
		return 1
	}
	outInfo, err := statFile(cfg.Of)
	if err != nil {
		r.err.errorf(nil, "%v", err)
		return 1
	}
	if r.owner {
		// SIGINT and SIGTERM end the process as GNU dd's do; the engine
		// must not stop on its own first.
		ctx = context.WithoutCancel(ctx)
	}
	if err := r.engine(ctx, in, inInfo, outInfo); err != nil {
		var ex *exit
		if errors.As(err, &ex) {
			return ex.code
		}
		r.err.errorf(nil, "%v", err)
		return 1
	}
	return 0
}

func (r *runner) now() time.Time {
	if r.env.Now != nil {
		return r.env.Now()
	}
	return time.Now()
}

func (r *runner) showProgress() bool {
	return r.cfg.Status == "progress" || (r.cfg.Status == "" && r.progress.tty)
}

// engine copies between files and block devices with internal/copy.
func (r *runner) engine(ctx context.Context, in *os.File, inInfo, outInfo file) error {
	cfg := &r.cfg
	var src io.ReaderAt = in
	var srcSize int64
	zst := inInfo.isReg() && blockcopy.IsZstd(in)
	switch {
	case zst:
		n, known, err := blockcopy.ContentSize(in, inInfo.st.Size)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.If, err)
		}
		if !known {
			if n, err = r.countZstd(in); err != nil {
				return err
			}
		}
		srcSize = n
		dec, err := blockcopy.NewDecompressor(in)
		if err != nil {
			return err
		}
		defer dec.Close()
		src = blockcopy.Sequential(dec)
	case inInfo.isBlk():
		n, err := unix.IoctlGetUint64(int(in.Fd()), unix.BLKGETSIZE64)
		if err != nil {
			return &os.PathError{Op: "ioctl BLKGETSIZE64", Path: cfg.If, Err: err}
		}
		srcSize = int64(n)
	default:
		srcSize = inInfo.st.Size
	}

	// What is copied: the used blocks of a filesystem or a byte range.
	mode := cfg.Blocks
	skipB, seekB := cfg.SkipBytes(), cfg.SeekBytes()
	if mode == "auto" {
		mode = "all"
		switch {
		case zst:
		case cfg.Skip != 0 || cfg.Seek != 0 || cfg.Count >= 0:
		default:
			if _, err := ext.ReadSuperblock(in); err == nil {
				mode = "used"
			} else if cfg.Status != "none" {
				r.err.errorf(nil, "blocks=auto: copying all blocks: %v", err)
			}
		}
	}
	var extents []extent.Extent
	var span extent.Extent
	var what string
	var need int64
	if mode == "used" {
		if zst {
			return fmt.Errorf("blocks=used: %s is a zstd image; restore it whole (blocks=all)", cfg.If)
		}
		sb, err := ext.ReadSuperblock(in)
		if err != nil {
			return fmt.Errorf("blocks=used: %s: %w (only ext2/3/4 can be copied by used blocks; blocks=all copies anything)", cfg.If, err)
		}
		if sb.Size() > srcSize {
			return fmt.Errorf("blocks=used: the %s filesystem on %s is %d bytes, larger than %s itself (%d bytes): truncated image?", sb.Kind(), cfg.If, sb.Size(), cfg.If, srcSize)
		}
		if extents, err = ext.UsedExtents(in); err != nil {
			return fmt.Errorf("blocks=used: %s: %w", cfg.If, err)
		}
		span = extent.Extent{Off: 0, Len: sb.Size()}
		need = sb.Size()
		what = fmt.Sprintf("the %s used by the %s filesystem (%s) on %s",
			humanize.IBytes(uint64(extent.Total(extents))), sb.Kind(), humanize.IBytes(uint64(sb.Size())), cfg.If)
	} else {
		start, end := skipB, srcSize
		if c := cfg.CountBytes(); c >= 0 && c < end-start {
			end = start + c
		}
		if start > end {
			if cfg.Status != "none" {
				r.err.errorf(nil, "%s: cannot skip to specified offset", quotef(cfg.If))
			}
			start = end
		}
		span = extent.Extent{Off: start, Len: end - start}
		extents = []extent.Extent{span}
		need = seekB + span.Len
		what = fmt.Sprintf("%s of %s", humanize.IBytes(uint64(span.Len)), cfg.If)
		if start > 0 {
			what += fmt.Sprintf(" from byte %d", start)
		}
	}

	if err := r.checkSource(inInfo); err != nil {
		return err
	}
	if err := r.checkTarget(inInfo, outInfo, need); err != nil {
		return err
	}
	if cfg.Backup != "" {
		if _, err := os.Lstat(cfg.Backup); err == nil {
			return fmt.Errorf("backup=%s: %w", cfg.Backup, blockcopy.ErrBackupExists)
		}
	}

	// Everything checked: say what is touched, then touch it.
	if cfg.Status != "none" && (outInfo.isBlk() || cfg.Extensions()) {
		to := cfg.Of
		if outInfo.isBlk() {
			to = fmt.Sprintf("%s (%d:%d)", cfg.Of, unix.Major(outInfo.st.Rdev), unix.Minor(outInfo.st.Rdev))
		}
		if seekB > 0 {
			to += fmt.Sprintf(" at byte %d", seekB)
		}
		r.err.errorf(nil, "writing %s to %s", what, to)
	}
	out, err := r.openTarget(outInfo, seekB, mode == "used", need)
	if err != nil {
		return err
	}
	defer out.Close()
	var backup *os.File
	if cfg.Backup != "" {
		backup, err = os.OpenFile(cfg.Backup, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("backup=%s: %w", cfg.Backup, blockcopy.ErrBackupExists)
		}
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		defer func() {
			if backup != nil { // not completed: a partial image is no backup
				backup.Close()
				os.Remove(cfg.Backup)
			}
		}()
	}

	bufSize := int(min(max(cfg.IBS, cfg.OBS, blockcopy.DefaultBufSize), maxEngineBuf))
	opts := blockcopy.Options{
		BufSize: bufSize,
		Direct:  cfg.Direct == "yes" || (cfg.Direct == "" && directByDefault) || cfg.IFlag.Direct || cfg.OFlag.Direct,
		Sync:    cfg.Conv.Fsync || cfg.Conv.Fdatasync || outInfo.isBlk(),
		Verify:  cfg.Verify,
		Shift:   seekB - skipB,
		// Unused runs shorter than this are copied rather than skipped:
		// fewer, larger I/Os (see build/bench-dd.sh).
		MergeGap: blockcopy.DefaultMergeGap,
		Span:     span,
	}
	if backup != nil {
		opts.Backup, opts.BackupLevel = backup, cfg.BackupLevel
	}
	switch {
	case cfg.Status == "progress":
		// GNU's line, once a second, for the bytes written.
		t := newTally(r)
		opts.Progress = func(p blockcopy.Phase, done, total int64) {
			if p != blockcopy.PhaseCopy {
				return
			}
			t.mu.Lock()
			defer t.mu.Unlock()
			t.n.Bytes = done
			t.tick()
		}
	case r.showProgress():
		opts.Progress = func(p blockcopy.Phase, done, total int64) { r.progress.update(p.String(), done, total) }
	}
	var dst io.WriterAt = out
	if r.wrap != nil {
		dst = r.wrap(out)
	}
	start := r.now()
	var stats func()
	written := func() int64 { return 0 }
	var mu sync.Mutex
	var soFar int64
	progress := opts.Progress
	opts.Progress = func(p blockcopy.Phase, done, total int64) {
		if p == blockcopy.PhaseCopy {
			mu.Lock()
			soFar = done
			mu.Unlock()
		}
		if progress != nil {
			progress(p, done, total)
		}
	}
	written = func() int64 { mu.Lock(); defer mu.Unlock(); return soFar }
	stats = func() {
		n := written()
		r.summary(r.counts(n, n), r.now().Sub(start))
	}
	stop := watch(r.owner, r.posixlyCorrect(), stats, stats)
	res, err := blockcopy.Copy(ctx, dst, src, extents, opts)
	stop()
	elapsed := res.CopyTime
	if elapsed == 0 {
		elapsed = r.now().Sub(start)
	}
	r.progress.end()
	r.err.endLine()
	if err == nil && mode == "used" && res.Written < extent.Total(extents) {
		err = fmt.Errorf("%s ended at byte %d, before the filesystem's last used block", cfg.If, res.Read)
	}
	if err != nil {
		r.err.errorf(nil, "%v", err)
		r.summary(r.counts(res.Read, res.Written), elapsed)
		return &exit{code: 1}
	}
	r.summary(r.counts(res.Read, res.Written), elapsed)
	if backup != nil {
		if err := backup.Sync(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		if err := backup.Close(); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
		backup = nil
		if cfg.Status != "none" {
			level := cfg.BackupLevel
			if level == 0 {
				level = blockcopy.DefaultBackupLevel
			}
			r.err.errorf(nil, "backup %s: %s image in %s (%.1f%%), level %d", cfg.Backup,
				humanize.IBytes(uint64(res.BackupIn)), humanize.IBytes(uint64(res.BackupOut)),
				100*float64(res.BackupOut)/float64(max(res.BackupIn, 1)), level)
		}
	}
	if cfg.Verify && cfg.Status != "none" {
		r.err.errorf(nil, "verified %s: %d bytes read back from %s match, %.3g s",
			humanize.IBytes(uint64(res.Verified)), res.Verified, cfg.Of, res.VerifyTime.Seconds())
	}
	return nil
}

// counts derives dd's record counts from byte counts: the engine reads
// files and devices, where every read but the last is full.
func (r *runner) counts(read, written int64) ddargs.Counts {
	c := ddargs.Counts{Bytes: written}
	c.InFull, c.InPartial = read/r.cfg.IBS, boolInt(read%r.cfg.IBS != 0)
	if r.cfg.BS {
		c.OutFull, c.OutPartial = c.InFull, c.InPartial
	} else {
		c.OutFull, c.OutPartial = written/r.cfg.OBS, boolInt(written%r.cfg.OBS != 0)
	}
	return c
}

// summary prints GNU dd's closing statistics.
func (r *runner) summary(c ddargs.Counts, elapsed time.Duration) {
	if r.cfg.Status == "none" {
		return
	}
	r.err.endLine()
	r.err.write(c.Records())
	if r.cfg.Status == "noxfer" {
		return
	}
	r.err.write(ddargs.Transfer(c.Bytes, elapsed, false) + "\n")
}

// openTarget opens of= for writing after every check passed: a block
// device exclusively (the kernel's own refusal if it got mounted since),
// a regular file created and truncated the GNU way.
func (r *runner) openTarget(outInfo file, seekB int64, used bool, need int64) (*os.File, error) {
	cfg := &r.cfg
	flags := os.O_RDWR | unix.O_CLOEXEC
	if cfg.OFlag.Sync {
		flags |= unix.O_SYNC
	}
	if cfg.OFlag.Dsync {
		flags |= unix.O_DSYNC
	}
	if outInfo.isBlk() {
		f, err := blockdev.OpenExclusive(cfg.Of, flags)
		if err != nil {
			return nil, fmt.Errorf("refusing to write %s: %w", cfg.Of, err)
		}
		return f, nil
	}
	if !cfg.Conv.Nocreat {
		flags |= os.O_CREATE
	}
	if cfg.Conv.Excl {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(cfg.Of, flags, 0o666)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", quoteaf(cfg.Of), unwrap(err))
	}
	if !cfg.Conv.Notrunc {
		if err := f.Truncate(seekB); err != nil {
			f.Close()
			return nil, fmt.Errorf("failed to truncate to %d bytes in output file %s: %w", seekB, quoteaf(cfg.Of), unwrap(err))
		}
	}
	if used {
		// Unused blocks at the end are not written: the file must still
		// be as large as the filesystem.
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil && st.Size < need {
			if err := f.Truncate(need); err != nil {
				f.Close()
				return nil, fmt.Errorf("extending %s to %d bytes: %w", cfg.Of, need, unwrap(err))
			}
		}
	}
	return f, nil
}

// countZstd decompresses a zstd file whose frames do not declare their
// size, to learn it before anything is written.
func (r *runner) countZstd(in *os.File) (int64, error) {
	dec, err := blockcopy.NewDecompressor(io.NewSectionReader(in, 0, 1<<62))
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	n, err := io.Copy(io.Discard, dec)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", r.cfg.If, err)
	}
	return n, nil
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
