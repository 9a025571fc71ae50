// Package procscan reads, in one pass over a /proc tree, what every
// process holds open: file descriptors with their fdinfo, cwd, root and
// executable, mapped files, mount and network namespace, cgroup; plus
// the unix sockets of every network namespace seen.
//
// It never stat()s or opens through a link target on a filesystem that
// could hang (a dead NFS server would stop the scan for good). A file's
// filesystem comes from fdinfo's mnt_id (descriptors) and from the maps
// line's device (mappings); its inode from fdinfo's "ino:" line and from
// the maps line. Only when that filesystem is known to be local (see
// Local) does the scanner stat the /proc/PID/fd/N entry (relative to the
// process's /proc directory) for the file type and size. cwd and root
// have no fdinfo: their mount is found lexically from the link text in
// the process's own mount table, and they are never stat'ed, so they
// carry no inode; exe's device and inode come from its own maps line.
package procscan

import (
	"errors"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rootswap/rootswap/internal/bpfiter"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// Options narrows and tunes a scan.
type Options struct {
	PIDs    []int // only these processes; nil scans all
	Workers int   // parallel readers; 0 picks one per CPU, at least 2
	// NoStat turns off every stat, even on local filesystems. Scans of
	// a tree that is not procfs (test fixtures) never stat either: the
	// fd links there would lead to the host's files.
	NoStat bool
	// NoBPF reads /proc even where the kernel's BPF iterators could
	// report what the processes hold (see internal/bpfiter).
	NoBPF bool
	// NoCgroup skips /proc/PID/cgroup (Process.Cgroup stays empty): lsof
	// has no use for it, and it is the one file the iterators do not cover.
	NoCgroup bool
	// Devs, when set, says only files on these filesystems (st_dev as in
	// mountinfo) matter: descriptors and mappings of other files may be
	// left out of the snapshot (sockets never are), and so may the names
	// of a cwd or executable on another filesystem (a root's never is). The BPF
	// iterators then skip them in the kernel.
	Devs []uint64

	// Describe reads what names sockets and anonymous inodes in lsof's
	// terms: each network namespace's inet socket tables (Snapshot.Inet)
	// and the fdinfo of eventfd, eventpoll and pidfd descriptors (FD.Anon).
	// Scans that list only files of some filesystems leave it off.
	Describe bool

	// BPFLog quotes the verifier's log in BPFNotes when it refuses a
	// program (a second verification each time).
	BPFLog bool

	refuse map[string]bool // BPF programs to treat as refused (tests)
}

// Snapshot is the result of one scan.
type Snapshot struct {
	Procs []*Process // by PID

	// Self is the scanner's own mount table (the calling thread's mount
	// namespace), SelfMountNS its namespace id.
	Self        mountinfo.Table
	SelfMountNS string
	// Mounts holds the mount table of every mount namespace seen, by
	// namespace id ("mnt:[4026531841]").
	Mounts map[string]mountinfo.Table
	// Unix is every unix socket of every network namespace seen, by inode.
	Unix map[uint64]UnixSocket
	// Inet is every TCP, UDP, UDP-Lite and raw socket of every network
	// namespace seen, by inode; only with Options.Describe.
	Inet map[uint64]InetSocket
	// Netlink is every bound netlink socket, likewise.
	Netlink map[uint64]NetlinkSocket
	// Denied counts processes whose descriptors could not be read
	// (not root).
	Denied int
	// Source says how the scan read: "bpf" when the kernel's iterators
	// reported the processes (/proc only filled in), "bpf+/proc" when
	// the kernel refused some of their programs and those parts came from
	// /proc, else "/proc". BPFErr is why not, when the iterators were
	// tried and could not run at all; BPFNotes names each refused
	// program and what was read instead.
	Source   string
	BPFErr   error
	BPFNotes []string

	mapStats map[[2]uint64]*Stat
}

// Process is what one process holds.
type Process struct {
	PID     int
	Comm    string
	UID     int // effective uid; -1 unknown
	MountNS string
	NetNS   string
	Cgroup  string // /proc/PID/cgroup as is, trailing newline removed
	Cwd     Link
	Root    Link
	Exe     Link
	FDs     []FD
	Maps    []Mapping // file-backed mappings only (inode != 0)
	Err     error     // first error that cut the reading short (EACCES); data is partial
}

// Stat is the part of stat(2) the scanner keeps, present only when the
// file's filesystem is local.
type Stat struct {
	Mode  uint32
	Size  int64
	Dev   uint64
	Ino   uint64
	Nlink uint64
	Rdev  uint64 // device nodes: the device's number
}

// Link is cwd, root or exe.
type Link struct {
	Name     string // link text, " (deleted)" removed when Deleted
	Deleted  bool
	Mount    mountinfo.Mount // cwd/root: lexical; exe: by its maps device
	HasMount bool
	Dev      uint64 // exe: from its maps line; cwd/root: the mount's
	Ino      uint64 // exe; cwd and root with Stat
	HasIno   bool
	Stat     *Stat // local filesystems only (cwd and root: pseudo ones too)
}

// Kind is what an fd link points at.
type Kind uint8

const (
	KindFile   Kind = iota // a path
	KindSocket             // socket:[INODE]
	KindPipe               // pipe:[INODE]
	KindAnon               // anon_inode:...
	KindOther              // net:[...], mnt:[...] and other nsfs or unknown forms
)

// FD is one open file descriptor.
type FD struct {
	Num     int
	Name    string // link text, " (deleted)" removed when Deleted
	Deleted bool
	Kind    Kind
	Inode   uint64 // socket and pipe inode from the link text
	Info    FDInfo
	HasInfo bool
	// Mount is the mount named by Info.MntID, when some namespace seen
	// lists it (a lazily unmounted filesystem is in none).
	Mount    mountinfo.Mount
	HasMount bool
	Stat     *Stat // local filesystems only
	// Anon details an eventfd, eventpoll or pidfd (Options.Describe).
	Anon *AnonInfo
}

// Dev is the device of the descriptor's filesystem, from stat when
// there is one, else from its mount; ok false when neither is known.
func (f *FD) Dev() (uint64, bool) {
	if f.Stat != nil {
		return f.Stat.Dev, true
	}
	if f.HasMount {
		return f.Mount.Dev(), true
	}
	return 0, false
}

// Ino is the descriptor's inode number when known.
func (f *FD) Ino() (uint64, bool) {
	switch {
	case f.Stat != nil:
		return f.Stat.Ino, true
	case f.Info.HasIno:
		return f.Info.Ino, true
	case f.Kind == KindSocket || f.Kind == KindPipe:
		return f.Inode, true
	}
	return 0, false
}

// Dev is the mapping's device number.
func (m Mapping) Dev() uint64 { return unix.Mkdev(m.Major, m.Minor) }

// Scan reads procRoot once.
func Scan(procRoot string, opt Options) (*Snapshot, error) {
	s := &scan{
		root:    procRoot,
		nsTable: map[string]mountinfo.Table{},
		unix:    map[uint64]UnixSocket{},
		sizes:   map[[2]uint64]*Stat{},
		fdStats: map[[2]uint64]*Stat{},

		noCgroup: opt.NoCgroup,
		describe: opt.Describe,
	}
	if opt.Describe {
		s.inet = &inetScan{socks: map[uint64]InetSocket{}, netlink: map[uint64]NetlinkSocket{}}
	}
	var sfs unix.Statfs_t
	s.live = !opt.NoStat && unix.Statfs(procRoot, &sfs) == nil && sfs.Type == unix.PROC_SUPER_MAGIC

	// The kernel's walks (when they can run) take longest: they start
	// first, and the mount table and the process list are read meanwhile.
	type kernelResult struct {
		k   *kernelData
		err error
	}
	var err error
	// The calling thread's own view: "thread-self" because a Go program
	// may have unshared its mount namespace on one thread only.
	s.self, err = mountinfo.Read(procRoot, "thread-self")
	if err != nil {
		if s.self, err = mountinfo.Read(procRoot, "self"); err != nil {
			return nil, err
		}
	}
	// Descriptors on the filesystems a narrowed scan wants, opened here,
	// in this thread's view, for the kernel's mapped-files check.
	roots := openRoots(s.self, opt.Devs, s.live && !opt.NoBPF)
	walked := make(chan kernelResult, 1)
	go func() {
		k, err := kernelScan(procRoot, s.live, opt, roots) // closes roots
		walked <- kernelResult{k, err}
	}()
	received := false
	defer func() {
		if !received {
			<-walked // an error return leaves no walk running behind it
		}
	}()
	selfNS, err := os.Readlink(procRoot + "/thread-self/ns/mnt")
	if err != nil {
		selfNS, _ = os.Readlink(procRoot + "/self/ns/mnt")
	}
	if selfNS != "" {
		s.nsTable[selfNS] = s.self
	}
	s.selfNS = selfNS

	pids := opt.PIDs
	if pids == nil {
		if pids, err = listPIDs(procRoot); err != nil {
			return nil, err
		}
	}
	source := "/proc"
	var bpfErr error
	var notes []string
	kr := <-walked
	received = true
	s.k, bpfErr = kr.k, kr.err
	// With the task or file walk's records, the processes are read while
	// the maps walk runs, and their mappings once it is done.
	later := s.k != nil && (s.k.tasks != nil || s.k.files != nil)
	if s.k != nil && !later {
		s.k.settle()
		if s.k.none() {
			notes, bpfErr = s.k.notes, errors.New(s.k.notes[0])
			s.k = nil
		}
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = max(2, runtime.GOMAXPROCS(0))
	}
	procs := make([]*Process, len(pids))
	eachOf(len(pids), workers, func(r *reader, i int) { procs[i] = s.readProcess(r, pids[i], !later) })
	if later {
		s.k.settle()
		eachOf(len(procs), workers, func(r *reader, i int) {
			if procs[i] != nil {
				s.readMapsLater(r, procs[i])
			}
		})
	}
	if s.k != nil {
		source, notes = "bpf", s.k.notes
		if !s.k.complete() {
			source = "bpf+/proc"
		}
	}

	snap := &Snapshot{Self: s.self, SelfMountNS: selfNS, Mounts: s.nsTable, Unix: s.unix, mapStats: s.sizes,
		Source: source, BPFErr: bpfErr, BPFNotes: notes}
	if s.inet != nil {
		snap.Inet, snap.Netlink = s.inet.socks, s.inet.netlink
	}
	byID := map[int]mountinfo.Mount{}
	for _, t := range s.nsTable {
		for _, m := range t {
			byID[m.ID] = m
		}
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		if p.Err != nil && errors.Is(p.Err, unix.EACCES) {
			snap.Denied++
		}
		s.finish(p, byID)
		snap.Procs = append(snap.Procs, p)
	}
	sort.Slice(snap.Procs, func(i, j int) bool { return snap.Procs[i].PID < snap.Procs[j].PID })
	return snap, nil
}

// eachOf calls fn for 0..n-1 on up to workers goroutines, each with a
// reader of its own.
func eachOf(n, workers int, fn func(r *reader, i int)) {
	workers = min(workers, max(1, n))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			r := newReader()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(r, i)
			}
		})
	}
	wg.Wait()
}

