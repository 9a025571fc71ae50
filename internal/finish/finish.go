// Package finish is step 12 of the procedure: once a swap is confirmed,
// make the next boot come up on the new root. It points fstab's / entry
// at the new filesystem, regenerates the initramfs with what the new
// root's stack needs (LVM, md), regenerates GRUB's configuration and
// checks the root= it wrote, and finally takes the old root out of the
// way: relabelled (oldroot, a new UUID) so that LABEL= and UUID= find
// only the new one, or with WipeOld its signatures erased.
//
// Everything is found, not guessed: the root from the mount table and
// sysfs, the old root from the swap journal, the tools by their files
// under Root. Every check runs before the first change; every action is
// printed before it runs, and DryRun prints them all and changes nothing.
package finish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// OldLabel is the label the old root gets.
const OldLabel = fstools.OldRootLabel

// RelabelApplet is the applet that relabels by hand as finish does.
const RelabelApplet = "tune2fs-relabel"

// Config is one finish run.
type Config struct {
	// Env has the streams, the /proc and /sys roots, the clock and PATH.
	Env *cli.Env
	// Root is where the host's files are (/etc/fstab, /boot, the tools
	// finish looks for): "/" on a live system, a fixture tree in tests.
	// The commands always run on the live system.
	Root string
	// Run runs the distribution's tools; nil means ExecRunner(Env).
	Run Runner
	// Output runs a tool that only reports (mdadm --detail --scan) and
	// returns its standard output; nil means ExecRunner's, captured.
	Output func(ctx context.Context, argv []string) ([]byte, error)
	// Devices looks at block devices; zero means LiveDevices(Env).
	Devices Devices

	Old         string // the old root's device; empty: from the swap journal
	WipeOld     bool   // erase the old root's signatures instead of relabelling it
	GrubInstall string // a disk to run grub-install on; empty: none
	DryRun      bool   // print the actions, change nothing
	Yes         bool   // do not ask before wiping
	Force       bool   // go on when the initramfs would lack what the root needs

	NextBoot NextBoot // the first boot of the new root (nextboot.go)
}

// Device is a block device and what it holds.
type Device struct {
	Path  string // the stable name: /dev/mapper/sys-root, /dev/sda2
	Dev   uint64
	FS    fstools.FS
	Stack Stack
}

// Plan is everything finish found and decided before changing anything.
type Plan struct {
	cfg  *Config
	root string

	New, Old Device
	OldFrom  string // where the old root came from: the journal's path, or --old

	relabelled string // the UUID the swap's relabel-old step gave the old root

	FstabData []byte   // /etc/fstab as read; nil when there is none
	Fstab     *Fstab   // the rewritten fstab; nil when unchanged
	FstabDiff []string // "/ LABEL=root ext3 -> UUID=... ext4"
	Backup    string   // the backup's path under Root: /etc/fstab.rootswap-...

	Generator *Generator
	Boot      *Bootloader

	bootArgs // the kernel arguments and the stack's files (bootargs.go)

	// OldAction is "relabel", "wipe", or "" (OldSkip says why).
	OldAction, OldSkip string
	WipeArgv           []string // wipefs -a DEV; nil: zero the superblocks natively

	Warnings []string

	next *nextBoot // the first boot's set-up (nextboot.go)
}

