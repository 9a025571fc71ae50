package blockdev

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// Node is what a path names for reading or writing: a block device
// (Block, Rdev) or a regular file (Dev and Ino of the file).
type Node struct {
	Path     string
	Block    bool
	Rdev     uint64
	Dev, Ino uint64
}

// NodeOf stats path: a block device or a regular file; anything else
// is an error naming what it is.
func NodeOf(path string) (Node, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return Node{}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		return Node{Path: path, Block: true, Rdev: st.Rdev}, nil
	case unix.S_IFREG:
		return Node{Path: path, Dev: st.Dev, Ino: st.Ino}, nil
	}
	return Node{}, fmt.Errorf("%s: neither a block device nor a regular file: %s", path, fileKind(st.Mode))
}

// Stack is one look at how block devices lie on each other: partitions
// on disks, device-mapper and md devices on their slaves, loop devices on
// their backing files, files on the filesystems that hold them. It is
// the one home of "would writing to a overwrite data of b" (Overlap) and
// of "is any of it in use" (InUse). The zero value but SysRoot reads the
// live system.
type Stack struct {
	SysRoot  string
	ProcRoot string // for InUse: /proc/swaps and every mount namespace
	Root     string // for InUse: /etc/fstab and the /dev links it names ("" is /)
	// Mounts maps a backing file's anonymous st_dev (btrfs shows 0:N) to
	// the block device mounted with it; InUse reads every namespace's.
	Mounts mountinfo.Table
	// LoopFile is the st_dev and inode of the file behind an attached
	// loop device; nil asks the kernel (LOOP_GET_STATUS64 on /dev/NAME).
	LoopFile func(name string) (dev, ino uint64, ok bool)

	loops     map[string]string // attached loop device -> key of its file; read once
	loopNames []string          // the same, in sysfs order
	names     map[string]string // key -> how messages name it
	slaves    map[string][]string
}

// Related reports whether writing to one of the devices a and b would
// overwrite data of the other (see Stack.Overlap), why says how ("dm-0 is
// built on sda2, sda2 is a partition of sda").
func Related(sysRoot string, a, b uint64) (bool, string) {
	return (&Stack{SysRoot: sysRoot}).Overlap(Node{Block: true, Rdev: a}, Node{Block: true, Rdev: b})
}

// Overlap reports whether writing to one of a and b would overwrite data
// of the other: the same device or file; one a partition of the other;
// one built on the other through holders and slaves; a loop device and
// its backing file, or the filesystem (device) that file is on; two loop
// devices on one file. Sibling partitions, or two files on one
// filesystem, do not overlap. why names each link, top first. Devices
// missing from sysfs overlap only themselves.
func (s *Stack) Overlap(a, b Node) (bool, string) {
	if ok, why := s.StoredOn(a, b); ok {
		return ok, why
	}
	return s.StoredOn(b, a)
}

// StoredOn reports whether upper is lower or stored on it: a partition
// of it, built on it, a loop device on it (as a file) or on a file of its
// filesystem, a file on it; why names each link, top first.
func (s *Stack) StoredOn(upper, lower Node) (bool, string) {
	ku, kl := s.key(upper), s.key(lower)
	if upper.Block && lower.Block && upper.Rdev == lower.Rdev {
		return true, fmt.Sprintf("%d:%d is the same device", unix.Major(upper.Rdev), unix.Minor(upper.Rdev))
	}
	if ku == "" || kl == "" {
		return false, ""
	}
	if ku == kl {
		return true, upper.Path + " and " + lower.Path + " are the same file"
	}
	if path := s.search(ku, kl, false); path != nil {
		return true, strings.Join(path, ", ")
	}
	// Walking up from lower as well tolerates a sysfs where only one
	// side of a link is recorded.
	if path := s.search(kl, ku, true); path != nil {
		for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
			path[i], path[j] = path[j], path[i]
		}
		return true, strings.Join(path, ", ")
	}
	return false, ""
}

// key is a node of the graph: a block device's sysfs name, or
// "file:DEV:INO"; "" for a device sysfs does not know.
func (s *Stack) key(n Node) string {
	if n.Block {
		name, _ := nameOf(s.SysRoot, n.Rdev)
		return name
	}
	k := fileKey(n.Dev, n.Ino)
	s.setName(k, n.Path)
	return k
}

func fileKey(dev, ino uint64) string {
	return "file:" + strconv.FormatUint(dev, 10) + ":" + strconv.FormatUint(ino, 10)
}

func (s *Stack) setName(k, name string) {
	if s.names == nil {
		s.names = map[string]string{}
	}
	if _, ok := s.names[k]; !ok && name != "" {
		s.names[k] = name
	}
}

func (s *Stack) name(k string) string {
	if n, ok := s.names[k]; ok {
		return n
	}
	return k
}

func nameOf(sysRoot string, dev uint64) (string, bool) {
	dir, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "dev", "block",
		fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))))
	if err != nil {
		return "", false
	}
	return filepath.Base(dir), true
}

// edge is one link out of a node: to the node it leads to, and the words
// for it.
type edge struct{ to, why string }