// scan is the state the workers share.
type scan struct {
	root   string
	live   bool
	self   mountinfo.Table
	selfNS string

	mu      sync.Mutex
	nsTable map[string]mountinfo.Table
	netSeen nsClaims
	unix    map[uint64]UnixSocket
	sizes   map[[2]uint64]*Stat // mapped files already stat'ed, by dev and inode
	fdStats map[[2]uint64]*Stat // descriptors' files already stat'ed, by mount ID and inode
	k       *kernelData         // what the BPF iterators reported; nil when they did not run

	initOnce  sync.Once
	initTable mountinfo.Table // PID 1's, read when a mount is in neither the holder's table nor ours
	noCgroup  bool
	describe  bool
	inet      *inetScan // nil unless describe
}

func listPIDs(procRoot string) ([]int, error) {
	r := newReader()
	pids, err := r.fdNumbers(unix.AT_FDCWD, procRoot, nil)
	if err != nil {
		return nil, &os.PathError{Op: "list processes in", Path: procRoot, Err: errors.Unwrap(err)}
	}
	sort.Ints(pids)
	return pids, nil
}

// readProcess reads one process; nil when it vanished. What the BPF
// iterators reported (s.k) is taken from there; /proc/PID is opened only
// for the rest.
func (s *scan) readProcess(r *reader, pid int, withMaps bool) *Process {
	d := &procDir{path: r.subName(s.root, pid), fd: -1}
	defer d.close()
	p := &Process{PID: pid, UID: -1}
	note := p.noter(d)
	kt := s.k.task(pid)
	if kt != nil {
		p.Comm, p.UID = kt.Comm, kt.EUID
		p.MountNS, p.NetNS = nsName("mnt", kt.MountNS), nsName("net", kt.NetNS)
		if kt.ExeIno == 0 && (s.k.wanted(kt.CwdDev) || s.k.wanted(kt.RootDev)) {
			// No executable: a kernel thread, whose name /proc spells
			// longer than task->comm ("kworker/0:0-events"); read only
			// when the scan is after its cwd or root, all it can hold.
			if dirfd, err := d.open(); err == nil {
				if b, err := r.readOnceAt(dirfd, "comm"); err == nil {
					p.Comm = strings.TrimSuffix(string(b), "\n")
				}
			}
		}
	} else {
		dirfd, err := d.open()
		if err != nil {
			return nil
		}
		b, err := r.readOnceAt(dirfd, "status")
		if err != nil {
			return nil // gone (ESRCH) or not a process at all
		}
		p.Comm, p.UID = parseStatus(b)
		p.MountNS, _ = r.readlinkAt(dirfd, "ns/mnt")
		p.NetNS, _ = r.readlinkAt(dirfd, "ns/net")
	}
	if !s.noCgroup {
		if dirfd, err := d.open(); err == nil {
			if b, err := r.readOnceAt(dirfd, "cgroup"); err == nil {
				p.Cgroup = strings.TrimRight(string(b), "\n")
			}
		}
	}
	table := s.mounts(r, d, p.MountNS)
	s.netUnix(r, d, p.NetNS)
	s.netInet(r, d, p.NetNS)

	// cwd and root. The task walk gives their devices; the names are
	// read from /proc only where the scan wants files of that device,
	// and the root's also when the process holds a socket: the path a
	// unix socket is bound on is relative to it (BoundPath).
	var cwdDev, rootDev uint64
	files, fromKernel := s.k.filesOf(pid)
	if kt != nil {
		cwdDev, rootDev = kt.CwdDev, kt.RootDev
	}
	rootTask := kt
	if !fromKernel || holdsSocket(files) {
		rootTask = nil // read it whatever its device
	}
	s.readLink(r, d, "cwd", &p.Cwd, kt, cwdDev, note)
	s.readLink(r, d, "root", &p.Root, rootTask, rootDev, note)
	s.statDirs(d, p, table)

	if fromKernel {
		p.FDs = s.kernelFDs(r, d, p, table, files)
	} else {
		p.FDs = s.procFDs(r, d, p, table, note)
	}
	if withMaps {
		s.readMaps(r, d, p, kt, table, note)
	}
	return p
}