// Prepare finds everything and checks everything; it changes nothing. An
// error means finish must not start (and did not).
func Prepare(ctx context.Context, cfg *Config) (*Plan, error) {
	env := cfg.Env
	p := &Plan{cfg: cfg, root: cfg.Root}
	if p.root == "" {
		p.root = "/"
	}
	if cfg.Devices.Rdev == nil {
		cfg.Devices = LiveDevices(env)
	}
	dev := cfg.Devices

	// The new root: what / is now.
	mounts, err := blockdev.ReadMounts(env.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	rootMount, ok := mounts.Containing("/")
	if !ok {
		return nil, errors.New("the mount table has no / mount")
	}
	p.New.Dev = rootMount.Dev()
	if rootMount.Major == 0 {
		// btrfs reports an anonymous device; its source names the disk.
		if !filepath.IsAbs(rootMount.Source) {
			return nil, errors.New("/ is " + rootMount.String() + ", not on a block device: nothing to finish")
		}
		if p.New.Dev, err = dev.Rdev(rootMount.Source); err != nil {
			return nil, fmt.Errorf("/ is %s: %w", rootMount, err)
		}
	}
	if p.New.Path, err = DevicePath(env.SysRoot, p.New.Dev); err != nil {
		return nil, fmt.Errorf("the new root (/ is %s): %w", rootMount, err)
	}
	if p.New.FS, err = dev.Detect(p.New.Path); err != nil {
		return nil, err
	}
	if !p.New.FS.IsFilesystem() {
		return nil, errors.New("/ is on " + p.New.Path + ", which shows " + p.New.FS.String())
	}
	p.New.Stack = StackOf(env.SysRoot, p.New.Dev)

	// The old root: named, or from the last swap's journal.
	if cfg.Old != "" {
		p.Old.Path, p.OldFrom = cfg.Old, "--old"
		if p.Old.Dev, err = dev.Rdev(cfg.Old); err != nil {
			return nil, fmt.Errorf("--old %s: %w", cfg.Old, err)
		}
	} else {
		st, jpath, err := lastSwap(p.root)
		if err != nil {
			return nil, err
		}
		m := st.OldRoot
		p.relabelled = st.OldRelabelled
		p.OldFrom = "the swap journal " + display(p.root, jpath)
		p.Old.Dev = m.Dev()
		if m.Major == 0 && filepath.IsAbs(m.Source) {
			// btrfs: mountinfo showed an anonymous device; the source
			// names the disk.
			if p.Old.Dev, err = dev.Rdev(m.Source); err != nil {
				return nil, fmt.Errorf("the old root (%s, from %s): %w", m, jpath, err)
			}
		}
		if p.Old.Path, err = DevicePath(env.SysRoot, p.Old.Dev); err != nil {
			return nil, fmt.Errorf("the old root (%s, from %s): %w", m, jpath, err)
		}
	}
	if p.Old.Dev == p.New.Dev {
		return nil, errors.New("/ is still on the old root " + p.Old.Path + ": the swap did not take place or was rolled back; nothing to finish")
	}
	if related, why := blockdev.Related(env.SysRoot, p.Old.Dev, p.New.Dev); related {
		return nil, errors.New("the old root " + p.Old.Path + " and the new root " + p.New.Path + " share storage (" + why + "): refusing to touch it")
	}
	if p.Old.FS, err = dev.Detect(p.Old.Path); err != nil {
		return nil, err
	}
	p.Old.Stack = StackOf(env.SysRoot, p.Old.Dev)

	// The old root must be free: mounted nowhere, held by nothing.
	_, where, err := mountsAnywhere(env.ProcRoot, p.Old.Dev)
	if err != nil {
		return nil, err
	}
	if len(where) > 0 {
		return nil, errors.New("the old root " + p.Old.Path + " is still mounted at " + strings.Join(where, ", ") + ": the swap should have released it; unmount it first (finish touches only a free device)")
	}
	if busy, err := dev.InUse(p.Old.Path); err != nil {
		return nil, err
	} else if busy {
		return nil, errors.New("the old root " + p.Old.Path + " is held by the kernel (mounted in a namespace finish cannot see, or a dm/md/LVM device sits on it): free it first (see lsblk, dmsetup ls, rootswap lsof)")
	}

	if err := p.planFstab(mounts.Containing); err != nil {
		return nil, err
	}
	if err := p.planBoot(); err != nil {
		return nil, err
	}
	if err := p.planStack(ctx); err != nil {
		return nil, err
	}
	if err := p.planBootArgs(); err != nil {
		return nil, err
	}
	if err := p.planOld(); err != nil {
		return nil, err
	}
	p.planNextBoot(mounts)
	return p, nil
}

// planFstab computes the new fstab. The / entry is kept as LABEL= when
// the new filesystem carries the label it names, else it becomes UUID= of
// the new filesystem; its type follows the filesystem's.
func (p *Plan) planFstab(containing func(string) (mountinfo.Mount, bool)) error {
	data, err := os.ReadFile(filepath.Join(p.root, "etc/fstab"))
	if errors.Is(err, os.ErrNotExist) {
		p.Warnings = append(p.Warnings, "there is no /etc/fstab: the root is whatever the kernel command line names")
		return nil
	}
	if err != nil {
		return err
	}
	p.FstabData = data
	f := ParseFstab(data)

	// /boot on its own filesystem must be mounted, or the initramfs and
	// grub.cfg would be written into the root's empty /boot directory.
	// So must the EFI system partition, or its loader files go unseen.
	for _, dir := range []string{"/boot", "/boot/efi", "/efi"} {
		for _, e := range f.Mounting(dir) {
			if hasOpt(e.Opts, "noauto") {
				continue
			}
			if m, ok := containing(dir); !ok || m.Point != dir {
				return errors.New(dir + " is in /etc/fstab (" + e.Spec + ") but not mounted: mount " + dir + " first (the boot files would go to the root's empty " + dir + ")")
			}
		}
	}

	fs := p.New.FS
	for _, e := range f.Root() {
		spec := e.Spec
		tag, value := splitTag(e.Spec)
		switch {
		case tag == "LABEL" && fs.Label != "" && value == fs.Label:
		case tag == "UUID" && strings.EqualFold(value, fs.UUID):
		case fs.UUID != "":
			spec = "UUID=" + fs.UUID
		default:
			spec = p.New.Path
		}
		vfs := e.VfsType
		if vfs != "auto" && vfs != fs.Type {
			vfs = fs.Type
		}
		if spec == e.Spec && vfs == e.VfsType {
			p.FstabDiff = append(p.FstabDiff, "/ "+escapeFstab(e.Spec)+" "+e.VfsType+" already names the new root: unchanged")
			continue
		}
		if p.Fstab == nil {
			p.Fstab = ParseFstab(data)
		}
		if spec != e.Spec {
			p.Fstab.SetField(p.Fstab.Entries[indexOfLine(p.Fstab, e.Line)], FieldSpec, spec)
		}
		opts := e.Opts
		if vfs != e.VfsType {
			p.Fstab.SetField(p.Fstab.Entries[indexOfLine(p.Fstab, e.Line)], FieldVfsType, vfs)
			// A new type (a file-mode swap): the old type's own options
			// (ext's errors=remount-ro) would fail the mount.
			if !strings.HasPrefix(vfs, "ext") || !strings.HasPrefix(e.VfsType, "ext") {
				opts = genericOpts(opts)
			}
			if opts != e.Opts {
				p.Fstab.SetField(p.Fstab.Entries[indexOfLine(p.Fstab, e.Line)], FieldOpts, opts)
			}
		}
		d := "/ " + escapeFstab(e.Spec) + " " + e.VfsType + " -> " + escapeFstab(spec) + " " + vfs
		if opts != e.Opts {
			d += " (options " + e.Opts + " -> " + opts + ")"
		}
		p.FstabDiff = append(p.FstabDiff, d)
	}
	if len(f.Root()) == 0 {
		p.FstabDiff = append(p.FstabDiff, "no entry for / (the kernel command line names the root): unchanged")
	}
	p.planSameFS(f, data)
	if p.Fstab != nil {
		p.Backup = p.backupName()
	}
	return nil
}

// planSameFS points the other entries that name the old root's
// filesystem (a btrfs root's /home on subvol=@home: UUID= of the same
// fsid, or its device) at the new one. The copy of an xfs or btrfs root
// got a UUID of its own, and the old root is relabelled last: left
// alone, such an entry would find nothing at the next boot. LABEL=
// entries stay: the copy carries the label, the old root loses it.
func (p *Plan) planSameFS(f *Fstab, data []byte) {
	newID := p.New.FS.UUID
	if newID == "" {
		return
	}
	for _, e := range f.Entries {
		if e.File == "/" {
			continue
		}
		tag, value := splitTag(e.Spec)
		switch {
		case tag == "UUID" && p.Old.FS.UUID != "" && strings.EqualFold(value, p.Old.FS.UUID) && !strings.EqualFold(value, newID):
		case tag == "" && strings.HasPrefix(e.Spec, "/dev/") && p.names(p.Old, e.Spec):
		default:
			continue
		}
		if p.Fstab == nil {
			p.Fstab = ParseFstab(data)
		}
		spec := "UUID=" + newID
		p.Fstab.SetField(p.Fstab.Entries[indexOfLine(p.Fstab, e.Line)], FieldSpec, spec)
		p.FstabDiff = append(p.FstabDiff, escapeFstab(e.File)+" "+escapeFstab(e.Spec)+" -> "+spec+" (the root's own filesystem: the new root now)")
	}
}

func indexOfLine(f *Fstab, line int) int {
	for i, e := range f.Entries {
		if e.Line == line {
			return i
		}
	}
	return -1
}

// genericOpts keeps the mount options every filesystem takes (the
// VFS's and mount(8)'s own), "defaults" when none is left.
func genericOpts(opts string) string {
	var keep []string
	for _, o := range strings.Split(opts, ",") {
		switch {
		case strings.HasPrefix(o, "x-"), strings.HasPrefix(o, "comment="), strings.Contains(
			",defaults,ro,rw,auto,noauto,nofail,user,nouser,users,owner,group,sync,async,dirsync,atime,noatime,diratime,nodiratime,relatime,norelatime,strictatime,lazytime,nolazytime,dev,nodev,exec,noexec,suid,nosuid,silent,loud,_netdev,",
			","+o+","):
			keep = append(keep, o)
		}
	}
	if len(keep) == 0 {
		return "defaults"
	}
	return strings.Join(keep, ",")
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// backupName is /etc/fstab.rootswap-YYYYmmddTHHMMSS, with -N added when a
// backup of the same second exists.
func (p *Plan) backupName() string {
	now := time.Now
	if p.cfg.Env.Now != nil {
		now = p.cfg.Env.Now
	}
	base := "/etc/fstab.rootswap-" + now().Format("20060102T150405")
	name := base
	for n := 1; exists(p.root, name[1:]); n++ {
		name = base + "-" + strconv.Itoa(n)
	}
	return name
}

func (p *Plan) planBoot() error {
	p.Generator = DetectGenerator(p.root, p.New.Stack)
	needs := p.New.Stack.Needs()
	switch {
	case p.Generator == nil && needs != "":
		msg := "the new root is on " + needs + " and no initramfs generator is installed (initramfs-tools, dracut, mkinitcpio, genkernel): install one (and lvm2/mdadm) first: the initramfs cannot find the root"
		if !p.cfg.Force {
			return errors.New(msg + " (--force goes on anyway)")
		}
		p.Warnings = append(p.Warnings, msg)
	case p.Generator != nil && p.Generator.Missing != "":
		if !p.cfg.Force {
			return errors.New(p.Generator.Name + ": " + p.Generator.Missing + " (--force goes on anyway)")
		}
		p.Warnings = append(p.Warnings, p.Generator.Name+": "+p.Generator.Missing)
	}
	p.Boot = DetectBootloader(p.root)
	if err := p.planEFI(); err != nil {
		return err
	}
	if disk := p.cfg.GrubInstall; disk != "" && (p.Boot == nil || p.Boot.InstallArgs == nil) {
		if p.Boot == nil || p.Boot.Install == "" {
			return errors.New("--grub-install " + disk + ": no GRUB installed here (grub-install and /boot/grub not found under " + p.root + ")")
		}
		d, err := p.cfg.Devices.Rdev(disk)
		if err != nil {
			return fmt.Errorf("--grub-install %s: %w", disk, err)
		}
		if d == p.Old.Dev {
			return errors.New("--grub-install " + disk + ": that is the old root, not a disk")
		}
	}
	return nil
}

func (p *Plan) planOld() error {
	old, newFS := p.Old.FS, p.New.FS
	switch {
	case old.Type == "":
		p.OldSkip = "shows no known signature: nothing to relabel or wipe"
		return nil
	case p.cfg.WipeOld:
		p.OldAction = "wipe"
		if p.cfg.Devices.HasTool("wipefs") {
			p.WipeArgv = []string{"wipefs", "-a", p.Old.Path}
		} else if signatureAreas(old.Type) == nil {
			return errors.New("--wipe-old: the old root " + p.Old.Path + " holds " + old.String() + " and wipefs is not installed: install util-linux's wipefs")
		}
	case old.Label == OldLabel && !strings.EqualFold(old.UUID, newFS.UUID):
		by := ""
		if p.relabelled != "" && strings.EqualFold(old.UUID, p.relabelled) {
			by = " by the swap's relabel-old step"
		}
		p.OldSkip = fmt.Sprintf("already relabelled%s (label %q, UUID %s)", by, old.Label, old.UUID)
	case !old.IsFilesystem():
		return errors.New("the old root " + p.Old.Path + " holds " + old.String() + ": " + RelabelApplet + " handles ext2/3/4, xfs and btrfs (--wipe-old erases any signature)")
	default:
		p.OldAction = "relabel"
	}
	return nil
}

// display is path as the host sees it (Root taken off).
func display(root, path string) string {
	if root == "/" {
		return path
	}
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		return path
	}
	return "/" + rel
}

// Run prepares and then carries out a finish, printing each action
// before it runs.
func Run(ctx context.Context, cfg *Config) error {
	p, err := Prepare(ctx, cfg)
	if err != nil {
		return err
	}
	return p.Execute(ctx)
}

// Execute carries out the plan (or with DryRun only prints it).
func (p *Plan) Execute(ctx context.Context) error {
	cfg, env := p.cfg, p.cfg.Env
	run := cfg.Run
	if run == nil {
		run = ExecRunner(env)
	}
	if cfg.DryRun {
		run = func(context.Context, []string) error { return nil }
	}
	act := func(s string) { env.Printf("==> %s\n", s) }

	env.Printf("finish: / is %s: %s%s\n", p.New.Path, p.New.FS, stackNote(p.New.Stack))
	env.Printf("finish: the old root is %s: %s (from %s)\n", p.Old.Path, p.Old.FS, p.OldFrom)
	for _, w := range p.Warnings {
		env.Errorf("rootswap finish: WARNING: %s\n", w)
	}
	if cfg.DryRun {
		p.rebootNow()
	}
	if p.OldAction == "wipe" && !cfg.DryRun && !cfg.Yes {
		if err := confirmWipe(env, p.Old); err != nil {
			return err
		}
	}

	// 1. fstab.
	for i, d := range p.FstabDiff {
		if i == len(p.FstabDiff)-1 && p.Fstab != nil {
			d += " (backup " + p.Backup + ")"
		}
		act("fstab: " + d)
	}
	if p.Fstab != nil && !cfg.DryRun {
		if err := p.writeFstab(); err != nil {
			return err
		}
	}

	// 2. what the initramfs and the boot loader read: mdadm.conf, the
	// LVM devices file, the kernel arguments.
	if err := p.doActions(ctx, run, p.Pre); err != nil {
		return err
	}

	if err := p.nextBootBefore(ctx, run, act); err != nil {
		return err
	}

	// 3. initramfs.
	if g := p.Generator; g != nil {
		why := g.Name
		if n := p.New.Stack.Needs(); n != "" {
			why += "; the new root needs " + n
		}
		act("initramfs: " + strings.Join(g.Argv, " ") + " (" + why + ")")
		if err := run(ctx, g.Argv); err != nil {
			return fmt.Errorf("regenerating the initramfs: %w", err)
		}
	} else {
		act("initramfs: no generator installed (initramfs-tools, dracut, mkinitcpio, genkernel): skipped")
	}

	// 4. the boot loader, and what it will pass as root=.
	if b := p.Boot; b != nil {
		act("bootloader: " + strings.Join(b.Mkconfig, " ") + " (writes " + b.Config + ")")
		if err := run(ctx, b.Mkconfig); err != nil {
			return fmt.Errorf("regenerating the GRUB configuration: %w", err)
		}
		if disk := cfg.GrubInstall; disk != "" {
			argv := []string{b.Install, disk}
			if b.InstallArgs != nil {
				argv = append([]string{b.Install}, b.InstallArgs...)
			}
			act("bootloader: " + strings.Join(argv, " "))
			if err := run(ctx, argv); err != nil {
				return fmt.Errorf("installing GRUB on %s: %w", disk, err)
			}
		}
	}
	if p.Layout != "" {
		act("check: the root= of every kernel line of " + p.Layout)
		if !cfg.DryRun {
			n, err := p.checkBoot(p.readHost)
			if err != nil {
				return err
			}
			env.Printf("    %s kernel lines boot the new root (root=%s)\n", strconv.Itoa(n), p.rootArg())
		}
	} else if b := p.Boot; b != nil {
		act("check: the root= of every kernel line in " + b.Config)
		if !cfg.DryRun {
			msg, err := p.checkGrub()
			if err != nil {
				return err
			}
			env.Printf("    %s\n", msg)
		}
	} else {
		act("bootloader: no GRUB found (/boot/grub with update-grub or grub-mkconfig): skipped; make sure the boot loader passes root=UUID=" + p.New.FS.UUID + " or root=" + p.New.Path)
	}

	// 5. the old root, last: until here it was the fallback.
	switch p.OldAction {
	case "relabel":
		argv := []string{p.Old.Path, "--label", OldLabel}
		act("old root: relabel " + p.Old.Path + " to " + OldLabel + " with a new random UUID (" + RelabelApplet + " " + strings.Join(argv, " ") + "), so that LABEL=" + p.Old.FS.Label + " and UUID=" + p.Old.FS.UUID + " find only the new root")
		if !cfg.DryRun {
			if err := p.relabel(ctx); err != nil {
				return err
			}
		}
	case "wipe":
		how := "zero its superblock natively (wipefs is not installed)"
		if p.WipeArgv != nil {
			how = strings.Join(p.WipeArgv, " ")
		}
		act("old root: erase every signature of " + p.Old.Path + " (" + p.Old.FS.String() + "): " + how)
		if !cfg.DryRun {
			if err := p.wipe(ctx, run); err != nil {
				return err
			}
		}
	default:
		act("old root: " + p.Old.Path + " " + p.OldSkip + ": left alone")
	}

	if err := p.nextBootAfter(act); err != nil {
		return err
	}

	if cfg.DryRun {
		env.Printf("finish: dry run: nothing was changed\n")
		return nil
	}
	env.Printf("finish: done; the next boot comes up on %s\n", p.New.Path)
	if p.next.skip == "" {
		env.Printf("finish: that boot only: unless it is confirmed within %s (%s), the machine comes back on the old root %s by itself; `rootswap status` says which\n",
			p.next.deadline, p.next.confirmHow(p.cfg.NextBoot.Manual), p.Old.Path)
	}
	return nil
}

// rebootFinds is what a name finds: neither root, the new, the old, both.
var rebootFinds = [...]string{"neither root: the boot would stop there", "only the new root",
	"only the old root (/ as frozen for the copy)", "both roots: either may come up"}

// rebootNow prints what the boot loader's root= and fstab's / find with
// the identities the roots carry now, before finish changes anything.
func (p *Plan) rebootNow() {
	say := func(what, v string) {
		i := 0
		if p.names(p.New, v) {
			i = 1
		}
		if p.names(p.Old, v) {
			i += 2
		}
		p.cfg.Env.Printf("finish: a reboot now: %s%s finds %s\n", what, v, rebootFinds[i])
	}
	if p.Boot != nil {
		data, _ := os.ReadFile(filepath.Join(p.root, p.Boot.Config))
		if l := KernelLines(data); len(l) > 0 {
			say("the boot loader's first root=", l[0].Root)
		}
	}
	for _, e := range ParseFstab(p.FstabData).Root() {
		say("fstab's / ", e.Spec)
	}
}

func stackNote(s Stack) string {
	if n := s.Needs(); n != "" {
		return " (on " + n + ": " + strings.Join(s.Path, " on ") + ")"
	}
	return ""
}

// confirmWipe asks the admin to type the old root's device name.
func confirmWipe(env *cli.Env, old Device) error {
	if env.Stdin == nil {
		return errors.New("--wipe-old: cannot ask for confirmation (no input); pass --yes to wipe " + old.Path)
	}
	env.Printf("finish: --wipe-old erases every signature of %s (%s); its data can then be found only by hand.\n", old.Path, old.FS)
	env.Printf("finish: type %s to go on: ", old.Path)
	line, err := readLine(env.Stdin)
	if err != nil && line == "" {
		return fmt.Errorf("--wipe-old: no confirmation (%v): nothing was changed", err)
	}
	if strings.TrimSpace(line) != old.Path {
		return fmt.Errorf("--wipe-old: %q is not %s: nothing was changed", strings.TrimSpace(line), old.Path)
	}
	return nil
}

// readLine reads up to a newline one byte at a time, so that nothing
// after it is taken from a shared stdin.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
}

