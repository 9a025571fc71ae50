package filecopy

import (
	"bytes"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// Check says what Compare compares besides the metadata a copy keeps.
type Check uint8

const (
	// Content reads every regular file of both trees.
	Content Check = 1 << iota
	// Atime compares access times too (not symlinks': readlink sets
	// them). Not after a live pass: reads since then set atimes only.
	Atime
)

// maxDiffs bounds what Compare reports.
const maxDiffs = 20

// Compare walks the trees a and b (not into other mounts below a) and
// returns how they differ, at most 20 differences: names missing on
// either side, type, mode, owner, size, mtime, device number, symlink
// target, xattrs, the kept inode flags, the hard-link structure, holes
// (a sparse file's copy is sparse), and with c the contents and atimes.
// Directories' sizes and link counts are the filesystem's own.
func Compare(a, b string, c Check) ([]string, error) {
	k := &cmp{c: c, ab: map[uint64]uint64{}, ba: map[uint64]uint64{}}
	k.w[0], k.w[1] = newWorker(nil), newWorker(nil)
	var root unix.Statx_t
	if err := statx(unix.AT_FDCWD, a, &root); err != nil {
		return nil, err
	}
	k.j = job{dev: [2]uint32{root.Dev_major, root.Dev_minor}, mnt: root.Mnt_id}
	err := k.dir(a, b, "")
	return k.diffs, err
}

type cmp struct {
	c      Check
	j      job // the root's device and mount, for crosses
	w      [2]*worker
	ab, ba map[uint64]uint64 // inodes of hard links, both ways
	diffs  []string
}

func (k *cmp) diff(rel, format string, args ...any) {
	if len(k.diffs) < maxDiffs {
		k.diffs = append(k.diffs, "/"+rel+": "+fmt.Sprintf(format, args...))
	}
}

func (k *cmp) dir(a, b, rel string) error {
	var fd [2]int
	var names [2][]string
	for i, p := range []string{a, b} {
		f, err := open(unix.AT_FDCWD, p, dirFlags)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		defer unix.Close(f)
		n, err := k.w[i].readNames(f)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fd[i], names[i] = f, slices.Clone(n)
	}
	for _, n := range names[1] {
		if _, ok := slices.BinarySearch(names[0], n); !ok {
			k.diff(rel+n, "only in the copy")
		}
	}
	for _, n := range names[0] {
		if _, ok := slices.BinarySearch(names[1], n); !ok {
			k.diff(rel+n, "missing in the copy")
			continue
		}
		if err := k.entry(fd, a+"/"+n, b+"/"+n, rel+n, n); err != nil {
			return err
		}
		if len(k.diffs) >= maxDiffs {
			return nil
		}
	}
	return nil
}

func (k *cmp) entry(fd [2]int, a, b, rel, name string) error {
	var st [2]unix.Statx_t
	for i := range st {
		if err := statx(fd[i], name, &st[i]); err != nil {
			return fmt.Errorf("%s: %w", []string{a, b}[i], err)
		}
	}
	x, y := &st[0], &st[1]
	typ := uint32(x.Mode) & unix.S_IFMT
	if x.Mode != y.Mode {
		k.diff(rel, "mode %o != %o", x.Mode, y.Mode)
		return nil
	}
	if x.Uid != y.Uid || x.Gid != y.Gid {
		k.diff(rel, "owner %d:%d != %d:%d", x.Uid, x.Gid, y.Uid, y.Gid)
	}
	if x.Mtime != y.Mtime || k.c&Atime != 0 && typ != unix.S_IFLNK && x.Atime != y.Atime {
		k.diff(rel, "times %v %v != %v %v", x.Mtime, x.Atime, y.Mtime, y.Atime)
	}
	if x.Rdev_major != y.Rdev_major || x.Rdev_minor != y.Rdev_minor {
		k.diff(rel, "device numbers differ")
	}
	if typ != unix.S_IFDIR {
		if x.Size != y.Size || x.Nlink != y.Nlink {
			k.diff(rel, "size %d, %d links != %d, %d links", x.Size, x.Nlink, y.Size, y.Nlink)
		}
		if x.Nlink > 1 && !k.sameLinks(x.Ino, y.Ino) {
			k.diff(rel, "hard links differ")
		}
		if typ == unix.S_IFREG && int64(x.Blocks)*512 < int64(x.Size) && int64(y.Blocks)*512 >= int64(y.Size) {
			k.diff(rel, "sparse, its copy not (%d of %d bytes allocated)", y.Blocks*512, y.Size)
		}
	}
	var sf, df int = -1, -1
	if typ == unix.S_IFREG || typ == unix.S_IFDIR {
		var err error
		if sf, err = open(fd[0], name, rdFlags|unix.O_NONBLOCK); err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		defer unix.Close(sf)
		if df, err = open(fd[1], name, rdFlags|unix.O_NONBLOCK); err != nil {
			return fmt.Errorf("%s: %w", b, err)
		}
		defer unix.Close(df)
		if f, g := getFlags(sf), getFlags(df); f != g {
			k.diff(rel, "flags %#x != %#x", f, g)
		}
	}
	xa, err := k.w[0].xattrList(sf, a)
	if err != nil {
		return err
	}
	xb, err := k.w[1].xattrList(df, b)
	if err != nil {
		return err
	}
	if !slices.Equal(xa, xb) {
		k.diff(rel, "xattrs %q != %q", xa, xb)
	}
	switch typ {
	case unix.S_IFLNK:
		la, _ := unix.Readlinkat(fd[0], name, k.w[0].buf)
		lb, _ := unix.Readlinkat(fd[1], name, k.w[1].buf)
		if !bytes.Equal(k.w[0].buf[:max(la, 0)], k.w[1].buf[:max(lb, 0)]) {
			k.diff(rel, "symlink targets differ")
		}
	case unix.S_IFREG:
		if k.c&Content != 0 && x.Size == y.Size {
			return k.content(sf, df, rel)
		}
	case unix.S_IFDIR:
		if !k.j.crosses(x) {
			return k.dir(a, b, rel+"/")
		}
	}
	return nil
}

// sameLinks says whether inode x of a and y of b pair up as every
// earlier name of either did.
func (k *cmp) sameLinks(x, y uint64) bool {
	bx, ok1 := k.ab[x]
	ay, ok2 := k.ba[y]
	if !ok1 && !ok2 {
		k.ab[x], k.ba[y] = y, x
		return true
	}
	return ok1 && ok2 && bx == y && ay == x
}

func (k *cmp) content(sf, df int, rel string) error {
	for {
		n, err := unix.Read(sf, k.w[0].buf)
		if err != nil {
			return err
		}
		m, err := unix.Read(df, k.w[1].buf[:max(n, 1)])
		if err != nil {
			return err
		}
		if n != m || !bytes.Equal(k.w[0].buf[:n], k.w[1].buf[:m]) {
			k.diff(rel, "contents differ")
			return nil
		}
		if n == 0 {
			return nil
		}
	}
}

// xattrList is every xattr of the file (fd, or path p) as name=value,
// sorted.
func (w *worker) xattrList(fd int, p string) ([]string, error) {
	n, err := w.list(fd, p)
	if err == unix.ENOTSUP {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the xattrs of %s: %w", p, err)
	}
	var out []string
	for _, name := range bytes.Split(w.xl[:n], []byte{0}) {
		if len(name) == 0 || xfsACL(name) {
			continue
		}
		v, err := w.get(fd, p, string(name))
		if err != nil {
			return nil, fmt.Errorf("xattr %s of %s: %w", name, p, err)
		}
		out = append(out, string(name)+"="+string(w.xv[:v]))
	}
	slices.Sort(out)
	return out, nil
}