// holdsSocket reports whether the iterator's descriptors include a socket.
func holdsSocket(files []bpfiter.File) bool {
	for i := range files {
		if strings.HasPrefix(files[i].Name, "socket:") {
			return true
		}
	}
	return false
}

// noter returns the function that records the first error that cut the
// reading of p short; it reports whether err was nil.
func (p *Process) noter(d *procDir) func(error) bool {
	return func(err error) bool {
		if err == nil {
			return true
		}
		if !vanished(err) && p.Err == nil {
			p.Err = &os.PathError{Op: "read", Path: d.path, Err: err}
		}
		return false
	}
}

// readLink reads the link name (cwd, root, exe) into l. When the task
// walk reported the process (kt), dev is the link's device from it, and
// the name is read only when the scan wants files of that device.
func (s *scan) readLink(r *reader, d *procDir, name string, l *Link, kt *bpfiter.Task, dev uint64, note func(error) bool) {
	if kt != nil && (dev == 0 || l.Name != "" || !s.k.wanted(dev)) {
		return // none (exiting, a kernel thread's exe), known, or not wanted
	}
	dirfd, err := d.open()
	if !note(err) {
		return
	}
	if t, err := r.readlinkAt(dirfd, name); note(err) {
		l.Name, l.Deleted = cutDeleted(t)
	}
}

