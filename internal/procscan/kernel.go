package procscan

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/rootswap/rootswap/internal/bpfiter"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// The inodes of the initial PID and user namespaces (PROC_PID_INIT_INO,
// PROC_USER_INIT_INO): the iterators report global pids and uids.
const (
	initPIDNS  = "pid:[4026531836]"
	initUserNS = "user:[4026531837]"
)

// minKernelScan is the number of processes from which one pass of the
// BPF iterators over every process beats reading their /proc directories.
const minKernelScan = 32

// kernelData is what the iterators reported, by pid. A walk whose
// program the kernel refused leaves its map nil, and the scan reads that
// part from /proc. The maps walk takes longest: the scan reads everything
// else while it runs, and settle waits for it.
type kernelData struct {
	tasks map[int]*bpfiter.Task
	files map[int][]bpfiter.File
	maps  map[int][]bpfiter.Map
	devs  []uint64 // the filesystems the walks were narrowed to

	filesSince, mapsSince uint64 // CLOCK_MONOTONIC ns when each walk began
	notes                 []string

	kernel                      *bpfiter.Kernel
	mapsReady                   chan struct{} // closed when maps, mapsSince and mapsErr are set
	tasksErr, filesErr, mapsErr error
}

func monotonicNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// kernelScan runs the BPF iterators when their answer can stand in for
// /proc: the scan reads the live procfs of the scanner's own PID
// namespace, which is the initial one, as is its user namespace. It
// returns nil, and why when the iterators cannot run at all, otherwise.
// It returns once the task and file walks are done; the maps walk may
// still run (settle waits for it). Each walk falls back on its own: a
// program the kernel refuses is noted and its part read from /proc.
func kernelScan(procRoot string, live bool, opt Options, roots []*os.File) (kd *kernelData, err error) {
	defer func() {
		if kd == nil {
			closeAll(roots) // no walk: nothing will check with them
		}
	}()
	if !live || opt.NoBPF || opt.PIDs != nil && len(opt.PIDs) < minKernelScan {
		return nil, nil
	}
	if ns, err := os.Readlink(procRoot + "/self/ns/pid"); err != nil || ns != initPIDNS {
		return nil, nil
	}
	if ns, err := os.Readlink(procRoot + "/self/ns/user"); err != nil || ns != initUserNS {
		return nil, nil
	}
	if self, err := os.Readlink(procRoot + "/self"); err != nil || self != strconv.Itoa(os.Getpid()) {
		return nil, nil // a procfs of another PID namespace
	}
	k, err := bpfiter.Open()
	if err != nil {
		return nil, err
	}
	k.Refuse, k.VerifierLog = opt.refuse, opt.BPFLog
	devs := opt.Devs
	if len(devs) > bpfiter.MaxDevs {
		devs = nil
	}
	rootFDs := make([]int, len(roots)) // the numbers, before the check closes them
	for i, r := range roots {
		rootFDs[i] = int(r.Fd())
	}
	kd = &kernelData{devs: devs, kernel: k, mapsReady: make(chan struct{})}
	// The walks are independent and each runs on one CPU in the kernel.
	// A process that started before a walk began is in it if it holds
	// anything the walk reports; one that started later is read from
	// /proc.
	var (
		tasks     []bpfiter.Task
		files     []bpfiter.File
		tasksOnce sync.Once
		tasksDone = make(chan struct{})
	)
	// The task walk runs once, on whichever side is free first.
	walkTasks := func() {
		tasksOnce.Do(func() {
			defer close(tasksDone)
			tasks, kd.tasksErr = k.Tasks()
		})
	}
	walkFiles := func() {
		kd.filesSince = monotonicNow()
		files, kd.filesErr = k.Files(devs)
	}
	go func() {
		kd.mapsSince = monotonicNow()
		none, why := unmapped(k, devs, roots)
		closeAll(roots)
		if none {
			// Nothing to walk: this side takes the task walk instead.
			kd.maps = map[int][]bpfiter.Map{}
			k.Note("mappings not walked: " + why)
			close(kd.mapsReady)
			walkTasks()
			return
		}
		defer close(kd.mapsReady)
		maps, err := k.Maps(devs)
		if kd.mapsErr = err; err == nil {
			kd.maps = byPID(maps, func(m *bpfiter.Map) int { return m.PID })
		}
	}()
	if runtime.GOMAXPROCS(0) >= 3 {
		go walkTasks()
		walkFiles()
	} else {
		// The maps walk holds the one other CPU: a third walk beside
		// them would only take turns with the first two.
		walkFiles()
		walkTasks()
	}
	<-tasksDone
	if kd.tasksErr == nil {
		kd.tasks = make(map[int]*bpfiter.Task, len(tasks))
		for i := range tasks {
			kd.tasks[tasks[i].PID] = &tasks[i]
		}
	}
	if kd.filesErr == nil {
		kd.files = byPID(dropRoots(files, rootFDs), func(f *bpfiter.File) int { return f.PID })
	}
	return kd, nil
}

