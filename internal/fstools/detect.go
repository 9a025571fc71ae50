// Package fstools knows filesystems from the outside: it recognises what
// a device holds by reading its superblocks natively, and it runs the
// distribution's tools (e2fsck, resize2fs, tune2fs, xfs_repair,
// xfs_growfs, xfs_admin, btrfs, btrfstune) with their exit codes
// explained in words.
package fstools

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/dustin/go-humanize"
	"github.com/rootswap/rootswap/internal/blockdev"
)

// FS is what Detect found on a device or image.
type FS struct {
	// Type is blkid's name for it: ext2, ext3, ext4, jbd, xfs, btrfs,
	// swap, vfat, ntfs, iso9660, LVM2_member, linux_raid_member,
	// crypto_LUKS, or for a partition table dos or gpt. Empty when
	// nothing was recognised.
	Type string
	// Label and UUID as blkid would print them (empty when the format has
	// none).
	Label, UUID string
	// Size is the number of bytes the filesystem spans, 0 when unknown.
	// For btrfs it is this device's share.
	Size int64
	// BlockSize is the filesystem block size in bytes, 0 when unknown.
	BlockSize int
	// Ext holds the feature words of an ext2/3/4 superblock (zero for
	// other types).
	Ext ExtFeatures
}

// ExtFeatures are the three feature words of an ext superblock.
type ExtFeatures struct {
	Compat, Incompat, ROCompat uint32
}

// UUIDChangeNeedsUnmount reports whether tune2fs can change the UUID of
// this ext filesystem only while it is unmounted: with metadata_csum every
// checksum is seeded from the UUID unless metadata_csum_seed keeps the
// seed apart (e2fsprogs 1.47.0 then refuses a mounted filesystem).
func (f ExtFeatures) UUIDChangeNeedsUnmount() bool {
	return f.ROCompat&extROCompatMetadataCsum != 0 && f.Incompat&extIncompatCsumSeed == 0
}

// IsFilesystem reports whether f is a filesystem the fsck, resize and
// relabel applets handle: ext2/3/4, xfs, btrfs.
func (f FS) IsFilesystem() bool {
	switch f.Type {
	case "ext2", "ext3", "ext4", "xfs", "btrfs":
		return true
	}
	return false
}

// IsExt reports whether f is ext2, ext3 or ext4.
func (f FS) IsExt() bool { return IsExt(f.Type) }

// IsExt reports whether the filesystem type fstype is ext2, ext3 or ext4:
// the one place that decides it (the swap asks it of mountinfo's type).
func IsExt(fstype string) bool { return fstype == "ext2" || fstype == "ext3" || fstype == "ext4" }

// ToolsFor are the programs the swap needs for a root of type fstype:
// check, grow and relabel (none for other types). Package names the
// Debian package of each.
func ToolsFor(fstype string) []string {
	switch fstype {
	case "ext2", "ext3", "ext4":
		return []string{"e2fsck", "resize2fs", "tune2fs"}
	case "xfs":
		return []string{"xfs_repair", "xfs_growfs", "xfs_admin"}
	case "btrfs":
		return []string{"btrfs", "btrfstune"}
	}
	return nil
}

// kind says in words what a filesystem type is ("" for one it does not
// know): a switch, not a map built at init.
func kind(s string) string {
	switch s {
	case "ext2":
		return "ext2 filesystem"
	case "ext3":
		return "ext3 filesystem"
	case "ext4":
		return "ext4 filesystem"
	case "jbd":
		return "ext3/ext4 external journal"
	case "xfs":
		return "XFS filesystem"
	case "btrfs":
		return "btrfs filesystem"
	case "swap":
		return "Linux swap area"
	case "vfat":
		return "FAT filesystem"
	case "ntfs":
		return "NTFS filesystem"
	case "iso9660":
		return "ISO 9660 (CD/DVD image) filesystem"
	case "LVM2_member":
		return "LVM2 physical volume"
	case "linux_raid_member":
		return "Linux md RAID member"
	case "crypto_LUKS":
		return "LUKS encrypted volume"
	case "dos":
		return "DOS (MBR) partition table"
	case "gpt":
		return "GPT partition table"
	}
	return ""
}

// String says in words what f is: `ext4 filesystem, label "root", UUID
// 5b1f…, 20 GiB`, or "no known signature".
func (f FS) String() string {
	if f.Type == "" {
		return "no known signature"
	}
	s := kind(f.Type)
	if s == "" {
		s = f.Type
	}
	if f.Label != "" {
		s += fmt.Sprintf(", label %q", f.Label)
	}
	if f.UUID != "" {
		s += ", UUID " + f.UUID
	}
	if f.Size > 0 {
		s += ", " + humanize.IBytes(uint64(f.Size))
	}
	return s
}

// Detect recognises what r holds by its signatures, filesystems first.
// Nothing recognised is FS{} with a nil error; an error is an I/O error.
// The signatures at the end of a device (md RAID 0.90/1.0) are looked for
// only when r has a Size() int64 method (io.SectionReader, bytes.Reader;
// DetectPath provides one).
func Detect(r io.ReaderAt) (FS, error) {
	all, err := detect(r, false)
	if len(all) == 0 {
		return FS{}, err
	}
	return all[0], err
}

// detect runs the probes in order, all of them or up to the first match.
func detect(r io.ReaderAt, all bool) ([]FS, error) {
	d := &reader{r: r, size: -1}
	if s, ok := r.(interface{ Size() int64 }); ok {
		d.size = s.Size()
	}
	var found []FS
	for _, probe := range probes {
		fs, ok := probe(d)
		if d.err != nil {
			return nil, d.err
		}
		if ok {
			found = append(found, fs)
			if !all {
				break
			}
		}
	}
	return found, nil
}

// DetectPath is Detect on a device or image file.
func DetectPath(path string) (FS, error) {
	all, err := detectPath(path, false)
	if len(all) == 0 {
		return FS{}, err
	}
	return all[0], err
}

// Signatures lists every signature on a device or image file, in probe
// order: a filesystem may sit beside an md superblock at the end of the
// device (metadata 1.0, 0.90) or an LVM label, which its own probe would
// hide.
func Signatures(path string) ([]FS, error) { return detectPath(path, true) }

func detectPath(path string, all bool) ([]FS, error) {
	size, err := blockdev.FileSize(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fs, err := detect(io.NewSectionReader(f, 0, size), all)
	if err != nil {
		return nil, fmt.Errorf("reading signatures of %s: %w", path, err)
	}
	return fs, nil
}

// probes run in order; the first match wins. Filesystems come before the
// partition-table and container signatures a filesystem may sit beside
// (a FAT boot sector ends in 0x55AA like an MBR; a hybrid ISO has one).
var probes = []func(*reader) (FS, bool){
	probeLUKS,
	probeXFS,
	probeExt,
	probeBtrfs,
	probeLVM,
	probeMD,
	probeSwap,
	probeISO9660,
	probeFAT,
	probeNTFS,
	probeGPT,
	probeDOS,
}

// reader reads fixed-size blocks; a block past the end of the device is
// nil (not an error), any other error is kept in err and ends detection.
type reader struct {
	r    io.ReaderAt
	size int64 // -1 when unknown
	err  error
}

func (d *reader) at(off int64, n int) []byte {
	if d.err != nil || off < 0 || (d.size >= 0 && off+int64(n) > d.size) {
		return nil
	}
	b := make([]byte, n)
	got, err := d.r.ReadAt(b, off)
	if got == n {
		return b
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		d.err = err
	}
	return nil
}