// readMaps reads the file mappings of p (the maps walk's records, else
// /proc/PID/maps), names its executable (from its mapping where the
// task walk identified it) and stats the mapped files.
func (s *scan) readMaps(r *reader, d *procDir, p *Process, kt *bpfiter.Task, table mountinfo.Table, note func(error) bool) {
	if maps, ok := s.kernelMaps(p.PID, kt, table); ok {
		p.Maps = maps
	} else if dirfd, err := d.open(); note(err) {
		if b, err := r.readFileAt(dirfd, "maps"); note(err) {
			eachLine(b, func(line []byte) {
				if m, ok := ParseMapsLine(line); ok && m.Inode != 0 {
					p.Maps = append(p.Maps, m)
				}
			})
		}
	}
	var exeDev uint64
	if kt != nil {
		exeDev = kt.ExeDev
		if kt.ExeIno != 0 {
			p.Exe.Dev, p.Exe.Ino, p.Exe.HasIno = kt.ExeDev, kt.ExeIno, true
			for _, m := range p.Maps {
				if m.Inode == kt.ExeIno && m.Dev() == kt.ExeDev {
					p.Exe.Name, p.Exe.Deleted = m.Path, m.Deleted
					break
				}
			}
		}
	}
	s.readLink(r, d, "exe", &p.Exe, kt, exeDev, note)
	s.statMaps(r, d, p, table)
}

