package dd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/ddargs"
	"golang.org/x/sys/unix"
)

// stream is GNU dd's own loop, for pipes, character devices, stdin and
// stdout, and conv=sparse: read ibs, count the record full or partial,
// write it (bs=) or reblock to obs, and count the writes.
func (r *runner) stream(ctx context.Context, in *os.File, inInfo, outInfo file) error {
	cfg := &r.cfg
	var src io.Reader = r.env.Stdin
	seekable := false
	if in != nil {
		src = in
		seekable = inInfo.isReg() || inInfo.isBlk()
		if inInfo.isReg() && blockcopy.IsZstd(in) {
			dec, err := blockcopy.NewDecompressor(in)
			if err != nil {
				return err
			}
			defer dec.Close()
			src, seekable = dec, false
			cfg.IFlag.Fullblock = true // decoder reads come in odd sizes
		}
		if cfg.IFlag.Direct {
			setDirect(in, true)
		}
	}
	skipB, seekB := cfg.SkipBytes(), cfg.SeekBytes()
	if skipB > 0 {
		if seekable {
			if _, err := in.Seek(skipB, io.SeekStart); err != nil {
				return fmt.Errorf("%s: cannot skip: %w", quote(cfg.If), unwrap(err))
			}
		} else if n, err := io.CopyN(io.Discard, src, skipB); err != nil && !(errors.Is(err, io.EOF) && n < skipB) {
			return fmt.Errorf("%s: cannot skip: %w", quote(cfg.If), err)
		} else if n < skipB && cfg.Status != "none" {
			r.env.Errorf("rootswap dd: %s: cannot skip to specified offset\n", cfg.If)
		}
	}

	var out *os.File
	var dst io.Writer = r.env.Stdout
	if cfg.Of != "" {
		if err := r.checkSource(inInfo); err != nil {
			return err
		}
		if err := r.checkTarget(inInfo, outInfo, 0); err != nil {
			return err
		}
		var err error
		if outInfo.isBlk() {
			out, err = r.openTarget(outInfo, seekB, false, 0)
		} else {
			out, err = r.openStreamTarget(outInfo, seekB)
		}
		if err != nil {
			return err
		}
		defer out.Close()
		dst = out
		if cfg.OFlag.Direct {
			setDirect(out, true)
		}
	}
	if seekB > 0 {
		f, ok := dst.(*os.File)
		if !ok {
			return fmt.Errorf("cannot seek on standard output")
		}
		if _, err := f.Seek(seekB, io.SeekStart); err != nil {
			return fmt.Errorf("%s: cannot seek: %w", quote(f.Name()), unwrap(err))
		}
	}

	start := r.now()
	c, err := r.loop(ctx, src, dst, out)
	if err == nil && out != nil {
		switch {
		case cfg.Conv.Fsync:
			err = out.Sync()
		case cfg.Conv.Fdatasync:
			err = unix.Fdatasync(int(out.Fd()))
		}
		if err != nil {
			err = fmt.Errorf("fsync failed for %s: %w", quote(cfg.Of), unwrap(err))
		}
	}
	r.prog.end()
	r.summary(c, r.now().Sub(start))
	return err
}

func (r *runner) openStreamTarget(outInfo file, seekB int64) (*os.File, error) {
	cfg := &r.cfg
	flags := os.O_WRONLY | unix.O_CLOEXEC
	if !cfg.Conv.Nocreat {
		flags |= os.O_CREATE
	}
	if cfg.Conv.Excl {
		flags |= os.O_EXCL
	}
	if cfg.OFlag.Sync {
		flags |= unix.O_SYNC
	}
	if cfg.OFlag.Dsync {
		flags |= unix.O_DSYNC
	}
	f, err := os.OpenFile(cfg.Of, flags, 0o666)
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", quote(cfg.Of), unwrap(err))
	}
	var st unix.Stat_t
	if !cfg.Conv.Notrunc && unix.Fstat(int(f.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
		if err := f.Truncate(seekB); err != nil {
			f.Close()
			return nil, fmt.Errorf("failed to truncate to %d bytes in output file %s: %w", seekB, quote(cfg.Of), unwrap(err))
		}
	}
	return f, nil
}

