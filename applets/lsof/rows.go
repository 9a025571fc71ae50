package lsof

import (
	"fmt"
	"os/user"
	"runtime"
	"strconv"
	"sync"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// row is one output line. The column texts are what the table prints;
// the numbers behind them are kept for --json.
type row struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	Command string
	PID     int
	UID     int
	User    string
	FD      string // "cwd", "txt", "mem", "DEL", "3w"
	Mode    string // "r", "w", "u" for descriptors
	Type    string
	Device  string
	SizeOff string
	Node    string
	Name    string // as printed, " (deleted)" included
	Deleted bool
	MntID   int
	flags   uint32 // the open flags
	// Note marks rows real lsof does not print: unix sockets bound on a
	// selected filesystem.
	Note string

	fdNum    int // -1 for cwd, rtd, txt, mem, DEL
	dev      uint64
	hasDev   bool
	sizeOff  int64
	sizeKind uint8 // sizeNone, isSize or isOffset
	ino      uint64
	hasIno   bool
}

const (
	sizeNone uint8 = iota
	isSize
	isOffset
)

const boundNote = "bound here; lsof omits"

// users caches uid → login name lookups (/etc/passwd, no cgo); numeric
// prints every uid as a number, as lsof -l does.
type users struct {
	names   map[int]string
	numeric bool
}

func newUsers(numeric bool) users { return users{names: map[int]string{}, numeric: numeric} }

func (u users) name(uid int) string {
	if uid < 0 {
		return ""
	}
	if n, ok := u.names[uid]; ok {
		return n
	}
	n := strconv.Itoa(uid)
	if usr, err := user.LookupId(n); err == nil && !u.numeric {
		n = usr.Username
	} else {
		n = fmt.Sprintf("%8d", uid) // lsof's numeric form, 8 wide
	}
	u.names[uid] = n
	return n
}

// texts caches the column texts that repeat across rows (devices,
// descriptor numbers, inodes): a busy host has a hundred thousand rows
// naming a few devices and a few thousand files.
type texts struct {
	devs  map[uint64]string
	fds   map[int]string // fd<<8 | mode letter
	nodes map[uint64]string
}

func newTexts() *texts {
	return &texts{devs: map[uint64]string{}, fds: map[int]string{}, nodes: map[uint64]string{}}
}

// device spells a device number the way lsof does: "254,0".
func (c *texts) device(dev uint64) string {
	s, ok := c.devs[dev]
	if !ok {
		s = strconv.FormatUint(uint64(unix.Major(dev)), 10) + "," + strconv.FormatUint(uint64(unix.Minor(dev)), 10)
		c.devs[dev] = s
	}
	return s
}

// fd is the FD column: the number and the access letter.
func (c *texts) fd(num int, access byte) string {
	key := num<<8 | int(access)
	s, ok := c.fds[key]
	if !ok {
		s = strconv.Itoa(num)
		if access != 0 {
			s += string(access)
		}
		c.fds[key] = s
	}
	return s
}

func (c *texts) node(ino uint64) string {
	s, ok := c.nodes[ino]
	if !ok {
		s = strconv.FormatUint(ino, 10)
		if len(c.nodes) < 1<<16 {
			c.nodes[ino] = s
		}
	}
	return s
}

// listRows makes the rows of every process, in lsof's order: cwd, rtd,
// txt, mapped files, descriptors; keeping those the filter selects. A
// busy host has a hundred thousand rows: the processes are split across
// the CPUs, each run written into its own stretch of one slice.
func listRows(snap *procscan.Snapshot, f *filter, u users, k *kernelDevs) []row {
	procs := snap.Procs
	// Users are looked up first: the workers only read the cache.
	for _, p := range procs {
		u.name(p.UID)
	}
	bound := make([]int, len(procs)+1) // bound[i]: rows before process i, at most
	for i, p := range procs {
		bound[i+1] = bound[i] + 3 + len(p.Maps) + len(p.FDs)
	}
	rows := make([]row, bound[len(procs)])
	workers := max(1, min(runtime.GOMAXPROCS(0), len(procs)/64))
	ends := make([]int, workers)
	starts := make([]int, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(procs)/workers, (w+1)*len(procs)/workers
		starts[w] = bound[lo]
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newTexts()
			out := rows[bound[lo]:bound[lo]:bound[hi]]
			for _, p := range procs[lo:hi] {
				out = procRows(snap, p, f, u, c, k, out)
			}
			ends[w] = bound[lo] + len(out)
		}()
	}
	wg.Wait()
	n := 0
	for w := range workers {
		n += copy(rows[n:], rows[starts[w]:ends[w]])
	}
	return rows[:n]
}

