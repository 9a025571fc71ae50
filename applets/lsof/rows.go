package lsof

import (
	"os/user"
	"path"
	"runtime"
	"strconv"
	"sync"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// row is one output line.
type row struct {
	Command string `json:"command"`
	PID     int    `json:"pid"`
	UID     int    `json:"uid"`
	User    string `json:"user"`
	FD      string `json:"fd"`             // "cwd", "txt", "mem", "DEL", "3w"
	Mode    string `json:"mode,omitempty"` // "r", "w", "u" for descriptors
	Type    string `json:"type"`
	Device  string `json:"device"`
	SizeOff string `json:"size_off"`
	Node    string `json:"node"`
	Name    string `json:"name"` // as printed, " (deleted)" included
	Deleted bool   `json:"deleted"`
	Flags   string `json:"flags,omitempty"` // O_APPEND|O_CLOEXEC..., filled for JSON only
	MntID   int    `json:"mnt_id,omitempty"`
	flags   uint32 // the open flags behind Flags
	// Note marks rows real lsof does not print: unix sockets bound on a
	// selected filesystem.
	Note string `json:"note,omitempty"`
}

const boundNote = "bound here; lsof omits"

// users caches uid → login name lookups (/etc/passwd, no cgo).
type users map[int]string

func newUsers() users { return users{} }

func (u users) name(uid int) string {
	if uid < 0 {
		return ""
	}
	if n, ok := u[uid]; ok {
		return n
	}
	n := strconv.Itoa(uid)
	if usr, err := user.LookupId(n); err == nil {
		n = usr.Username
	}
	u[uid] = n
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
// txt, mapped files, descriptors; keeping those some selector matches
// (all of them when there are no selectors). A busy host has a hundred
// thousand rows: the processes are split across the CPUs, each run
// written into its own stretch of one slice.
func listRows(snap *procscan.Snapshot, sel []selector, u users) []row {
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
				out = procRows(snap, p, sel, u, c, out)
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

// procRows appends the rows of one process.
func procRows(snap *procscan.Snapshot, p *procscan.Process, sel []selector, u users, c *texts, rows []row) []row {
	base := row{Command: p.Comm, PID: p.PID, UID: p.UID, User: u[p.UID]}
	t := snap.Mounts[p.MountNS]
	add := func(r row) {
		rows = append(rows, r)
	}
	for _, l := range []struct {
		fd   string
		link *procscan.Link
	}{{"cwd", &p.Cwd}, {"rtd", &p.Root}} {
		if l.link.Name == "" || !matchLink(sel, l.link, true) {
			continue
		}
		r := base
		r.FD, r.Type, r.Name, r.Deleted = l.fd, "DIR", withDeleted(l.link.Name, l.link.Deleted), l.link.Deleted
		if l.link.HasMount {
			r.Device, r.MntID = c.device(l.link.Dev), l.link.Mount.ID
		}
		add(r)
	}
	exe := &p.Exe
	if exe.Name != "" && matchLink(sel, exe, false) {
		r := base
		r.FD, r.Type, r.Name, r.Deleted = "txt", "REG", withDeleted(exe.Name, exe.Deleted), exe.Deleted
		if exe.HasIno || exe.HasMount {
			r.Device = c.device(exe.Dev)
		}
		if exe.HasIno {
			r.Node = c.node(exe.Ino)
		}
		if exe.Stat != nil {
			r.Type, r.SizeOff = fileType(exe.Stat.Mode), strconv.FormatInt(exe.Stat.Size, 10)
		}
		add(r)
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
		if seen[key] || !matchFile(sel, m.Dev(), m.Inode, true, m.Path, t) {
			continue
		}
		seen[key] = true
		r := base
		r.FD, r.Type, r.Device, r.Node, r.Name = "mem", "REG", c.device(m.Dev()), c.node(m.Inode), m.Path
		st := snap.MapStat(m)
		if st != nil {
			r.Type = fileType(st.Mode)
		}
		if m.Deleted {
			r.FD, r.Deleted = "DEL", true // lsof prints the bare name here
		} else if st != nil {
			r.SizeOff = strconv.FormatInt(st.Size, 10)
		}
		add(r)
	}
	for i := range p.FDs {
		if r, ok := fdRow(snap, p, &p.FDs[i], base, sel, t, c); ok {
			add(r)
		}
	}
	return rows
}

// fdRow makes the row of one descriptor when a selector matches it.
func fdRow(snap *procscan.Snapshot, p *procscan.Process, f *procscan.FD, base row, sel []selector, t mountinfo.Table, c *texts) (row, bool) {
	r := base
	if f.HasInfo && f.Info.HasFlags {
		a := procscan.Access(f.Info.Flags)
		r.FD = c.fd(f.Num, a)
		if a != ' ' {
			r.Mode = accessModes[a]
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
		r.Device = c.device(dev)
	}
	if hasIno {
		r.Node = c.node(ino)
	}
	offset := func() string { return "0t" + strconv.FormatInt(f.Info.Pos, 10) }

	switch f.Kind {
	case procscan.KindSocket:
		u, isUnix := snap.Unix[f.Inode]
		if !isUnix {
			r.Type, r.Device, r.Name, r.SizeOff = "sock", "", f.Name, offset()
			return r, len(sel) == 0
		}
		r.Type, r.Device, r.SizeOff = "unix", "", "0t0"
		r.Name = "type=" + u.TypeName()
		if !u.Bound() {
			if u.Path != "" {
				r.Name = u.Path + " " + r.Name
			}
			return r, len(sel) == 0
		}
		r.Name = u.Path + " " + r.Name
		if len(sel) == 0 {
			return r, true
		}
		// Bound sockets are matched by their path, resolved like the
		// binder did: relative to the process's cwd, in its namespace.
		sp := u.Path
		if !path.IsAbs(sp) {
			sp = path.Join(p.Cwd.Name, sp)
		}
		m, ok := t.Containing(sp)
		for _, s := range sel {
			if s.fs && ok && m.Dev() == s.dev || !s.fs && sp == s.path {
				// Shown resolved: a relative name is useless to the admin.
				r.Name = sp + " type=" + u.TypeName() + " (" + boundNote + ")"
				r.Note = boundNote
				return r, true
			}
		}
		return r, false
	case procscan.KindPipe:
		r.Type, r.Device, r.Name, r.SizeOff = "FIFO", "", "pipe", offset()
		return r, len(sel) == 0
	case procscan.KindAnon:
		r.Type, r.Device, r.Name, r.SizeOff = "a_inode", "", f.Name[len("anon_inode:"):], offset()
		return r, len(sel) == 0
	case procscan.KindOther:
		r.Type, r.SizeOff = "unknown", offset()
		return r, len(sel) == 0 || matchFD(sel, f, dev, hasDev, ino, hasIno)
	}
	if len(sel) > 0 && !matchFD(sel, f, dev, hasDev, ino, hasIno) {
		return r, false
	}
	r.Name, r.Deleted = withDeleted(f.Name, f.Deleted), f.Deleted
	switch {
	case f.Stat != nil:
		r.Type = fileType(f.Stat.Mode)
		if r.Type == "REG" || r.Type == "DIR" {
			r.SizeOff = strconv.FormatInt(f.Stat.Size, 10)
		} else {
			r.SizeOff = offset()
		}
	case f.Info.Flags&unix.O_DIRECTORY != 0:
		r.Type, r.SizeOff = "DIR", offset()
	default:
		// Not stat'ed (not a local filesystem): the type is unknown and
		// SIZE/OFF shows the offset.
		r.Type, r.SizeOff = "unknown", offset()
	}
	return r, true
}

func matchFD(sel []selector, f *procscan.FD, dev uint64, hasDev bool, ino uint64, hasIno bool) bool {
	for _, s := range sel {
		if !hasDev {
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

func matchFile(sel []selector, dev, ino uint64, hasIno bool, _ string, _ mountinfo.Table) bool {
	if len(sel) == 0 {
		return true
	}
	for _, s := range sel {
		if dev == s.dev && (s.fs || hasIno && ino == s.ino) {
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

// accessModes spells the access letters as the Mode field.
var accessModes = map[byte]string{'r': "r", 'w': "w", 'u': "u"}

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