// openRoots opens, for each of devs, the root of a mount of it in table
// (O_PATH): the mapped-files check reaches each filesystem through one.
// nil when one is not mounted there.
func openRoots(table mountinfo.Table, devs []uint64, want bool) []*os.File {
	if !want || len(devs) == 0 || len(devs) > bpfiter.MaxDevs {
		return nil
	}
	roots := make([]*os.File, 0, len(devs))
	for _, d := range devs {
		on := table.ByDev(d)
		if len(on) == 0 {
			closeAll(roots)
			return nil
		}
		f, err := os.OpenFile(on[0].Point, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll(roots)
			return nil
		}
		roots = append(roots, f)
	}
	return roots
}

// dropRoots leaves out the scanner's own descriptors from openRoots: they
// are the scan's, not the process's.
func dropRoots(files []bpfiter.File, fds []int) []bpfiter.File {
	if len(fds) == 0 {
		return files
	}
	self := os.Getpid()
	// A plain filter: slices.DeleteFunc would stencil a copy for bpfiter.File.
	out := files[:0]
	for _, f := range files {
		if f.PID != self || !slices.Contains(fds, f.FD) {
			out = append(out, f)
		}
	}
	clear(files[len(out):])
	return out
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// unmapped asks the kernel whether no process maps a file of devs (see
// bpfiter.Kernel.Unmapped), through roots; a check that cannot run is
// "maybe", noted.
func unmapped(k *bpfiter.Kernel, devs []uint64, roots []*os.File) (bool, string) {
	if len(roots) == 0 || len(roots) != len(devs) {
		return false, ""
	}
	none, why, err := k.Unmapped(devs, roots)
	if err != nil {
		k.Note(fmt.Sprintf("%v; mappings walked", err))
	} else if !none {
		k.Note("mappings walked: " + why)
	}
	return none, why
}

// settle waits for the maps walk and gathers every walk's notes.
func (k *kernelData) settle() {
	<-k.mapsReady
	k.notes = k.kernel.Notes()
	for _, w := range []struct {
		what string
		err  error
	}{{"processes' names, namespaces, cwd, root and executable", k.tasksErr}, {"descriptors", k.filesErr}, {"mappings", k.mapsErr}} {
		if w.err != nil {
			k.notes = append(k.notes, fmt.Sprintf("%v; %s read from /proc", w.err, w.what))
		}
	}
}

// none reports whether no walk ran.
func (k *kernelData) none() bool { return k.tasks == nil && k.files == nil && k.maps == nil }

// complete reports whether every walk ran.
func (k *kernelData) complete() bool { return k.tasks != nil && k.files != nil && k.maps != nil }

// byPID splits records that come in pid order into each pid's run.
func byPID[T any](recs []T, pid func(*T) int) map[int][]T {
	out := map[int][]T{}
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && pid(&recs[j]) == pid(&recs[i]) {
			j++
		}
		out[pid(&recs[i])] = recs[i:j:j]
		i = j
	}
	return out
}

// task is the iterator's record of pid, nil when there is none (no
// iterators, or a process that started after the walk).
func (k *kernelData) task(pid int) *bpfiter.Task {
	if k == nil {
		return nil
	}
	return k.tasks[pid]
}

// wanted reports whether the walks were after files of dev.
func (k *kernelData) wanted(dev uint64) bool {
	return len(k.devs) == 0 || slices.Contains(k.devs, dev)
}

// filesOf is the iterator's descriptors of pid; ok false sends the scan
// to /proc/PID/fd: a process the walk may have missed.
func (k *kernelData) filesOf(pid int) ([]bpfiter.File, bool) {
	if k == nil || k.files == nil {
		return nil, false
	}
	if f, ok := k.files[pid]; ok {
		return f, true
	}
	// None reported: it holds none the walk was after, or it started
	// after the walk began (unknown without the task walk).
	t := k.tasks[pid]
	return nil, t != nil && t.Start < k.filesSince
}

func nsName(kind string, inum uint32) string {
	if inum == 0 {
		return "" // an exiting task: readlink would fail too
	}
	return kind + ":[" + strconv.FormatUint(uint64(inum), 10) + "]"
}

// statFromKernel lists the filesystem types whose stat(2) reports the
// inode's own superblock device, so the iterator's fields equal what
// stat through /proc/PID/fd/N would say. btrfs (a device per subvolume),
// overlay and bcachefs report other devices: those are stat'ed as before.
func statFromKernel(fstype string) bool {
	switch fstype {
	case "btrfs", "overlay", "bcachefs", "zfs":
		return false
	}
	return true
}