// kernelDevs are the devices of the kernel's internal filesystems that
// lsof prints for pipes, anonymous inodes and sockets (one for all of
// them); zero when unknown (a fixture tree). procRoot is set when the
// scan read the live procfs: sockets in no table are asked for their
// protocol there.
type kernelDevs struct {
	pipe, anon, sock uint64
	procRoot         string
}

// unixState is the state lsof prints after a unix socket's type.
func unixState(u procscan.UnixSocket) string {
	if u.Listening() {
		return "LISTEN"
	}
	switch u.State {
	case 1:
		return "UNCONNECTED"
	case 2:
		return "CONNECTING"
	case 3:
		return "CONNECTED"
	case 4:
		return "DISCONNECTING"
	}
	return "UNKNOWN"
}

// setDev, setNode, setSize and setOffset fill a column and the number
// behind it.
func (r *row) setDev(c *texts, dev uint64) {
	r.Device, r.dev, r.hasDev = c.device(dev), dev, true
}

func (r *row) setNode(c *texts, ino uint64) {
	r.Node, r.ino, r.hasIno = c.node(ino), ino, true
}

func (r *row) setSize(n int64) {
	r.SizeOff, r.sizeOff, r.sizeKind = strconv.FormatInt(n, 10), n, isSize
}

// setOffset spells an offset as lsof does: 0t and decimal up to eight
// digits, 0x and hex beyond.
func (r *row) setOffset(n int64) {
	r.sizeOff, r.sizeKind = n, isOffset
	if n >= 0 && n < 1e8 {
		r.SizeOff = "0t" + strconv.FormatInt(n, 10)
	} else {
		r.SizeOff = "0x" + strconv.FormatUint(uint64(n), 16)
	}
}

// setStat fills TYPE, DEVICE, SIZE/OFF and NODE from a stat, the way lsof
// does: a device's own number for character and block devices, the size
// of regular files and directories, else the offset.
func (r *row) setStat(c *texts, st *procscan.Stat, off int64) {
	r.Type = fileType(st.Mode)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR, unix.S_IFBLK:
		r.setDev(c, st.Rdev)
	default:
		r.setDev(c, st.Dev)
	}
	r.setNode(c, st.Ino)
	if r.Type == "REG" || r.Type == "DIR" {
		r.setSize(st.Size)
	} else {
		r.setOffset(off)
	}
}

// procRows appends the rows of one process that the filter selects.
func procRows(snap *procscan.Snapshot, p *procscan.Process, f *filter, u users, c *texts, k *kernelDevs, rows []row) []row {
	pflags, ok := f.proc(p)
	if !ok {
		return rows
	}
	sel := f.sel
	named := len(sel) > 0
	base := row{Command: p.Comm, PID: p.PID, UID: p.UID, User: u.names[p.UID], fdNum: -1}
	t := snap.Mounts[p.MountNS]
	for _, l := range []struct {
		fd   string
		link *procscan.Link
	}{{"cwd", &p.Cwd}, {"rtd", &p.Root}} {
		if l.link.Name == "" || !f.keep(pflags|f.fd(-1, l.fd)|nameFlag(named && matchLink(sel, l.link, true))) {
			continue
		}
		r := base
		r.FD, r.Type, r.Name, r.Deleted = l.fd, "DIR", withDeleted(l.link.Name, l.link.Deleted), l.link.Deleted
		if l.link.HasMount {
			r.setDev(c, l.link.Dev)
			r.MntID = l.link.Mount.ID
		}
		if st := l.link.Stat; st != nil {
			r.setStat(c, st, 0)
		}
		rows = append(rows, r)
	}
	exe := &p.Exe
	if exe.Name != "" && f.keep(pflags|f.fd(-1, "txt")|nameFlag(named && matchLink(sel, exe, false))) {
		r := base
		r.FD, r.Type, r.Name, r.Deleted = "txt", "REG", withDeleted(exe.Name, exe.Deleted), exe.Deleted
		if exe.HasIno || exe.HasMount {
			r.setDev(c, exe.Dev)
		}
		if exe.HasIno {
			r.setNode(c, exe.Ino)
		}
		if exe.Stat != nil {
			r.setStat(c, exe.Stat, 0)
		}
		rows = append(rows, r)
	}
	var seen map[[2]uint64]bool
	if exe.HasIno || len(p.Maps) > 0 {
		seen = map[[2]uint64]bool{}
	}
	if exe.HasIno {
		seen[[2]uint64{exe.Dev, exe.Ino}] = true
	}
	for _, m := range p.Maps {
		key := [2]uint64{m.Dev(), m.Inode}
		if seen[key] {
			continue
		}
		seen[key] = true
		fd := "mem"
		if m.Deleted {
			fd = "DEL"
		}
		if !f.keep(pflags | f.fd(-1, fd) | nameFlag(named && matchFile(sel, m.Dev(), m.Inode, m.Path, m.Deleted))) {
			continue
		}
		r := base
		r.FD, r.Type, r.Name = fd, "REG", m.Path
		r.setDev(c, m.Dev())
		r.setNode(c, m.Inode)
		st := snap.MapStat(m)
		if st != nil {
			r.Type = fileType(st.Mode)
		}
		if m.Deleted {
			r.Deleted = true // lsof prints the bare name here
		} else if st != nil {
			r.setSize(st.Size)
		}
		rows = append(rows, r)
	}
	for i := range p.FDs {
		fd := &p.FDs[i]
		if !f.keep(pflags|f.fd(fd.Num, "")) && !named {
			continue // no name selector can add it either
		}
		if r, nm := fdRow(snap, p, fd, base, sel, t, c, k); f.keep(pflags | f.fd(fd.Num, "") | nameFlag(nm)) {
			rows = append(rows, r)
		}
	}
	return rows
}

