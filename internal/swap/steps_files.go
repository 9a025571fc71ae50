package swap

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/filecopy"
	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/journal"
	"golang.org/x/sys/unix"
)

// File mode (--copy files): the copy is a new filesystem, made by mkfs
// and filled file by file, first while / is live, then, read-only, with
// what changed. Block-level steps (fsck, resize, new-uuid, grow, fsck-old)
// have nothing to do: mkfs gives the whole device and a UUID of its own.
func fileSteps(rt *Runtime, all []Step) []Step {
	pre := &filePrecopy{rt}
	var out []Step
	for _, st := range all {
		switch st.Name() {
		case StepPrecopy:
			out = append(out, &mkfsTarget{rt}, pre)
		case StepCopy:
			out = append(out, &fileCopy{rt})
		case "fsck", "resize", "new-uuid", "grow", "fsck-old":
			// mkfs made it whole and the copy was compared file by file:
			// no block image to check, grow or relabel.
		default:
			out = append(out, st)
		}
	}
	return out
}

// checkFiles is the preflight of file mode: the tool that makes the
// filesystem, and room for what / holds.
func (r *Report) checkFiles(size int64) {
	var st unix.Statfs_t
	if unix.Statfs("/", &st) == nil {
		r.Used = int64(st.Blocks-st.Bfree) * st.Bsize
	}
	// The new filesystem's own metadata, and what is written meanwhile.
	need := r.Used + r.Used/10 + 64<<20
	if r.Mkfs == "xfs" {
		need = max(need, 300<<20) // mkfs.xfs makes nothing smaller
	}
	if size < need {
		r.block(fmt.Sprintf("%s is %s; / holds %s, the copy needs at least %s with a margin", r.Target.Path, human(size), human(r.Used), human(need)),
			"use a larger target")
	}
	argv, err := fstools.MkfsArgs(r.Mkfs, r.Target.Path, "")
	if err != nil {
		r.block("--mkfs: "+err.Error(), "--mkfs ext4, xfs or btrfs")
		return
	}
	if p, err := exec.LookPath(argv[0]); err == nil {
		r.Tools[argv[0]] = p
	} else {
		r.block(argv[0]+" not found", "install xfsprogs, btrfs-progs or e2fsprogs, the one with "+argv[0])
	}
}

// ---- mkfs -----------------------------------------------------------------

type mkfsTarget struct{ rt *Runtime }

func (*mkfsTarget) Name() string { return "mkfs" }
func (*mkfsTarget) Fatal() bool  { return true }

func (st *mkfsTarget) argv(s *State) ([]string, error) {
	label := ""
	if fs, err := fstools.DetectPath(st.rt.Report.Root.Device); err == nil {
		label = fs.Label
	}
	return fstools.MkfsArgs(st.rt.Report.Mkfs, s.Opts.Target, label)
}

func (st *mkfsTarget) Describe(s *State) string {
	argv, err := st.argv(s)
	if err != nil {
		return err.Error()
	}
	return strings.Join(argv, " ") + ": a new " + st.rt.Report.Mkfs + " filesystem for the copy, with a UUID of its own (finish writes it and the type into fstab)"
}

func (st *mkfsTarget) Do(ctx context.Context, s *State) error {
	argv, err := st.argv(s)
	if err != nil {
		return err
	}
	if out, err := st.rt.Command(ctx, argv[0], argv[1:]...); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, out)
	}
	fs, err := fstools.DetectPath(s.Opts.Target)
	if err != nil {
		return err
	}
	if fs.Type != st.rt.Report.Mkfs {
		return fmt.Errorf("after %s, %s holds %s", argv[0], s.Opts.Target, fs)
	}
	s.NewUUID = fs.UUID
	return nil
}

// The target is left as it is.
func (*mkfsTarget) Undo(context.Context, *State) error { return nil }

// ---- precopy (files) ------------------------------------------------------

// filePrecopy mounts the new filesystem at the new root's place and
// copies / into it while services run. It copies from a bind mount of /
// alone, which shows what the submounts cover (/dev's static nodes) and
// nothing of theirs.
type filePrecopy struct{ rt *Runtime }