// readMapsLater is readMaps for a process read while the maps walk ran.
func (s *scan) readMapsLater(r *reader, p *Process) {
	d := &procDir{path: r.subName(s.root, p.PID), fd: -1}
	defer d.close()
	s.readMaps(r, d, p, s.k.task(p.PID), s.mounts(r, d, p.MountNS), p.noter(d))
}

// procDir is /proc/PID, opened on first use: a process the BPF
// iterators described completely is never looked up in /proc at all.
type procDir struct {
	path string
	fd   int
	err  error
}

func (d *procDir) open() (int, error) {
	if d.fd < 0 && d.err == nil {
		d.fd, d.err = openat(unix.AT_FDCWD, d.path, unix.O_RDONLY|unix.O_DIRECTORY)
	}
	return d.fd, d.err
}

func (d *procDir) close() {
	if d.fd >= 0 {
		unix.Close(d.fd)
	}
}

// procFDs reads the descriptors from /proc/PID/fd and fdinfo: a readlink
// and an fdinfo read per descriptor, a stat per file on local
// filesystems.
func (s *scan) procFDs(r *reader, d *procDir, p *Process, table mountinfo.Table, note func(error) bool) []FD {
	dirfd, err := d.open()
	if !note(err) {
		return nil
	}
	fdDir, err := openat(dirfd, "fd", unix.O_RDONLY|unix.O_DIRECTORY)
	if !note(err) {
		return nil
	}
	defer unix.Close(fdDir)
	nums, err := r.fdNumbers(fdDir, ".", nil)
	if !note(err) {
		return nil
	}
	infoDir, err := openat(dirfd, "fdinfo", unix.O_RDONLY|unix.O_DIRECTORY)
	if err == nil {
		defer unix.Close(infoDir)
	}
	sort.Ints(nums)
	fds := make([]FD, 0, len(nums))
	for _, n := range nums {
		num := r.number(n)
		t, err := r.readlinkAt(fdDir, num)
		if err != nil {
			note(err)
			if errors.Is(err, unix.EACCES) {
				break // every other descriptor is denied too
			}
			continue // closed meanwhile
		}
		f := FD{Num: n}
		var info []byte
		if infoDir >= 0 {
			if b, err := r.readOnceAt(infoDir, num); err == nil {
				f.Info, f.HasInfo, info = ParseFDInfo(b), true, b
			}
		}
		if f.HasInfo && f.Info.HasMntID {
			f.Mount, f.HasMount = s.mountByID(table, f.Info.MntID)
		}
		setName(&f, t)
		f.Anon = s.anonInfoOf(&f, info)
		if s.live && statable(&f) {
			f.Stat = s.statFD(fdDir, num, &f)
		}
		s.settleDeleted(p, &f)
		fds = append(fds, f)
	}
	return fds
}

