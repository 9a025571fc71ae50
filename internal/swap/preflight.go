package swap

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/ext"
	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/initsys"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
	"github.com/rootswap/rootswap/internal/procscan"
	"golang.org/x/sys/unix"
)

// Blocker is something run cannot clear by itself.
type Blocker struct {
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

// Proc is a holder as plan shows it, with its service.
type Proc struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	PID     int    `json:"pid"`
	Comm    string `json:"comm"`
	What    string `json:"what"`
	Service string `json:"service,omitempty"`
	Note    string `json:"note,omitempty"`
	// Signal stops a command-line service (Report.Respawn).
	Signal syscall.Signal `json:"signal,omitempty"`
}

// Report is the preflight: everything plan prints and run needs.
type Report struct {
	Root struct {
		Mount  mountinfo.Mount `json:"mount"`
		Device string          `json:"device"` // /dev node of the root filesystem
		FSType string          `json:"fstype"`
		Size   int64           `json:"size"` // filesystem size from its superblock
	} `json:"root"`
	Target struct {
		Path      string `json:"path"`
		Name      string `json:"name"`
		Size      int64  `json:"size"`
		Signature string `json:"signature,omitempty"`
	} `json:"target"`
	Deleted      []Proc              `json:"deleted"`
	Writers      []Proc              `json:"writers"`
	Loops        []string            `json:"loops"`
	Rebacks      []blockdev.LoopInfo `json:"loop_rebacks"` // read-only squashfs loops moved onto the new root's files`
	Unmount      mountinfo.Table     `json:"unmount"`
	Overlays     mountinfo.Table     `json:"overlays"`      // overlays among Unmount whose layers are on /
	OverlayUsers []Proc              `json:"overlay_users"` // processes working inside them
	Binds        []mountops.Bind     `json:"binds"`         // bind mounts of the root's own directories, re-made after the pivot
	SwapFiles    []SwapArea          `json:"swap_files"`    // active swap files on /
	UnixSockets  []string            `json:"unix_sockets"`
	OtherNS      []Proc              `json:"other_namespaces"`
	Submounts    []string            `json:"submounts"`
	SameFS       []SameFS            `json:"same_fs"` // submounts of /'s own filesystem, mounted again from the copy
	Init         string              `json:"init"`
	InitKind     string              `json:"init_kind"`
	MemAvail     int64               `json:"mem_available"`
	MemNeeded    int64               `json:"mem_needed"`
	Tools        map[string]string   `json:"tools"`
	Stop         []string            `json:"stop"`    // services run will stop for the copy, docker's first
	Docker       []DockerDaemon      `json:"docker"`  // docker daemons among them, and what happens to their containers
	Kill         []Proc              `json:"kill"`    // writers with no service (killed only with --kill)
	Respawn      []Proc              `json:"respawn"` // command-line services (ifup's dhclient): killed, started again by their command line
	Blockers     []Blocker           `json:"blockers"`
	Warnings     []string            `json:"warnings"`
	Lifeline     string              `json:"lifeline"`       // what run's lifeline SSH server will be
	Mkfs         string              `json:"mkfs,omitempty"` // file mode: the new filesystem's type
	Used         int64               `json:"used,omitempty"` // file mode: bytes used on /

	snap   *procscan.Snapshot
	system initsys.System
}

// Snapshot is the process scan the report was built from.
func (r *Report) Snapshot() *procscan.Snapshot { return r.snap }

// System is the detected init system.
func (r *Report) System() initsys.System { return r.system }

// unmountType are filesystems that must not stay mounted across the swap
// (network and FUSE mounts whose servers get restarted, images whose
// backing files live on the old root).
func unmountType(s string) bool {
	switch s {
	case "nfs", "nfs4", "cifs", "smb3", "smbfs", "overlay", "aufs", "squashfs", "fuse",
		"fuseblk":
		return true
	}
	return false
}

