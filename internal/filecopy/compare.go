package filecopy

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

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
	k := &cmp{c: c, ab: map[inode]inode{}, ba: map[inode]inode{}}
	k.w[0], k.w[1] = newWorker(nil), newWorker(nil)
	var root unix.Statx_t
	if err := statx(unix.AT_FDCWD, a, &root); err != nil {
		return nil, err
	}
	k.j = job{dev: [2]uint32{root.Dev_major, root.Dev_minor}, mnt: root.Mnt_id}
	err := k.dir([2]string{a, b}, "")
	return k.diffs, err
}

type cmp struct {
	c      Check
	j      job // the root's device and mount, for crosses
	w      [2]*worker
	ab, ba map[inode]inode // inodes of hard links, both ways
	diffs  []string
}

// sig is what must be equal in an entry and its copy.
type sig struct {
	Mode, Nlink, Uid, Gid uint32
	Size                  uint64
	Mtime, Atime          unix.StatxTimestamp
	Rdev                  [2]uint32
	Sparse                bool
	Flags                 int
	Link, Xattrs          string
}

func (k *cmp) diff(rel, what string) {
	if len(k.diffs) < maxDiffs {
		k.diffs = append(k.diffs, "/"+rel+": "+what)
	}
}

func (k *cmp) dir(p [2]string, rel string) error {
	var fd [2]int
	var names [2][]string
	for i := range p {
		f, err := open(unix.AT_FDCWD, p[i], dirFlags)
		if err != nil {
			return pathErr("open", p[i], err)
		}
		defer unix.Close(f)
		n, err := k.w[i].readNames(f)
		if err != nil {
			return pathErr("getdents", p[i], err)
		}
		fd[i], names[i] = f, slices.Clone(n)
	}
	for _, n := range names[1] {
		// mkfs.ext* makes /lost+found: a copy from xfs or btrfs has one.
		if _, ok := slices.BinarySearch(names[0], n); !ok && (rel != "" || n != "lost+found") {
			k.diff(rel+n, "only in the copy")
		}
	}
	for _, n := range names[0] {
		if _, ok := slices.BinarySearch(names[1], n); !ok {
			k.diff(rel+n, "missing in the copy")
			continue
		}
		if err := k.entry(fd, p, rel, n); err != nil || len(k.diffs) >= maxDiffs {
			return err
		}
	}
	return nil
}

func (k *cmp) entry(dfd [2]int, dir [2]string, rel, name string) error {
	var s [2]sig
	var st [2]unix.Statx_t
	var fd = [2]int{-1, -1}
	rel += name
	for i := range s {
		p := dir[i] + "/" + name
		x := &st[i]
		if err := statx(dfd[i], name, x); err != nil {
			return pathErr("statx", p, err)
		}
		typ := uint32(x.Mode) & unix.S_IFMT
		if typ == unix.S_IFREG || typ == unix.S_IFDIR {
			f, err := open(dfd[i], name, rdFlags|unix.O_NONBLOCK)
			if err != nil {
				return pathErr("open", p, err)
			}
			defer unix.Close(f)
			fd[i] = f
		}
		w := k.w[i]
		xs, err := w.xattrList(fd[i], p)
		if err != nil {
			return err
		}
		s[i] = sig{Mode: uint32(x.Mode), Uid: x.Uid, Gid: x.Gid, Mtime: x.Mtime, Rdev: [2]uint32{x.Rdev_major, x.Rdev_minor},
			Xattrs: strings.Join(xs, "\n"), Flags: getFlags(fd[i])}
		if k.c&Atime != 0 && typ != unix.S_IFLNK {
			s[i].Atime = x.Atime
		}
		if typ != unix.S_IFDIR {
			s[i].Size, s[i].Nlink = x.Size, x.Nlink
			s[i].Sparse = typ == unix.S_IFREG && int64(x.Blocks)*512 < int64(x.Size)
		}
		if typ == unix.S_IFLNK {
			n, _ := unix.Readlinkat(dfd[i], name, w.buf)
			s[i].Link = string(w.buf[:max(n, 0)])
		}
	}
	// A copy may be sparse where its source is not (zeroes): only a
	// sparse source must keep its holes.
	s[1].Sparse = s[1].Sparse && s[0].Sparse
	if s[0] != s[1] {
		k.diff(rel, fmt.Sprintf("%+v != %+v", s[0], s[1]))
		return nil
	}
	x := &st[0]
	if x.Nlink > 1 && s[0].Size == s[1].Size && x.Mode&unix.S_IFMT != unix.S_IFDIR && !k.sameLinks(inodeOf(x), inodeOf(&st[1])) {
		k.diff(rel, "hard links differ")
	}
	switch x.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if k.c&Content != 0 {
			return k.content(fd, rel)
		}
	case unix.S_IFDIR:
		if !k.j.crosses(x) {
			return k.dir([2]string{dir[0] + "/" + name, dir[1] + "/" + name}, rel+"/")
		}
	}
	return nil
}

// sameLinks says whether inode x of a and y of b pair up as every
// earlier name of either did.
func (k *cmp) sameLinks(x, y inode) bool {
	bx, ok1 := k.ab[x]
	ay, ok2 := k.ba[y]
	if !ok1 && !ok2 {
		k.ab[x], k.ba[y] = y, x
		return true
	}
	return ok1 && ok2 && bx == y && ay == x
}

func (k *cmp) content(fd [2]int, rel string) error {
	for {
		n, err := unix.Read(fd[0], k.w[0].buf)
		if err != nil {
			return err
		}
		m, err := unix.Read(fd[1], k.w[1].buf[:max(n, 1)])
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
		return nil, pathErr("listxattr", p, err)
	}
	var out []string
	for _, name := range bytes.Split(w.xl[:n], []byte{0}) {
		if len(name) == 0 || xfsACL(name) {
			continue
		}
		v, err := w.get(fd, p, string(name))
		if err != nil {
			return nil, pathErr("getxattr "+string(name), p, err)
		}
		out = append(out, string(name)+"="+string(w.xv[:v]))
	}
	slices.Sort(out)
	return out, nil
}
