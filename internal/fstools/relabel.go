package fstools

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
)

// OldRootLabel is the label the old root gets once the swap is done, so
// that LABEL= and UUID= find only the new root.
const OldRootLabel = "oldroot"

// ErrLabel is a label longer than the filesystem stores.
var ErrLabel = errors.New("label too long")

// Relabel gives the filesystem on the block device dev the label label
// and the UUID uuid ("random": a new one; "keep": its own). It is the one
// home of the old root's relabel: the tune2fs-relabel applet, the swap's
// relabel-old step and finish all call it. Everything is checked before
// the first change: a filesystem mounted read-write, one in use beyond its
// mounts here (Busy), xfs or btrfs mounted at all, the UUID of a mounted
// ext4 with metadata_csum and without metadata_csum_seed. Then it tells
// Echo the old and new label and UUID, runs the tools, and returns the
// UUID it gave ("" when refused before any change).
func (r Runner) Relabel(ctx context.Context, sysRoot, procRoot, dev, label, uuid string) (string, error) {
	t, err := Inspect(sysRoot, procRoot, dev)
	if err == nil {
		err = Busy(sysRoot, procRoot, dev)
	}
	if err != nil {
		return "", err
	}
	fs := &t.FS
	// The label size each filesystem stores, in bytes; the tools, from
	// one package each (e2fsck: tune2fs wants a fresh check before it
	// rewrites the checksums).
	var limit int
	var tools []string
	switch {
	case fs.IsExt():
		limit, tools = 16, []string{"tune2fs", "e2fsck"}
	case fs.Type == "xfs":
		limit, tools = 12, []string{"xfs_admin", "xfs_db"}
	case fs.Type == "btrfs":
		limit, tools = 255, []string{"btrfstune", "btrfs"}
	default:
		return "", fmt.Errorf("%s: %s; tune2fs-relabel handles ext2/3/4, xfs and btrfs", dev, fs)
	}
	if len(label) > limit {
		return "", fmt.Errorf("%w: %q is %d bytes; %s labels hold at most %d", ErrLabel, label, len(label), fs.Type, limit)
	}
	if m, ok := t.MountedRW(); ok {
		return "", fmt.Errorf("%s is mounted read-write at %s; relabelling a live filesystem is refused (remount it read-only or unmount it)", dev, m.Point)
	}
	if len(t.Mounts) > 0 && !fs.IsExt() {
		return "", fmt.Errorf("%s is mounted at %s; %s can be relabelled only unmounted", dev, t.Where(), fs.Type)
	}
	switch uuid {
	case "random":
		uuid = RandomUUID()
	case "keep":
		uuid = fs.UUID
	}
	changeUUID := !strings.EqualFold(uuid, fs.UUID)
	rewrite := changeUUID && fs.Ext.UUIDChangeNeedsUnmount()
	if len(t.Mounts) > 0 && rewrite {
		return "", fmt.Errorf("%s is mounted at %s; the UUID of an ext filesystem with metadata_csum and without metadata_csum_seed changes only unmounted (unmount it, or keep the UUID with --uuid keep)", dev, t.Where())
	}
	if err := r.Require(tools...); err != nil {
		return "", err
	}
	if r.Echo != nil {
		fmt.Fprintf(r.Echo, "  old: label %q UUID %s\n  new: label %q UUID %s\n", fs.Label, fs.UUID, label, uuid)
	}
	// Each runs only when all before it succeeded.
	run := func(tool string, args ...string) {
		if err == nil {
			err = r.run(ctx, failed, tool, args...)
		}
	}
	switch {
	case fs.IsExt():
		if rewrite {
			// tune2fs then rewrites every metadata checksum, seeded by
			// the UUID, and refuses a filesystem mounted since its last
			// check ("requires a freshly checked filesystem"): a root
			// always was.
			err = r.run(ctx, E2fsckMeaning, "e2fsck", "-f", "-p", dev)
			if te, ok := err.(*ToolError); ok && te.Fixed {
				err = nil
			}
		}
		// The UUID first, alone: tune2fs writes a label given with a UUID
		// it then refuses to change.
		if changeUUID {
			run("tune2fs", "-U", uuid, dev)
		}
		run("tune2fs", "-L", label, dev)
	case fs.Type == "xfs":
		if changeUUID {
			run("xfs_admin", "-L", label, "-U", uuid, dev)
		} else {
			run("xfs_admin", "-L", label, dev)
		}
	default: // btrfs: btrfstune -f skips its question
		if changeUUID {
			run("btrfstune", "-f", "-U", uuid, dev)
		}
		run("btrfs", "filesystem", "label", dev, label)
	}
	return uuid, err
}

// RelabelFunc is RelabelOldRoot's type, which tests replace.
type RelabelFunc func(ctx context.Context, out io.Writer, getenv func(string) string, sysRoot, procRoot, dev string) (string, error)

// RelabelOldRoot labels the old root dev oldroot with a new random UUID,
// the tools' output to out, and returns the UUID: what finish and the
// swap's relabel-old step do.
func RelabelOldRoot(ctx context.Context, out io.Writer, getenv func(string) string, sysRoot, procRoot, dev string) (string, error) {
	return Runner{Stdout: out, Stderr: out, Echo: out, Getenv: getenv}.Relabel(ctx, sysRoot, procRoot, dev, OldRootLabel, "random")
}

// RandomUUID is a version 4 UUID.
func RandomUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