// setName sets the descriptor's name, kind, socket or pipe inode and
// deleted marker from its link text t.
func setName(f *FD, t string) {
	f.Name, f.Kind, f.Inode = classify(t)
	if f.Kind == KindFile {
		f.Name, f.Deleted = cutDeleted(f.Name)
	}
}

// settleDeleted checks a " (deleted)" marker against the filesystem
// where that is safe (deletedName), once the descriptor's Stat is known.
func (s *scan) settleDeleted(p *Process, f *FD) {
	if f.Kind == KindFile && f.Deleted {
		dev, _ := f.Dev()
		ino, _ := f.Ino()
		f.Name, f.Deleted = s.deletedName(p.MountNS, f.Name, dev, ino)
	}
}

// classify splits an fd link into its kind and, for sockets and pipes,
// the inode in brackets.
func classify(t string) (name string, k Kind, ino uint64) {
	switch {
	case strings.HasPrefix(t, "/"):
		return t, KindFile, 0
	case strings.HasPrefix(t, "socket:[") && strings.HasSuffix(t, "]"):
		v, _ := parseUint([]byte(t[8:len(t)-1]), 10)
		return t, KindSocket, v
	case strings.HasPrefix(t, "pipe:[") && strings.HasSuffix(t, "]"):
		v, _ := parseUint([]byte(t[6:len(t)-1]), 10)
		return t, KindPipe, v
	case strings.HasPrefix(t, "anon_inode:"):
		return t, KindAnon, 0
	}
	return t, KindOther, 0
}

// mounts returns the mount table of namespace ns, reading it from this
// process the first time the namespace is seen.
func (s *scan) mounts(r *reader, d *procDir, ns string) mountinfo.Table {
	s.mu.Lock()
	t, ok := s.nsTable[ns]
	s.mu.Unlock()
	if ok {
		return t
	}
	dirfd, err := d.open()
	if err != nil {
		return nil
	}
	b, err := r.readFileAt(dirfd, "mountinfo")
	if err != nil {
		return nil // gone; the next process of this namespace reads it
	}
	t, err = mountinfo.Parse(strings.NewReader(string(b)))
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns != "" {
		s.nsTable[ns] = t
	}
	return t
}

// nsClaims hands each namespace to the first worker that asks: its
// tables are read once per scan, through one of its processes.
type nsClaims struct {
	mu   sync.Mutex
	seen map[string]bool
}

// claim reports whether ns is the caller's to read.
func (c *nsClaims) claim(ns string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[ns] {
		return false
	}
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.seen[ns] = true
	return true
}

// release gives ns back: the process it was read through is gone, and
// the next process of that namespace reads it.
func (c *nsClaims) release(ns string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.seen, ns)
}