func nameFlag(matched bool) uint8 {
	if matched {
		return selName
	}
	return 0
}

// fdRow makes the row of one descriptor and says whether a name
// selector matches it.
func fdRow(snap *procscan.Snapshot, p *procscan.Process, f *procscan.FD, base row, sel []selector, t mountinfo.Table, c *texts, k *kernelDevs) (row, bool) {
	r := base
	r.fdNum = f.Num
	if f.HasInfo && f.Info.HasFlags {
		a := procscan.Access(f.Info.Flags)
		r.FD = c.fd(f.Num, a)
		switch a {
		case 'r':
			r.Mode = "r"
		case 'w':
			r.Mode = "w"
		case 'u':
			r.Mode = "u"
		}
		r.flags = f.Info.Flags
	} else {
		r.FD = c.fd(f.Num, 0)
	}
	if f.HasMount {
		r.MntID = f.Mount.ID
	}
	dev, hasDev := f.Dev()
	ino, hasIno := f.Ino()
	if hasDev {
		r.setDev(c, dev)
	}
	if hasIno {
		r.setNode(c, ino)
	}
	named := len(sel) > 0

	switch f.Kind {
	case procscan.KindSocket:
		u, isUnix := snap.Unix[f.Inode]
		if !isUnix {
			r.Type, r.Device, r.hasDev, r.Name = "sock", "", false, f.Name
			r.setOffset(f.Info.Pos)
			if in, ok := snap.Inet[f.Inode]; ok {
				// DEVICE shows the inode (lsof has no kernel address
				// for these), NODE the protocol.
				r.Type, r.Name = inetType(in), inetName(in)
				if in.Proto != procscan.ProtoRaw {
					r.Device, r.Node = r.Node, in.Proto.String()
				}
			} else if nl, ok := snap.Netlink[f.Inode]; ok {
				r.Type, r.Name = "netlink", netlinkName(nl.Proto)
			} else if snap.Inet != nil && k.procRoot != "" {
				r.Name = sockProtocol(k.procRoot, p.PID, f.Num)
				if k.sock != 0 {
					r.setDev(c, k.sock)
				}
			}
			return r, false
		}
		r.Type, r.Device, r.hasDev = "unix", unixDevice(u), false
		r.setOffset(0)
		r.Name = unixName(u)
		if !u.Bound() || !named {
			return r, false
		}
		// Bound sockets are matched by their path, resolved like the
		// binder did: from its root and cwd. One bound from another root
		// (a container's, in the same network namespace) is not ours.
		sp, known := snap.BoundPath(p, u)
		if !known {
			return r, false
		}
		m, ok := t.Containing(sp)
		for _, s := range sel {
			if s.walk != noWalk && ok && s.matchWalk(sp, false, m.Dev()) || s.walk == noWalk && (s.fs && ok && m.Dev() == s.dev || !s.fs && sp == s.path) {
				// Shown resolved: a relative name is useless to the admin.
				r.Name = sp + " type=" + u.TypeName() + " (" + unixState(u) + ") (" + boundNote + ")"
				r.Note = boundNote
				return r, true
			}
		}
		return r, false
	case procscan.KindPipe:
		r.Type, r.Device, r.hasDev, r.Name = "FIFO", "", false, "pipe"
		if k.pipe != 0 {
			r.setDev(c, k.pipe)
		}
		r.setOffset(f.Info.Pos)
		return r, false
	case procscan.KindAnon:
		r.Type, r.Device, r.hasDev, r.Name = "a_inode", "", false, anonName(f)
		switch {
		case f.Stat != nil:
			// pidfds live on pidfs, the rest on anon_inodefs.
			r.setDev(c, f.Stat.Dev)
			r.setSize(f.Stat.Size)
		case k.anon != 0:
			r.setDev(c, k.anon)
			r.setSize(0)
		default:
			r.setSize(0) // lsof prints the anonymous inode's size, always 0
		}
		return r, false
	case procscan.KindOther:
		r.Type = "unknown"
		r.setOffset(f.Info.Pos)
		return r, named && matchFD(sel, f, dev, hasDev, ino, hasIno)
	}
	r.Name, r.Deleted = withDeleted(f.Name, f.Deleted), f.Deleted
	switch {
	case f.Stat != nil:
		r.setStat(c, f.Stat, f.Info.Pos)
	case f.Info.Flags&unix.O_DIRECTORY != 0:
		r.Type = "DIR"
		r.setOffset(f.Info.Pos)
	default:
		// Not stat'ed (not a local filesystem): the type is unknown and
		// SIZE/OFF shows the offset.
		r.Type = "unknown"
		r.setOffset(f.Info.Pos)
	}
	return r, named && matchFD(sel, f, dev, hasDev, ino, hasIno)
}