// search is a breadth-first search from start to goal, going up or down;
// it returns the words of each link on the way, or nil.
func (s *Stack) search(start, goal string, up bool) []string {
	prev := map[string]edge{start: {}} // how each node was reached: from where, in what words
	queue := []string{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range s.edges(n, up) {
			if _, seen := prev[e.to]; seen {
				continue
			}
			prev[e.to] = edge{n, e.why}
			if e.to == goal {
				var path []string
				for cur := goal; cur != start; cur = prev[cur].to {
					path = append([]string{prev[cur].why}, path...)
				}
				return path
			}
			queue = append(queue, e.to)
		}
	}
	return nil
}

// edges lead down to what a node is stored on (a partition's disk, a
// holder's slaves, a file's filesystem device) or up to what is stored on
// it (a disk's partitions, a device's holders); either way from a loop
// device to its file and from a file to its loop devices: they are one.
func (s *Stack) edges(n string, up bool) []edge {
	var es []edge
	if k, ok := strings.CutPrefix(n, "file:"); ok {
		d, _, _ := strings.Cut(k, ":")
		if dev, err := strconv.ParseUint(d, 10, 64); err == nil && !up {
			if name, ok := s.fsDevice(dev); ok {
				es = append(es, edge{name, s.name(n) + " is on " + name})
			}
		}
		return append(es, s.loopsOn(n)...)
	}
	dir, err := sysDirOfName(s.SysRoot, n)
	if err != nil {
		return nil
	}
	if up {
		for _, p := range partitionsOf(dir) {
			es = append(es, edge{p, p + " is a partition of " + n})
		}
		for _, h := range s.holders(n) {
			es = append(es, edge{h, h + " is built on " + n})
		}
	} else {
		if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
			p := filepath.Base(filepath.Dir(dir))
			es = append(es, edge{p, n + " is a partition of " + p})
		}
		for _, l := range readNames(filepath.Join(dir, "slaves")) {
			es = append(es, edge{l, n + " is built on " + l})
		}
	}
	if f, ok := s.loopMap()[n]; ok {
		es = append(es, edge{f, n + " is backed by " + s.name(f)})
	}
	return es
}

func (s *Stack) loopsOn(file string) []edge {
	var es []edge
	s.loopMap()
	for _, l := range s.loopNames { // sysfs order: the same every time
		if f := s.loops[l]; f == file {
			es = append(es, edge{l, l + " is backed by " + s.name(f)})
		}
	}
	return es
}

// holders are the devices built on name: its holders/ directory, and
// any device whose slaves/ names it (either side may be all there is).
func (s *Stack) holders(name string) []string {
	if s.slaves == nil {
		s.slaves = map[string][]string{}
		ents, _ := os.ReadDir(filepath.Join(s.SysRoot, "class", "block"))
		for _, e := range ents {
			for _, l := range readNames(filepath.Join(s.SysRoot, "class", "block", e.Name(), "slaves")) {
				s.slaves[l] = append(s.slaves[l], e.Name())
			}
		}
	}
	hs := s.slaves[name]
	if dir, err := sysDirOfName(s.SysRoot, name); err == nil {
		for _, h := range readNames(filepath.Join(dir, "holders")) {
			if !contains(hs, h) {
				hs = append(hs, h)
			}
		}
	}
	return hs
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// loopMap reads, once, which file each attached loop device is backed by.
func (s *Stack) loopMap() map[string]string {
	if s.loops != nil {
		return s.loops
	}
	s.loops = map[string]string{}
	ents, _ := os.ReadDir(filepath.Join(s.SysRoot, "class", "block"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(s.SysRoot, "class", "block", e.Name(), "loop", "backing_file"))
		if err != nil {
			continue // not a loop device, or not attached
		}
		file := strings.TrimSpace(string(b))
		get := s.LoopFile
		if get == nil {
			get = loopFile
		}
		dev, ino, ok := get(e.Name())
		if !ok {
			// No node to ask (a container's /dev): the path the kernel
			// gives is this namespace's name for it, most of the time.
			var st unix.Stat_t
			if unix.Stat(strings.TrimSuffix(file, " (deleted)"), &st) != nil {
				continue
			}
			dev, ino = st.Dev, st.Ino
		}
		k := fileKey(dev, ino)
		s.setName(k, file)
		s.loops[e.Name()] = k
		s.loopNames = append(s.loopNames, e.Name())
	}
	return s.loops
}

func loopFile(name string) (uint64, uint64, bool) {
	f, err := os.Open("/dev/" + name)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	st, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil {
		return 0, 0, false
	}
	return st.Device, st.Inode, true
}

// fsDevice is the block device a filesystem with st_dev dev is on: dev
// itself, or for an anonymous device (btrfs) the source of its mount.
func (s *Stack) fsDevice(dev uint64) (string, bool) {
	if name, ok := nameOf(s.SysRoot, dev); ok {
		return name, true
	}
	for _, m := range s.Mounts {
		if m.Dev() != dev || !filepath.IsAbs(m.Source) {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(m.Source, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
			return nameOf(s.SysRoot, st.Rdev)
		}
	}
	return "", false
}
