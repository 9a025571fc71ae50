package finish

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/blockdev"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/swap"
	"golang.org/x/sys/unix"
)

// journalPaths are where the last swap's journal may be, under Root: the
// engine's tmpfs while it lives, then the archive on the new root (the
// order swap.FindJournal looks in).
func journalPaths(root string) []string {
	return []string{
		filepath.Join(root, swap.JournalPath(swap.DefaultEngineDir)),
		filepath.Join(root, swap.ArchiveDir, "last.journal"),
	}
}

// lastSwap reads the last swap's journal under root and returns its last
// state (the old root's mount; what relabel-old did), refusing a swap
// that has not succeeded (and been confirmed): finishing then would make
// the next boot leave a root that is still the fallback.
func lastSwap(root string) (state *swap.State, path string, err error) {
	for _, p := range journalPaths(root) {
		if _, err := os.Stat(p); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		return nil, "", errors.New("no swap journal found (looked for " + strings.Join(journalPaths(root), " and ") + "): name the old root with --old DEV")
	}
	recs, err := journal.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("reading the swap journal %s: %w", path, err)
	}
	sum := journal.Summarize(recs)
	switch sum.Phase {
	case journal.Succeeded:
	case journal.WaitingConfirm:
		return nil, path, errors.New("the swap in " + path + " waits for confirmation: run `rootswap confirm` first")
	case journal.Running, journal.RollingBack:
		return nil, path, errors.New("the swap in " + path + " is still " + string(sum.Phase) + ": wait for it to end (rootswap status)")
	default:
		return nil, path, errors.New("the last swap (" + path + ") ended " + string(sum.Phase) + ": there is nothing to finish")
	}
	for _, r := range recs {
		if d := r.Data["state"]; d != "" {
			if s, err := swap.Unmarshal(d); err == nil {
				state = s
			}
		}
	}
	if state == nil || state.OldRoot.Major == 0 && state.OldRoot.Minor == 0 {
		return nil, path, errors.New("the swap journal " + path + " does not say which device the old root was: name it with --old DEV")
	}
	return state, path, nil
}

// mountsAnywhere returns the mounts of dev in every mount namespace it can
// see (blockdev.Namespaces): after a swap a service started with a private
// namespace (systemd's PrivateTmp=, ProtectSystem=) may still hold the old
// root where the admin's own mount table does not show it.
func mountsAnywhere(procRoot string, dev uint64) (mountinfo.Table, []string, error) {
	nss, err := blockdev.Namespaces(procRoot)
	if err != nil {
		return nil, nil, err
	}
	var found mountinfo.Table
	var where []string
	for _, ns := range nss {
		for _, m := range blockdev.MountedAt(ns.Mounts, dev) {
			found = append(found, m)
			where = append(where, m.Point+ns.Who)
		}
	}
	return found, where, nil
}

// wipeArea is a byte range that holds a filesystem's signature.
type wipeArea struct{ off, len int64 }

// signatureAreas are what wiping a filesystem natively zeroes (nil for
// another type; a switch, not a package map): the superblocks blkid (and the kernel, and GRUB) read to recognise it.
//   - ext2/3/4: the primary superblock, 1024 bytes at 1024 (magic 0xEF53
//     at 1024+56). The backups in later groups are found only by
//     e2fsck -b, never by blkid or mount.
//   - xfs: the primary superblock in the first sector ("XFSB" at 0).
//   - btrfs: the superblock at 64 KiB and its mirrors at 64 MiB and
//     256 GiB, which btrfs rescue and some probes also read.
func signatureAreas(fstype string) []wipeArea {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return []wipeArea{{1024, 1024}}
	case "xfs":
		return []wipeArea{{0, 512}}
	case "btrfs":
		return []wipeArea{{64 << 10, 4096}, {64 << 20, 4096}, {256 << 30, 4096}}
	}
	return nil
}

// wipeNative zeroes the signature areas of a filesystem of type fstype on
// the block device at path, opened exclusively so that nothing mounts it
// meanwhile, and flushes the device's buffer cache so that the next probe
// reads the disk.
func wipeNative(path, fstype string, size int64) error {
	areas := signatureAreas(fstype)
	if areas == nil {
		return errors.New(path + ": erasing a " + fstype + " signature natively is not supported: install wipefs (util-linux)")
	}
	var f *os.File
	var err error
	if isRegular(path) {
		f, err = os.OpenFile(path, os.O_RDWR, 0) // an image file: tests, a copy
	} else {
		f, err = blockdev.OpenExclusive(path, os.O_RDWR)
	}
	if err != nil {
		return err
	}
	defer f.Close() // after a failure; the success path closes and reports
	for _, a := range areas {
		if size > 0 && a.off+a.len > size {
			continue
		}
		if _, err := f.WriteAt(make([]byte, a.len), a.off); err != nil {
			return &os.PathError{Op: "zero " + strconv.FormatInt(a.len, 10) + " bytes at " + strconv.FormatInt(a.off, 10), Path: path, Err: err}
		}
	}
	if err := f.Sync(); err != nil {
		return &os.PathError{Op: "fsync", Path: path, Err: err}
	}
	// Drop cached blocks so blkid and the next mount see the zeros.
	unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
	return f.Close()
}

func isRegular(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