func matchFD(sel []selector, f *procscan.FD, dev uint64, hasDev bool, ino uint64, hasIno bool) bool {
	for _, s := range sel {
		if !hasDev {
			continue
		}
		if s.walk != noWalk {
			if f.Kind == procscan.KindFile && s.matchWalk(f.Name, f.Deleted, dev, f.Mount.Dev()) {
				return true
			}
			continue
		}
		// On btrfs a subvolume's files have their own st_dev: compare the
		// mount's device too.
		devMatch := dev == s.dev || f.HasMount && f.Mount.Dev() == s.dev
		if s.fs && devMatch || !s.fs && devMatch && hasIno && ino == s.ino {
			return true
		}
	}
	return false
}

// matchLink matches cwd, rtd (dir: by name for file selectors, never
// stat'ed) and txt (by its maps device and inode).
func matchLink(sel []selector, l *procscan.Link, dir bool) bool {
	if len(sel) == 0 {
		return true
	}
	for _, s := range sel {
		switch {
		case s.walk != noWalk:
			if (l.HasMount || l.HasIno) && s.matchWalk(l.Name, l.Deleted, l.Dev) {
				return true
			}
		case s.fs && (l.HasMount || l.HasIno) && l.Dev == s.dev:
			return true
		case !s.fs && l.HasIno && l.Dev == s.dev && l.Ino == s.ino:
			return true
		case !s.fs && dir && s.isDir && !l.Deleted && l.Name == s.path:
			return true
		}
	}
	return false
}

// matchFile says whether a mapped file (whose inode is always known)
// matches a name selector.
func matchFile(sel []selector, dev, ino uint64, name string, deleted bool) bool {
	if len(sel) == 0 {
		return true
	}
	for _, s := range sel {
		if s.walk != noWalk {
			if s.matchWalk(name, deleted, dev) {
				return true
			}
			continue
		}
		if dev == s.dev && (s.fs || ino == s.ino) {
			return true
		}
	}
	return false
}

func withDeleted(name string, deleted bool) string {
	if deleted {
		return name + procscan.DeletedSuffix
	}
	return name
}

// fileType is lsof's TYPE for a stat mode.
func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "REG"
	case unix.S_IFDIR:
		return "DIR"
	case unix.S_IFCHR:
		return "CHR"
	case unix.S_IFBLK:
		return "BLK"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFLNK:
		return "LINK"
	case unix.S_IFSOCK:
		return "sock"
	}
	return "unknown"
}

// filterRows applies --deleted and --writable.
func filterRows(rows []row, deleted, writable bool) []row {
	if !deleted && !writable {
		return rows
	}
	out := rows[:0]
	for _, r := range rows {
		if deleted && !r.Deleted {
			continue
		}
		if writable && r.Mode != "w" && r.Mode != "u" {
			continue
		}
		out = append(out, r)
	}
	return out
}