// Preflight inspects the live system (read-only) for a swap of / onto
// opts.Target. force accepts a target that carries a signature.
func Preflight(ctx context.Context, rt *Runtime, opts Options, force bool, self int) (*Report, error) {
	r := &Report{Tools: map[string]string{}}
	mounts, err := mountinfo.Read(rt.ProcRoot, "self")
	if err != nil {
		return nil, err
	}
	root, ok := mounts.Containing("/")
	if !ok {
		return nil, fmt.Errorf("no mount holds / in %s/self/mountinfo", rt.ProcRoot)
	}
	r.Root.Mount, r.Root.FSType = root, root.FSType
	rootDev := root.Dev()
	blockDev, _ := rootBlockDev(root) // btrfs: mountinfo shows 0:N
	if d, err := blockdev.Lookup(rt.SysRoot, blockDev); err == nil {
		r.Root.Device = "/dev/" + d.Name
		r.Root.Size = fsSize(r.Root.Device, d.Size)
	} else {
		r.block("/ is "+root.Source+" ("+root.FSType+"), not a block device rootswap can copy: "+err.Error(),
			"rootswap moves a root that lives on a block device; an initramfs, overlay or network root is out of scope")
	}

	// The target.
	if r.Mkfs = opts.Mkfs; r.Mkfs == "-" {
		r.Mkfs = root.FSType
	}
	r.checkTarget(rt, opts, mounts, blockDev)
	r.checkRootFS(rt.SysRoot, mounts, root)
	if r.Mkfs != "" && len(r.SameFS) > 0 {
		r.block("--copy files copies /'s own tree: its other subvolumes mounted below it would be left behind", "swap with --copy blocks")
	}

	// Processes.
	snap, err := rt.Scan(rootDev)
	if err != nil {
		return nil, err
	}
	r.snap = snap
	sys, err := initsys.Config{ProcRoot: rt.ProcRoot}.Detect(ctx)
	if err != nil {
		return nil, err
	}
	r.system, r.Init, r.InitKind = sys, sys.Describe(), string(sys.Kind())
	if sys.Kind() == initsys.KindBusybox || sys.Kind() == initsys.KindUnknown {
		r.warn("PID 1 cannot be re-executed (" + sys.ReexecMethod() + "): it keeps the old root busy until the next reboot; rootswap detaches the old root lazily (it is read-only, nothing is lost)")
	}
	session := Ancestors(rt.ProcRoot, self)
	keep := setOf(opts.Keep)
	stop := map[string]bool{}
	for _, name := range opts.Stop {
		stop[name] = true
	}
	services := initsys.NewLookup(sys) // one reading of the scripts and pidfiles for every holder
	for _, h := range HoldersOf(snap, rootDev) {
		if session[h.PID] {
			// This session lets go of / when run's foreground exits, but
			// not of a file it writes there (a shell redirection).
			if h.BlocksReadOnly() {
				r.block(fmt.Sprintf("this session's %s (pid %d) %s", h.Comm, h.PID, h.What()),
					"run rootswap without redirecting its output to a file on / (use /run or /dev/shm)")
			}
			continue
		}
		p := Proc{PID: h.PID, Comm: h.Comm, What: h.What()}
		svc, hasSvc := services.ServiceOf(h.PID)
		if hasSvc {
			p.Service = svc.Name
		} else if gone(rt.ProcRoot, h.PID) {
			// Exited since the scan (a daemon's short-lived child that
			// inherited its descriptor, a cron job): it holds nothing.
			continue
		}
		if h.OtherNS != "" && len(h.Writes)+len(h.Deleted) == 0 {
			r.addOtherNS(h.OtherNS, p)
			continue
		}
		if !h.BlocksReadOnly() {
			continue
		}
		if hasSvc && sys.Kind() == initsys.KindSystemd && svc.Name == "systemd-journald.service" {
			// Not stopped: `journalctl --relinquish-var` moves its files to
			// /run before the read-only remount, --flush brings them back.
			continue
		}
		if len(h.Deleted) > 0 {
			r.Deleted = append(r.Deleted, p)
		} else {
			r.Writers = append(r.Writers, p)
		}
		switch {
		case hasSvc && svc.Restartable && keep[svc.Name]:
			r.block(fmt.Sprintf("%s (pid %d) %s, but --keep %s forbids stopping it", h.Comm, h.PID, h.What(), svc.Name),
				"drop --keep "+svc.Name+" or stop it yourself")
		case hasSvc && svc.Kind == initsys.CommandLine:
			p.Note, p.Signal = svc.Why, svc.StopSignal
			r.Respawn = append(r.Respawn, p)
		case hasSvc && svc.Restartable:
			stop[svc.Name] = true
		default:
			why := "belongs to no service"
			if hasSvc {
				why = svc.String()
			}
			p.Note = why
			r.Kill = append(r.Kill, p)
			if !opts.Kill {
				r.block(fmt.Sprintf("%s (pid %d) %s and %s", h.Comm, h.PID, h.What(), why),
					fmt.Sprintf("stop it (kill %d) or let run kill it: --kill", h.PID))
			}
		}
	}

	// Mounts: what must be unmounted, what must move after the pivot.
	for _, m := range mounts.Below("/") {
		if strings.HasPrefix(m.Point, DefaultNewRoot) || m.Point == opts.EngineDir {
			continue
		}
		if m.FSType == "overlay" {
			// Layers elsewhere: it does not hold /, and moves with the rest.
			if overlayOnDev(m, rootDev) {
				r.Unmount = append(r.Unmount, m)
				r.Overlays = append(r.Overlays, m)
			}
			continue
		}
		if li, ok := rebackable(rt.SysRoot, m, rootDev); ok {
			r.Rebacks = append(r.Rebacks, li) // stays mounted: reback-loops
			continue
		}
		loopOnRoot := strings.HasPrefix(filepath.Base(m.Source), "loop") && loopBackedBy(m.Source, rootDev)
		if unmountType(m.FSType) || strings.HasPrefix(m.FSType, "fuse.") || loopOnRoot {
			r.Unmount = append(r.Unmount, m)
		}
	}
	if opts.Backup != "" {
		// The image is expected to take half of what / uses.
		var sfs unix.Statfs_t
		unix.Statfs("/", &sfs)
		tn, _ := blockdev.NodeOf(opts.Target)
		c := backupCheck{path: opts.Backup, mounts: mounts, root: root, unmount: r.Unmount,
			engineDir: opts.EngineDir, stack: &blockdev.Stack{SysRoot: rt.SysRoot, Mounts: mounts}, target: tn, need: int64(sfs.Blocks-sfs.Bfree) * sfs.Bsize / 2}
		if problem, fix := c.problem(); problem != "" {
			r.block(problem, fix)
		}
	}
	if err := r.checkOverlays(rt, sys, opts, session, stop); err != nil {
		return nil, err
	}
	r.checkBinds(mounts, root, opts)
	for name := range stop {
		r.Stop = append(r.Stop, name)
	}
	sortStrings(r.Stop)
	r.checkDocker(ctx, initsys.Config{ProcRoot: rt.ProcRoot}, services, initsys.Runner(rt.Command))
	for _, l := range loopsBackedBy(rt.SysRoot, rootDev) {
		r.Loops = append(r.Loops, l)
	}
	for _, m := range mounts.Below("/") {
		if p, ok := mounts.ByID(m.Parent); ok && p.ID == root.ID {
			r.Submounts = append(r.Submounts, m.Point)
		}
	}
	r.UnixSockets = socketsBoundOn(snap, root)

	// Memory for the engine's tmpfs.
	exe, _ := os.Stat(SelfExecutable(rt.ProcRoot))
	if exe != nil {
		r.MemNeeded = exe.Size() + 32<<20
	}
	r.MemAvail = memAvailable(rt.ProcRoot)
	if err := CheckStatic(SelfExecutable(rt.ProcRoot)); err != nil {
		r.block(err.Error(), "use the static build: make build (CGO_ENABLED=0)")
	}
	if r.MemAvail > 0 && r.MemAvail < r.MemNeeded {
		r.block(fmt.Sprintf("only %d MiB of memory available, the engine's tmpfs needs %d MiB", r.MemAvail>>20, r.MemNeeded>>20),
			"free memory (stop a large service) and try again")
	}
	if err := r.checkSwapFiles(rt.ProcRoot, rootDev); err != nil {
		return nil, err
	}

	// Tools for the root's filesystem type (file mode needs its mkfs only).
	for _, t := range fstools.ToolsFor(r.Root.FSType) {
		if r.Mkfs != "" {
			break
		}
		if p, err := exec.LookPath(t); err == nil {
			r.Tools[t] = p
		} else {
			r.block(t+" not found", "install "+fstools.Package(t))
		}
	}
	return r, nil
}