func (r *runner) loop(ctx context.Context, src io.Reader, dst io.Writer, out *os.File) (ddargs.Counts, error) {
	cfg := &r.cfg
	var c ddargs.Counts
	ibuf := blockcopy.AlignedBuffer(int(cfg.IBS))
	var obuf []byte
	if !cfg.BS {
		obuf = blockcopy.AlignedBuffer(int(cfg.OBS))[:0]
	}
	remaining := cfg.CountBytes() // bytes, with count_bytes
	var total int64 = -1
	if cfg.Count >= 0 {
		total = cfg.CountBytes()
	}
	lastSeek := false
	write := func(p []byte) error {
		if cfg.Conv.Sparse && out != nil && allZero(p) {
			if _, err := out.Seek(int64(len(p)), io.SeekCurrent); err != nil {
				return fmt.Errorf("%s: cannot seek: %w", quote(cfg.Of), unwrap(err))
			}
			lastSeek = true
		} else {
			if out != nil && cfg.OFlag.Direct && len(p)%512 != 0 {
				setDirect(out, false) // GNU too: the last, short block goes through the cache
			}
			if _, err := dst.Write(p); err != nil {
				return fmt.Errorf("error writing %s: %w", quote(name(cfg.Of, "standard output")), unwrap(err))
			}
			lastSeek = false
		}
		c.Bytes += int64(len(p))
		if int64(len(p)) == cfg.OBS {
			c.OutFull++
		} else {
			c.OutPartial++
		}
		if r.showProgress() {
			r.prog.update("copy", c.Bytes, total)
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return c, err
		}
		if cfg.Count >= 0 && !cfg.IFlag.CountBytes && c.InFull+c.InPartial >= cfg.Count {
			break
		}
		want := len(ibuf)
		if cfg.Count >= 0 && cfg.IFlag.CountBytes {
			if remaining <= 0 {
				break
			}
			want = int(min(int64(want), remaining))
		}
		var n int
		var err error
		if cfg.IFlag.Fullblock {
			n, err = io.ReadFull(src, ibuf[:want])
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
		} else {
			n, err = src.Read(ibuf[:want])
			if err == nil && n == 0 {
				continue
			}
		}
		if n > 0 {
			if n == len(ibuf) {
				c.InFull++
			} else {
				c.InPartial++
			}
			remaining -= int64(n)
			if cfg.BS {
				if werr := write(ibuf[:n]); werr != nil {
					return c, werr
				}
			} else {
				p := ibuf[:n]
				for len(p) > 0 {
					k := min(len(p), int(cfg.OBS)-len(obuf))
					obuf = append(obuf, p[:k]...)
					p = p[k:]
					if len(obuf) == int(cfg.OBS) {
						if werr := write(obuf); werr != nil {
							return c, werr
						}
						obuf = obuf[:0]
					}
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return c, fmt.Errorf("error reading %s: %w", quote(name(cfg.If, "standard input")), unwrap(err))
		}
	}
	if len(obuf) > 0 {
		if err := write(obuf); err != nil {
			return c, err
		}
	}
	if lastSeek && out != nil {
		// A file that ends in a hole gets its size from a truncate.
		if off, err := out.Seek(0, io.SeekCurrent); err == nil {
			var st unix.Stat_t
			if unix.Fstat(int(out.Fd()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size < off {
				if err := out.Truncate(off); err != nil {
					return c, fmt.Errorf("failed to truncate %s: %w", quote(cfg.Of), unwrap(err))
				}
			}
		}
	}
	return c, nil
}

func allZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

func name(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func setDirect(f *os.File, on bool) {
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
	if err != nil {
		return
	}
	if on {
		flags |= unix.O_DIRECT
	} else {
		flags &^= unix.O_DIRECT
	}
	unix.FcntlInt(f.Fd(), unix.F_SETFL, flags)
}