// kernelMaps converts the iterator's mappings of pid into maps lines'
// terms; ok false (read /proc/PID/maps instead) when a path did not fit
// a record or a mapping's mount is not in the process's table: overlayfs
// maps its lower files through private mounts, and /proc/PID/maps names
// the overlay path, which only it knows.
func (s *scan) kernelMaps(pid int, kt *bpfiter.Task, table mountinfo.Table) ([]Mapping, bool) {
	if s.k == nil || s.k.maps == nil {
		return nil, false
	}
	km, ok := s.k.maps[pid]
	if !ok {
		// No mapping the walk was after (a kernel thread maps nothing),
		// or a process that started after the walk began.
		return nil, kt != nil && kt.Start < s.k.mapsSince
	}
	out := make([]Mapping, 0, len(km))
	var last mountinfo.Mount
	for _, m := range km {
		if m.NoPath || m.Busy {
			return nil, false
		}
		if last.ID != m.MntID {
			mnt, ok := table.ByID(m.MntID)
			if !ok {
				return nil, false
			}
			last = mnt
		}
		mp := Mapping{
			Start: m.Start, End: m.End, Offset: m.Pgoff * uint64(pageSize),
			Perms: perms(m.Flags),
			Major: unix.Major(m.Dev), Minor: unix.Minor(m.Dev),
			Inode: m.Ino,
		}
		mp.Path, mp.Deleted = cutDeleted(m.Path)
		out = append(out, mp)
		if s.live && Local(last) && statFromKernel(last.FSType) {
			key := [2]uint64{m.Dev, m.Ino}
			s.mu.Lock()
			if _, done := s.sizes[key]; !done {
				s.sizes[key] = &Stat{Mode: m.Mode, Size: m.Size, Dev: m.Dev, Ino: m.Ino, Nlink: uint64(m.Nlink), Rdev: m.Rdev}
			}
			s.mu.Unlock()
		}
	}
	return out, true
}

var pageSize = os.Getpagesize()

// perms spells vm_flags as maps does: r, w, x, then s (VM_MAYSHARE) or p.
func perms(flags uint64) string {
	b := [4]byte{'-', '-', '-', 'p'}
	if flags&0x1 != 0 {
		b[0] = 'r'
	}
	if flags&0x2 != 0 {
		b[1] = 'w'
	}
	if flags&0x4 != 0 {
		b[2] = 'x'
	}
	if flags&0x80 != 0 {
		b[3] = 's'
	}
	return permString(b[:])
}

// kernelFDs turns the iterator's records of one process into FDs, with
// the same rules as procFDs: a Stat only on local filesystems.
func (s *scan) kernelFDs(r *reader, d *procDir, p *Process, table mountinfo.Table, files []bpfiter.File) []FD {
	fdDir := -1
	defer func() {
		if fdDir >= 0 {
			unix.Close(fdDir)
		}
	}()
	// openFDDir opens /proc/PID/fd for the rare descriptor whose name
	// did not fit the record, or whose filesystem needs a real stat.
	openFDDir := func() bool {
		if fdDir < 0 {
			if dirfd, err := d.open(); err == nil {
				fdDir, _ = openat(dirfd, "fd", unix.O_RDONLY|unix.O_DIRECTORY)
			}
		}
		return fdDir >= 0
	}
	fds := make([]FD, 0, len(files))
	stats := make([]Stat, len(files))
	var last mountinfo.Mount
	var lastOK bool
	for i, k := range files {
		f := FD{Num: k.FD}
		name := k.Name
		if k.NameTooLong {
			if !openFDDir() {
				continue
			}
			t, err := r.readlinkAt(fdDir, r.number(k.FD))
			if err != nil {
				continue // closed meanwhile
			}
			name = t
		}
		setName(&f, name)
		f.Anon = s.anonInfo(r, d, &f)
		f.Info = FDInfo{Pos: k.Pos, Flags: k.Flags, MntID: k.MntID, Ino: k.Ino, HasFlags: true, HasMntID: true, HasIno: true}
		f.HasInfo = true
		if !lastOK || last.ID != k.MntID {
			last, lastOK = s.mountByID(table, k.MntID)
		}
		f.Mount, f.HasMount = last, lastOK
		if s.live && statable(&f) {
			if !f.HasMount || statFromKernel(f.Mount.FSType) {
				stats[i] = Stat{Mode: k.Mode, Size: k.Size, Dev: k.Dev, Ino: k.Ino, Nlink: uint64(k.Nlink), Rdev: k.Rdev}
				f.Stat = &stats[i]
			} else if openFDDir() {
				f.Stat = s.statFD(fdDir, r.number(k.FD), &f)
			}
		}
		s.settleDeleted(p, &f)
		fds = append(fds, f)
	}
	return fds
}