// netUnix reads the unix sockets of a network namespace the first time
// it is seen.
func (s *scan) netUnix(r *reader, d *procDir, ns string) {
	if !s.netSeen.claim(ns) {
		return
	}
	dirfd, err := d.open()
	var b []byte
	if err == nil {
		b, err = r.readFileAt(dirfd, "net/unix")
	}
	if err != nil {
		s.netSeen.release(ns)
		return
	}
	socks := ParseUnix(b)
	s.mu.Lock()
	for _, u := range socks {
		s.unix[u.Inode] = u
	}
	s.mu.Unlock()
}

// statFD stats a descriptor's file through /proc/PID/fd/N, once per
// (mount, inode) and scan: descriptors of many processes often share a
// file (/dev/null, logs), and the stat is the costliest call per fd.
func (s *scan) statFD(fdDir int, num string, f *FD) *Stat {
	// One mount of btrfs (and overlay, bcachefs, zfs: statFromKernel)
	// reaches several inode spaces, each with its own st_dev: two files
	// behind one mount may share an inode number.
	if !f.Info.HasIno || f.HasMount && !statFromKernel(f.Mount.FSType) {
		return statAt(fdDir, num, 0)
	}
	key := [2]uint64{uint64(f.Info.MntID), f.Info.Ino}
	s.mu.Lock()
	st, ok := s.fdStats[key]
	s.mu.Unlock()
	if ok {
		return st
	}
	st = statAt(fdDir, num, 0)
	if st != nil && st.Ino == f.Info.Ino {
		s.mu.Lock()
		s.fdStats[key] = st
		s.mu.Unlock()
	}
	return st
}

func statAt(dirfd int, name string, flags int) *Stat {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, flags); err != nil {
		return nil
	}
	return &Stat{Mode: st.Mode, Size: st.Size, Dev: st.Dev, Ino: st.Ino, Nlink: uint64(st.Nlink), Rdev: st.Rdev}
}

// mountByID finds a descriptor's mount in its process's table, else in
// the scanner's own or init's: mount ids are unique across namespaces,
// and a file opened before its holder entered a new mount namespace
// keeps the mount of the old one (a container's /dev/null from its
// runtime, a service's inherited log).
func (s *scan) mountByID(t mountinfo.Table, id int) (mountinfo.Mount, bool) {
	if m, ok := t.ByID(id); ok {
		return m, true
	}
	if m, ok := s.self.ByID(id); ok {
		return m, true
	}
	s.initOnce.Do(func() { s.initTable, _ = mountinfo.Read(s.root, "1") })
	return s.initTable.ByID(id)
}

// statable reports whether a descriptor's file may be stat'ed: on a local
// filesystem, or a pipe or anonymous inode (kernel-internal filesystems,
// in no mount table). Never a socket: lsof reports none of stat's fields
// for one, and the scan has its inode from the link.
func statable(f *FD) bool {
	switch f.Kind {
	case KindPipe, KindAnon:
		return true
	case KindSocket:
		return false
	}
	return f.HasMount && Local(f.Mount)
}

// statDirs stats the cwd and root of a process whose names were read and
// whose filesystem is local, through the /proc/PID/cwd and root links:
// lsof's SIZE/OFF and NODE columns for them. The lookup of the link
// itself is procfs's; nothing on the target's filesystem is walked.
func (s *scan) statDirs(d *procDir, p *Process, table mountinfo.Table) {
	if !s.live {
		return
	}
	for _, l := range []struct {
		name string
		into *Link
	}{{"cwd", &p.Cwd}, {"root", &p.Root}} {
		if l.into.Name == "" {
			continue
		}
		if m, ok := table.Containing(l.into.Name); !ok || !Local(m) {
			continue
		}
		dirfd, err := d.open()
		if err != nil {
			return
		}
		if st := statAt(dirfd, l.name, 0); st != nil {
			l.into.Stat, l.into.Ino, l.into.HasIno = st, st.Ino, true
		}
	}
}