// writeFstab keeps the old file as the backup, then replaces fstab
// atomically (write, fsync, rename, fsync the directory).
func (p *Plan) writeFstab() error {
	etc := filepath.Join(p.root, "etc")
	path := filepath.Join(etc, "fstab")
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := writeSynced(filepath.Join(p.root, p.Backup), p.FstabData, fi, os.O_EXCL); err != nil {
		return fmt.Errorf("backing up /etc/fstab: %w", err)
	}
	if err := writeAtomic(path, p.Fstab.Bytes()); err != nil {
		return fmt.Errorf("writing the new /etc/fstab: %w", err)
	}
	return nil
}

func writeSynced(path string, data []byte, like os.FileInfo, flag int) error {
	perm := os.FileMode(0o644) // a new file (like is nil)
	if like != nil {
		perm = like.Mode().Perm()
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if like != nil {
		if st, ok := like.Sys().(*syscall.Stat_t); ok {
			f.Chown(int(st.Uid), int(st.Gid)) // the owner of the old file; fails harmlessly when not root
		}
	}
	f.Chmod(perm)
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkGrub reads the generated grub.cfg and sees which root each kernel
// line boots. It fails when every kernel line still boots the old root.
func (p *Plan) checkGrub() (string, error) {
	path := filepath.Join(p.root, p.Boot.Config)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("checking the generated GRUB configuration: %w", err)
	}
	lines := KernelLines(data)
	if len(lines) == 0 {
		return "", errors.New(p.Boot.Config + " has no kernel (linux) lines: GRUB would boot nothing; is a kernel installed in /boot?")
	}
	var toNew, toOld, other []string
	for _, l := range lines {
		desc := "line " + strconv.Itoa(l.Line) + ": " + l.Kernel + " root=" + l.Root
		switch {
		case p.names(p.New, l.Root):
			toNew = append(toNew, desc)
		case p.names(p.Old, l.Root):
			toOld = append(toOld, desc)
		default:
			other = append(other, desc)
		}
	}
	if len(toNew) == 0 && len(toOld) == len(lines) {
		return "", errors.New("every kernel line of " + p.Boot.Config + " still boots the old root " + p.Old.Path + " (" + strings.Join(toOld, "; ") + "): fix GRUB_DEVICE/GRUB_CMDLINE_LINUX in /etc/default/grub and run finish again; the old root was left alone")
	}
	if len(toNew) == 0 {
		p.cfg.Env.Errorf("rootswap finish: WARNING: no kernel line of %s names the new root %s: %s; check the boot loader by hand\n",
			p.Boot.Config, p.New.Path, strings.Join(other, "; "))
	}
	for _, d := range toOld {
		p.cfg.Env.Errorf("rootswap finish: WARNING: %s %s still boots the old root %s\n", p.Boot.Config, d, p.Old.Path)
	}
	first := lines[0].Root
	return strconv.Itoa(len(toNew)) + " of " + strconv.Itoa(len(lines)) + " kernel lines boot the new root (the first: root=" + first + ")", nil
}

// names reports whether a root= value finds device d.
func (p *Plan) names(d Device, root string) bool {
	if root == "" {
		return false
	}
	tag, v := splitTag(root)
	switch tag {
	case "UUID":
		return d.FS.UUID != "" && strings.EqualFold(v, d.FS.UUID)
	case "LABEL":
		return d.FS.Label != "" && v == d.FS.Label
	case "":
	default:
		return false // PARTUUID=, PARTLABEL=: not a filesystem's identity
	}
	if root == d.Path {
		return true
	}
	if a, b, ok := strings.Cut(root, ":"); ok {
		maj, e1 := strconv.ParseUint(a, 10, 32)
		min, e2 := strconv.ParseUint(b, 10, 32)
		if e1 == nil && e2 == nil {
			return unix.Mkdev(uint32(maj), uint32(min)) == d.Dev
		}
	}
	if strings.HasPrefix(root, "/dev/") {
		if rd, err := p.cfg.Devices.Rdev(root); err == nil {
			return rd == d.Dev
		}
	}
	return false
}

// relabel relabels the old root as tune2fs-relabel does and checks what
// the device shows afterwards.
func (p *Plan) relabel(ctx context.Context) error {
	env := p.cfg.Env
	if _, err := p.cfg.Devices.Relabel(ctx, env.Stdout, env.Getenv, env.SysRoot, env.ProcRoot, p.Old.Path); err != nil {
		return fmt.Errorf("relabelling the old root %s: %w", p.Old.Path, err)
	}
	after, err := p.cfg.Devices.Detect(p.Old.Path)
	if err != nil {
		return err
	}
	if after.Label != OldLabel || strings.EqualFold(after.UUID, p.New.FS.UUID) {
		return errors.New("after relabelling, the old root " + p.Old.Path + " shows " + after.String() + ": LABEL=/UUID= may still find it")
	}
	return nil
}

// wipe erases the old root's signatures with wipefs, or natively, and
// checks that nothing is recognised on it any more.
func (p *Plan) wipe(ctx context.Context, run Runner) error {
	if p.WipeArgv != nil {
		if err := run(ctx, p.WipeArgv); err != nil {
			return fmt.Errorf("wiping the old root %s: %w", p.Old.Path, err)
		}
	} else {
		size, err := p.cfg.Devices.Size(p.Old.Path)
		if err != nil {
			return err
		}
		if err := wipeNative(p.Old.Path, p.Old.FS.Type, size); err != nil {
			return fmt.Errorf("wiping the old root: %w", err)
		}
	}
	after, err := p.cfg.Devices.Detect(p.Old.Path)
	if err != nil {
		return err
	}
	if after.Type != "" {
		return errors.New("after wiping, the old root " + p.Old.Path + " still shows " + after.String())
	}
	p.cfg.Env.Printf("    %s: no known signature left\n", p.Old.Path)
	return nil
}