func (r *Report) checkTarget(rt *Runtime, opts Options, mounts mountinfo.Table, rootDev uint64) {
	target := opts.Target
	r.Target.Path = target
	if target == "" {
		r.block("no target device given", "name it: --to /dev/VG/LV")
		return
	}
	d, err := blockdev.Stat(rt.SysRoot, target)
	if err != nil {
		r.block("target "+target+": "+err.Error(), "create the volume first (lvcreate -L SIZE -n root VG) and name its device")
		return
	}
	r.Target.Name, r.Target.Size = d.Name, d.Size
	if d.Dev() == rootDev {
		r.block(target+" is / itself", "name the NEW device")
		return
	}
	stack := &blockdev.Stack{SysRoot: rt.SysRoot, ProcRoot: rt.ProcRoot, Mounts: mounts}
	node := blockdev.Node{Path: target, Block: true, Rdev: d.Dev()}
	if rel, why := stack.Overlap(node, blockdev.Node{Block: true, Rdev: rootDev}); rel {
		r.block(target+" and / share a device: "+why, "use a device that does not hold /")
	}
	// In use: no --force overrides these.
	busy, err := stack.InUse(node, true)
	if err != nil {
		r.block("target "+target+": "+err.Error(), "check that /proc is readable")
	}
	for _, why := range busy {
		r.block(target+" is in use: "+why, "free it (umount, swapoff, vgchange -an, mdadm --stop) or name another device")
	}
	if d.ReadOnly {
		r.block(target+" is read-only", "blockdev --setrw "+target)
	}
	if r.Mkfs != "" {
		r.checkFiles(d.Size)
	} else if r.Root.Size > 0 && d.Size < r.Root.Size {
		r.block(fmt.Sprintf("%s is %s, smaller than the root filesystem (%s): %s short",
			target, human(d.Size), human(r.Root.Size), human(r.Root.Size-d.Size)),
			"grow the target (lvextend -L +SIZE "+target+") or shrink / first")
	}
	sigs, _ := fstools.Signatures(target)
	for i, fs := range sigs {
		if i == 0 {
			r.Target.Signature = fs.String()
		}
		flag, ok := SignatureFlag(fs.Type, opts)
		if !ok {
			r.block(target+" is not empty: it holds "+fs.String(), "wipe it (wipefs -a "+target+") or pass "+flag+" to overwrite it")
		} else {
			r.warn(target + " holds " + fs.String() + "; " + flag + ": it will be overwritten")
		}
	}
}