// deletedName decides whether a name that ends in " (deleted)" was really
// unlinked or is a live file whose name ends that way: when the path walk
// crosses only local filesystems of the scanner's own namespace, the
// full name is lstat'ed and compared with the open file's dev and inode.
// Otherwise the kernel's marker is believed.
func (s *scan) deletedName(ns, name string, dev, ino uint64) (string, bool) {
	full := name + DeletedSuffix
	if !s.live || ino == 0 || ns == "" || ns != s.selfNS || !pathLocal(s.self, full) {
		return name, true
	}
	var st unix.Stat_t
	if unix.Lstat(full, &st) == nil && st.Ino == ino && st.Dev == dev {
		return full, false
	}
	return name, true
}

// statMaps fills the exe link's identity from its mapping and stats the
// mapped files of local filesystems once per (dev, inode) for their size.
func (s *scan) statMaps(r *reader, d *procDir, p *Process, t mountinfo.Table) {
	for i := range p.Maps {
		m := &p.Maps[i]
		if m.Deleted {
			m.Path, m.Deleted = s.deletedName(p.MountNS, m.Path, m.Dev(), m.Inode)
		}
	}
	if !s.live {
		return
	}
	for i := range p.Maps {
		m := &p.Maps[i]
		key := [2]uint64{m.Dev(), m.Inode}
		s.mu.Lock()
		_, done := s.sizes[key]
		s.mu.Unlock()
		if done {
			continue
		}
		byDev := t.ByDev(m.Dev())
		if len(byDev) == 0 || !Local(byDev[0]) {
			continue
		}
		r.name = strconvHex(r.name[:0], m.Start)
		r.name = append(r.name, '-')
		r.name = strconvHex(r.name, m.End)
		dirfd, err := d.open()
		if err != nil {
			return
		}
		st := statAt(dirfd, "map_files/"+string(r.name), 0)
		if st == nil || st.Ino != m.Inode {
			continue
		}
		s.mu.Lock()
		s.sizes[key] = st
		s.mu.Unlock()
	}
}

func strconvHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	var tmp [16]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits[v&15]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// finish resolves what needs every namespace read: descriptors opened
// through a mount of another namespace, cwd and root lexically, exe by
// its maps line.
func (s *scan) finish(p *Process, byID map[int]mountinfo.Mount) {
	for i := range p.FDs {
		f := &p.FDs[i]
		if !f.HasMount && f.HasInfo && f.Info.HasMntID {
			f.Mount, f.HasMount = byID[f.Info.MntID]
		}
	}
	t := s.nsTable[p.MountNS]
	for _, l := range []*Link{&p.Cwd, &p.Root} {
		if l.Name == "" {
			continue
		}
		if m, ok := t.Containing(l.Name); ok {
			l.Mount, l.HasMount, l.Dev = m, true, m.Dev()
		}
	}
	e := &p.Exe
	if e.HasIno { // from the task iterator, with or without its name
		if byDev := t.ByDev(e.Dev); len(byDev) > 0 {
			e.Mount, e.HasMount = byDev[0], true
		}
		e.Stat = s.sizes[[2]uint64{e.Dev, e.Ino}]
		return
	}
	if e.Name == "" {
		return
	}
	for _, m := range p.Maps {
		if m.Path == e.Name {
			e.Dev, e.Ino, e.HasIno = m.Dev(), m.Inode, true
			if byDev := t.ByDev(m.Dev()); len(byDev) > 0 {
				e.Mount, e.HasMount = byDev[0], true
			}
			e.Stat = s.sizes[[2]uint64{e.Dev, e.Ino}]
			return
		}
	}
	if m, ok := t.Containing(e.Name); ok {
		e.Mount, e.HasMount, e.Dev = m, true, m.Dev()
	}
}

// MapStat is the stat of a mapped file when its filesystem is local and
// the scan could read /proc/PID/map_files (needs CAP_SYS_ADMIN).
func (s *Snapshot) MapStat(m Mapping) *Stat { return s.mapStats[[2]uint64{m.Dev(), m.Inode}] }