func (*filePrecopy) Name() string { return StepPrecopy }
func (*filePrecopy) Fatal() bool  { return true }
func (st *filePrecopy) Describe(s *State) string {
	return fmt.Sprintf("mount %s at %s (%s) and copy the files of / into it while / is read-write and services run (%s used; hard links, holes, xattrs, ACLs, device nodes, owners, ns times; from a read-only bind mount of / alone at %s, never into another filesystem; immutable and append-only flags wait for the copy step)",
		s.Opts.Target, s.Opts.NewRoot, st.rt.Report.Mkfs, human(st.rt.Report.Used), viewPath(s))
}

// viewPath is where / is bind-mounted for the copy: in the engine's tmpfs.
func viewPath(s *State) string { return filepath.Join(s.Opts.EngineDir, "oldroot-view") }

func (st *filePrecopy) Do(ctx context.Context, s *State) (err error) {
	// The engine undoes completed steps only: a failed one unmounts what
	// it mounted itself.
	defer func() {
		if err != nil {
			if uerr := st.Undo(ctx, s); uerr != nil {
				err = fmt.Errorf("%w; unmounting: %v", err, uerr)
			}
		}
	}()
	rt := st.rt
	view := viewPath(s)
	if err = os.MkdirAll(view, 0o700); err != nil {
		return err
	}
	if err = rt.Mounter.Mount("/", view, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	s.View = view
	// Private, before the new root is mounted: a bind of a shared / is its
	// peer and would get the new root's mount too, and detaching the view
	// would then unmount /mnt/newroot with it. Read-only: the copy only
	// reads it.
	if err = rt.Mounter.Mount("", view, "", unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err = rt.Mounter.Mount("", view, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		return err
	}
	flags := mountFlags(rt.Report.Root.Mount.Options) &^ unix.MS_RDONLY
	if err = rt.Mounter.Mount(s.Opts.Target, s.Opts.NewRoot, rt.Report.Mkfs, flags, ""); err != nil {
		return err
	}
	s.Mounted = true
	s.Since = rt.Now()
	res, err := filecopy.Copy(ctx, s.Opts.NewRoot, view, filecopy.Options{NoFlags: true, Progress: copyProgress(rt, StepPrecopy, 1, view)})
	s.Copied = res.Bytes
	note(rt, "copy (live): "+res.String())
	return err
}

func note(rt *Runtime, msg string) {
	rt.logf("    %s", msg)
	if rt.Journal != nil {
		rt.Journal.Add(journal.Record{Kind: journal.KindNote, Describe: msg})
	}
}

// Undo unmounts the view and the copy; the target is left as it is.
func (st *filePrecopy) Undo(ctx context.Context, s *State) error {
	if s.View != "" {
		if err := st.rt.Mounter.Unmount(s.View, unix.MNT_DETACH); err != nil {
			return err
		}
		s.View = ""
	}
	if s.Mounted {
		if err := st.rt.Mounter.Unmount(s.Opts.NewRoot, unix.MNT_DETACH); err != nil {
			return err
		}
		s.Mounted = false
	}
	return nil
}

// ---- copy (files) ---------------------------------------------------------

// fileCopy is the frozen round of file mode.
type fileCopy struct{ rt *Runtime }

func (*fileCopy) Name() string { return StepCopy }
func (*fileCopy) Fatal() bool  { return true }
func (st *fileCopy) Describe(s *State) string {
	return "copy again what changed since the live copy began (ctime, size, mtime), delete from the copy what / no longer has, set the immutable and append-only flags; then compare both trees (type, mode, owner, size, mtime, device numbers, symlinks, xattrs, flags, hard links) and sync the copy"
}

func (st *fileCopy) Do(ctx context.Context, s *State) error {
	rt := st.rt
	res, err := filecopy.Copy(ctx, s.Opts.NewRoot, s.View, filecopy.Options{Delta: true, Since: s.Since, Progress: copyProgress(rt, StepCopy, 2, s.View)})
	s.Copied += res.Bytes
	note(rt, "copy (frozen): "+res.String())
	if err != nil {
		return err
	}
	diffs, err := filecopy.Compare(s.View, s.Opts.NewRoot, 0)
	if err != nil {
		return err
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the copy differs from /:\n%s", strings.Join(diffs, "\n"))
	}
	fd, err := unix.Open(s.Opts.NewRoot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", s.Opts.NewRoot, err)
	}
	if err := rt.Mounter.Unmount(s.View, unix.MNT_DETACH); err != nil {
		return err
	}
	s.View = ""
	return nil
}

// The new device is left as it is: nothing to undo.
func (*fileCopy) Undo(context.Context, *State) error { return nil }
