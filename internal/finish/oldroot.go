package finish

import (
	"fmt"
	"os"
	"path/filepath"
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
		return nil, "", fmt.Errorf("no swap journal found (looked for %s): name the old root with --old DEV",
			strings.Join(journalPaths(root), " and "))
	}
	recs, err := journal.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("reading the swap journal %s: %w", path, err)
	}
	sum := journal.Summarize(recs)
	switch sum.Phase {
	case journal.Succeeded:
	case journal.WaitingConfirm:
		return nil, path, fmt.Errorf("the swap in %s waits for confirmation: run `rootswap confirm` first", path)
	case journal.Running, journal.RollingBack:
		return nil, path, fmt.Errorf("the swap in %s is still %s: wait for it to end (rootswap status)", path, sum.Phase)
	default:
		return nil, path, fmt.Errorf("the last swap (%s) ended %s: there is nothing to finish", path, sum.Phase)
	}
	for _, r := range recs {
		if d := r.Data["state"]; d != "" {
			if s, err := swap.Unmarshal(d); err == nil {
				state = s
			}
		}
	}
	if state == nil || state.OldRoot.Major == 0 && state.OldRoot.Minor == 0 {
		return nil, path, fmt.Errorf("the swap journal %s does not say which device the old root was: name it with --old DEV", path)
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

// signatureAreas are what wiping a filesystem natively zeroes: the
// superblocks blkid (and the kernel, and GRUB) read to recognise it.
//   - ext2/3/4: the primary superblock, 1024 bytes at 1024 (magic 0xEF53
//     at 1024+56). The backups in later groups are found only by
//     e2fsck -b, never by blkid or mount.
//   - xfs: the primary superblock in the first sector ("XFSB" at 0).
//   - btrfs: the superblock at 64 KiB and its mirrors at 64 MiB and
//     256 GiB, which btrfs rescue and some probes also read.
var signatureAreas = map[string][]wipeArea{
	"ext2":  {{1024, 1024}},
	"ext3":  {{1024, 1024}},
	"ext4":  {{1024, 1024}},
	"xfs":   {{0, 512}},
	"btrfs": {{64 << 10, 4096}, {64 << 20, 4096}, {256 << 30, 4096}},
}

// wipeNative zeroes the signature areas of a filesystem of type fstype on
// the block device at path, opened exclusively so that nothing mounts it
// meanwhile, and flushes the device's buffer cache so that the next probe
// reads the disk.
func wipeNative(path, fstype string, size int64) error {
	areas, ok := signatureAreas[fstype]
	if !ok {
		return fmt.Errorf("%s: erasing a %s signature natively is not supported: install wipefs (util-linux)", path, fstype)
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
			return &os.PathError{Op: fmt.Sprintf("zero %d bytes at %d", a.len, a.off), Path: path, Err: err}
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