// SignatureFlag is the flag that lets run overwrite a signature of type
// fstype on the target, and whether opts carry it: --force for a plain
// filesystem (the copy an earlier run left), a flag of its own for what
// says the device belongs to something else.
func SignatureFlag(fstype string, opts Options) (string, bool) {
	switch fstype {
	case "swap":
		return "--force-swap-signature", opts.ForceSwap
	case "LVM2_member":
		return "--force-lvm-label", opts.ForceLVM
	case "linux_raid_member":
		return "--force-md-superblock", opts.ForceMD
	}
	return "--force", opts.Force
}

func (r *Report) block(problem, fix string) {
	r.Blockers = append(r.Blockers, Blocker{problem, fix})
}

func (r *Report) warn(w string) { r.Warnings = append(r.Warnings, w) }

// loopBackedBy reports whether the loop device node's backing file lives
// on the filesystem dev (LOOP_GET_STATUS64's lo_device, not the path
// text in sysfs, which is relative to whoever set the loop up).
func loopBackedBy(node string, dev uint64) bool {
	f, err := os.Open(node)
	if err != nil {
		return false
	}
	defer f.Close()
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	return err == nil && info.Device == dev
}

func loopsBackedBy(sysRoot string, dev uint64) []string {
	var out []string
	ents, _ := os.ReadDir(filepath.Join(sysRoot, "block"))
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "loop") {
			continue
		}
		if _, err := os.Stat(filepath.Join(sysRoot, "block", e.Name(), "loop")); err != nil {
			continue // not attached
		}
		if loopBackedBy("/dev/"+e.Name(), dev) {
			b, _ := os.ReadFile(filepath.Join(sysRoot, "block", e.Name(), "loop", "backing_file"))
			out = append(out, "/dev/"+e.Name()+" backed by "+strings.TrimSpace(string(b)))
		}
	}
	return out
}

