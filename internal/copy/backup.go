package copy

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// DefaultBackupLevel is zstd's own default, -3.
const DefaultBackupLevel = 3

// frameSize is the uncompressed size of one zstd frame of a backup. The
// image is a sequence of independent frames (what pzstd and zstd -T do
// internally), so all cores compress at once and a run of zeros is one
// precomputed frame repeated; zstd -d reads concatenated frames as one
// stream. 8 MiB is four times the window of level 3, so cutting the
// history at frame edges costs well under 1 % of ratio.
const frameSize = 8 << 20

// EncoderLevel maps a zstd command-line level (1..19) onto the four
// levels klauspost/compress implements: 1 fastest, 2-5 default (≈ zstd
// -3), 6-9 better (≈ -7), 10 and above best (≈ -11).
func EncoderLevel(level int) zstd.EncoderLevel {
	switch {
	case level <= 1:
		return zstd.SpeedFastest
	case level <= 5:
		return zstd.SpeedDefault
	case level <= 9:
		return zstd.SpeedBetterCompression
	default:
		return zstd.SpeedBestCompression
	}
}

// imager turns the stream of copied pieces into a zstd image of the
// source range starting at pos, with zeros for the ranges not copied.
type imager struct {
	out       io.Writer
	enc       *zstd.Encoder
	pos       int64 // source offset of the next image byte
	frame     []byte
	hasData   bool
	zeroFrame []byte
	pool      chan []byte
	work      chan *frameJob
	queue     chan *frameJob
	workers   sync.WaitGroup
	writer    sync.WaitGroup

	mu      sync.Mutex
	err     error
	written int64
}

type frameJob struct {
	src []byte
	out chan []byte
}

func newImager(out io.Writer, level int, start int64) (*imager, error) {
	if level == 0 {
		level = DefaultBackupLevel
	}
	n := runtime.GOMAXPROCS(0)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(EncoderLevel(level)), zstd.WithEncoderConcurrency(n))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	m := &imager{
		out:   out,
		enc:   enc,
		pos:   start,
		pool:  make(chan []byte, 2*n+2),
		work:  make(chan *frameJob, 2*n),
		queue: make(chan *frameJob, 2*n+1),
	}
	for range cap(m.pool) {
		m.pool <- make([]byte, 0, frameSize)
	}
	m.zeroFrame = enc.EncodeAll(make([]byte, frameSize), nil)
	for range n {
		m.workers.Go(func() {
			for j := range m.work {
				c := m.enc.EncodeAll(j.src, make([]byte, 0, len(j.src)/2))
				m.pool <- j.src[:0]
				j.out <- c
			}
		})
	}
	m.writer.Go(func() {
		for j := range m.queue {
			c := <-j.out
			m.mu.Lock()
			if m.err == nil {
				n, err := m.out.Write(c)
				m.written += int64(n)
				m.err = err
			}
			m.mu.Unlock()
		}
	})
	return m, nil
}

func (m *imager) failed() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// writeAt adds p, the source bytes at off, after zeros up to off.
func (m *imager) writeAt(p []byte, off int64) error {
	if off < m.pos {
		return fmt.Errorf("backup: piece at %d is behind the image at %d", off, m.pos)
	}
	if err := m.zeros(off - m.pos); err != nil {
		return err
	}
	for len(p) > 0 {
		if err := m.take(); err != nil {
			return err
		}
		k := min(len(p), frameSize-len(m.frame))
		m.frame = append(m.frame, p[:k]...)
		m.hasData = true
		m.pos += int64(k)
		p = p[k:]
		if len(m.frame) == frameSize {
			m.submit()
		}
	}
	return nil
}

// zeros adds n zero bytes; whole zero frames cost nothing but a write.
func (m *imager) zeros(n int64) error {
	for n > 0 {
		if m.frame == nil && n >= frameSize {
			if err := m.failed(); err != nil {
				return err
			}
			j := &frameJob{out: make(chan []byte, 1)}
			j.out <- m.zeroFrame
			m.queue <- j
			m.pos += frameSize
			n -= frameSize
			continue
		}
		if err := m.take(); err != nil {
			return err
		}
		k := int(min(n, int64(frameSize-len(m.frame))))
		l := len(m.frame)
		m.frame = m.frame[:l+k]
		clear(m.frame[l:])
		m.pos += int64(k)
		n -= int64(k)
		if len(m.frame) == frameSize {
			m.submit()
		}
	}
	return nil
}

func (m *imager) take() error {
	if m.frame != nil {
		return nil
	}
	if err := m.failed(); err != nil {
		return err
	}
	m.frame = <-m.pool
	m.hasData = false
	return nil
}

func (m *imager) submit() {
	j := &frameJob{out: make(chan []byte, 1)}
	if !m.hasData && len(m.frame) == frameSize {
		j.out <- m.zeroFrame
		m.pool <- m.frame[:0]
	} else {
		j.src = m.frame
		m.work <- j
	}
	m.queue <- j
	m.frame = nil
}

// close pads the image with zeros up to end, flushes and returns the
// compressed size.
func (m *imager) close(end int64) (int64, error) {
	err := m.zeros(end - m.pos)
	if err == nil && len(m.frame) > 0 {
		m.submit()
	}
	m.stop()
	if err == nil {
		err = m.failed()
	}
	return m.written, err
}

func (m *imager) abort() { m.stop() }

func (m *imager) stop() {
	close(m.work)
	m.workers.Wait()
	close(m.queue)
	m.writer.Wait()
	m.enc.Close()
}

// ErrBackupExists is returned when the backup file is already there:
// a backup is never overwritten.
var ErrBackupExists = errors.New("backup file exists (a backup is never overwritten: remove it or choose another name)")
