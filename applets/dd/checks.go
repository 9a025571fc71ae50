package dd

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// mountHit is a mount of a device, or of a device related to it.
type mountHit struct {
	m   mountinfo.Mount
	why string // empty for the device itself
}

// mountsOf lists the mounts of dev and of every device stacked with it
// (its partitions, its disk, what is built on it or what it is built on).
func mountsOf(sysRoot string, t mountinfo.Table, dev uint64) []mountHit {
	var hits []mountHit
	for _, m := range t {
		if len(blockdev.MountedAt(mountinfo.Table{m}, dev)) > 0 {
			hits = append(hits, mountHit{m: m})
			continue
		}
		if m.Major == 0 {
			continue
		}
		if ok, why := blockdev.Related(sysRoot, m.Dev(), dev); ok {
			hits = append(hits, mountHit{m: m, why: why})
		}
	}
	return hits
}

func describeHits(hits []mountHit) string {
	var parts []string
	seen := map[string]bool{}
	for _, h := range hits {
		s := fmt.Sprintf("%s (%s %d:%d)", h.m.Point, h.m.FSType, h.m.Major, h.m.Minor)
		if h.why != "" {
			s += " — " + h.why
		}
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, ", ")
}

func superWritable(m mountinfo.Mount) bool {
	for _, o := range strings.Split(m.SuperOptions, ",") {
		if o == "ro" {
			return false
		}
	}
	return true
}

// mounts reads the mount table of the calling thread: the same as the
// process's, except when the applet runs in-process on a thread that
// unshared its mount namespace (the rescue shell, the root tests).
func (r *runner) mounts() (mountinfo.Table, error) {
	t, err := mountinfo.Read(r.env.ProcRoot, "thread-self")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table to check if= and of=: %w", err)
	}
	return t, nil
}

// checkSource refuses to copy a filesystem that is mounted read-write
// unless --allow-rw-source, and then warns.
func (r *runner) checkSource(inInfo file) error {
	if !inInfo.isBlk() {
		return nil
	}
	t, err := r.mounts()
	if err != nil {
		return err
	}
	var rw []mountHit
	for _, h := range mountsOf(r.env.SysRoot, t, inInfo.st.Rdev) {
		if superWritable(h.m) {
			rw = append(rw, h)
		}
	}
	if len(rw) == 0 {
		return nil
	}
	if !r.cfg.AllowRWSource {
		return fmt.Errorf("refusing to copy %s: it is mounted read-write at %s; stop its writers and remount it read-only (mount -o remount,ro %s), or pass --allow-rw-source to copy it anyway (the copy will not be consistent)",
			r.cfg.If, describeHits(rw), rw[0].m.Point)
	}
	if r.cfg.Status != "none" {
		r.err.errorf(nil, "warning: %s is mounted read-write at %s: the copy will not be consistent", r.cfg.If, describeHits(rw))
	}
	return nil
}

// checkTarget refuses, before anything is written, a target that is
// mounted, that overlaps the source, or that is too small.
func (r *runner) checkTarget(inInfo, outInfo file, need int64) error {
	cfg := &r.cfg
	if outInfo.exists && inInfo.exists && outInfo.st.Dev == inInfo.st.Dev && outInfo.st.Ino == inInfo.st.Ino {
		return fmt.Errorf("refusing to write %s: it is the input file %s itself", cfg.Of, cfg.If)
	}
	if !outInfo.isBlk() {
		// A file on the filesystem being copied (or a backup there)
		// would change the source under the copy.
		for _, p := range []string{cfg.Of, cfg.Backup} {
			if p == "" || !inInfo.isBlk() {
				continue
			}
			if dev, ok := fileSystemDev(p); ok {
				if rel, why := blockdev.Related(r.env.SysRoot, dev, inInfo.st.Rdev); rel {
					return fmt.Errorf("refusing to write %s: it is on the device being copied, %s (%s)", p, cfg.If, why)
				}
			}
		}
		return nil
	}
	outDev := outInfo.st.Rdev
	if inInfo.isBlk() {
		if rel, why := blockdev.Related(r.env.SysRoot, inInfo.st.Rdev, outDev); rel {
			return fmt.Errorf("refusing to write %s: it overlaps the input %s: %s", cfg.Of, cfg.If, why)
		}
	}
	t, err := r.mounts()
	if err != nil {
		return err
	}
	if hits := mountsOf(r.env.SysRoot, t, outDev); len(hits) > 0 {
		return fmt.Errorf("refusing to write %s: it is mounted at %s; unmount it first", cfg.Of, describeHits(hits))
	}
	size, err := blockdev.FileSize(cfg.Of)
	if err != nil {
		return err
	}
	if need > size {
		return fmt.Errorf("refusing to write %s: it is %d bytes (%s), the copy needs %d bytes (%s)",
			cfg.Of, size, humanize.IBytes(uint64(size)), need, humanize.IBytes(uint64(need)))
	}
	return nil
}

// fileSystemDev is the st_dev of the filesystem a file is (or would be
// created) on.
func fileSystemDev(p string) (uint64, bool) {
	var st unix.Stat_t
	if unix.Stat(p, &st) == nil {
		return st.Dev, true
	}
	if unix.Stat(filepath.Dir(p), &st) == nil {
		return st.Dev, true
	}
	return 0, false
}