// Ancestors returns pid and every ancestor of it up to (not including)
// PID 1: the admin's shell, sshd session and the foreground rootswap hold
// the old root until they exit, and are never stopped or killed.
func Ancestors(procRoot string, pid int) map[int]bool {
	out := map[int]bool{}
	for cur, n := pid, 0; cur > 1 && n < 1000; n++ {
		out[cur] = true
		cur = PPID(procRoot, cur)
	}
	return out
}

// PPID reads a process's parent from /proc/PID/status (0 when gone).
func PPID(procRoot string, pid int) int {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func memAvailable(procRoot string) int64 {
	f, err := os.Open(filepath.Join(procRoot, "meminfo"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func setOf(l []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range l {
		m[s] = true
	}
	return m
}

// addOtherNS groups processes by the mount namespace that holds /: one
// line a namespace, with its services, however many processes it has.
func (r *Report) addOtherNS(ns string, p Proc) {
	for i := range r.OtherNS {
		o := &r.OtherNS[i]
		if o.Note == ns {
			o.PID = min(o.PID, p.PID)
			n, _ := strconv.Atoi(strings.Fields(o.What)[0])
			o.What = fmt.Sprintf("%d processes in mount namespace %s hold /", n+1, ns)
			if p.Service != "" && !strings.Contains(o.Service, p.Service) {
				o.Service = strings.TrimPrefix(o.Service+","+p.Service, ",")
			}
			return
		}
	}
	p.Note = ns
	p.What = "1 processes in mount namespace " + ns + " hold /"
	r.OtherNS = append(r.OtherNS, p)
}

// fsSize is the size the root filesystem spans (its superblock), which
// is what the target must hold; the device size when it cannot be read.
func fsSize(dev string, devSize int64) int64 {
	f, err := os.Open(dev)
	if err != nil {
		return devSize
	}
	defer f.Close()
	if sb, err := ext.ReadSuperblock(f); err == nil {
		return sb.Size()
	}
	if fs, err := fstools.Detect(f); err == nil && fs.Size > 0 {
		return fs.Size
	}
	return devSize
}

// checkBinds lists the bind mounts of the root's own directories, which
// remake-binds re-makes from the new root; one whose directory was
// deleted has nothing to be re-made from.
func (r *Report) checkBinds(mounts mountinfo.Table, root mountinfo.Mount, opts Options) {
	for _, b := range mountops.RootBinds(mounts, root) {
		if strings.HasPrefix(b.Point, DefaultNewRoot) || b.Point == opts.EngineDir || strings.HasPrefix(b.Point, opts.EngineDir+"/") {
			continue
		}
		if dir, deleted := strings.CutSuffix(b.Source, mountops.DeletedSuffix); deleted {
			r.block(fmt.Sprintf("the bind mount on %s shows %s of / deleted: nothing to re-make it from on the new root", b.Point, dir),
				"umount "+b.Point+" (and bind a directory that exists)")
			continue
		}
		r.Binds = append(r.Binds, b)
	}
}

// checkSwapFiles finds the active swap files on / (swapoff turns them
// off before the read-only remount) and refuses when the memory
// available cannot take back what is swapped out to them.
func (r *Report) checkSwapFiles(procRoot string, rootDev uint64) error {
	sw, err := swapFilesOn(procRoot, rootDev)
	if err != nil {
		return err
	}
	r.SwapFiles = sw
	var used int64
	for _, a := range sw {
		used += a.Used
	}
	if used == 0 || r.MemAvail == 0 {
		return nil
	}
	margin := swapMargin(used)
	if need := used + margin + r.MemNeeded; r.MemAvail < need {
		r.block(fmt.Sprintf("swapoff of the swap files on / must bring %s back into memory; with a margin of %s and the engine's %s that needs %s, but MemAvailable is %s",
			human(used), human(margin), human(r.MemNeeded), human(need), human(r.MemAvail)),
			"free memory (stop a large service), or add swap on another device first (swapon /dev/...), then try again")
	}
	return nil
}

// gone reports whether process pid has exited (its /proc entry is gone).
func gone(procRoot string, pid int) bool {
	_, err := os.Stat(filepath.Join(procRoot, strconv.Itoa(pid)))
	return errors.Is(err, fs.ErrNotExist)
}
