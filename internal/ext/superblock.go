// Package ext reads ext2/3/4 metadata natively: the superblock, the group
// descriptors and the block bitmaps, to say which byte ranges of a device a
// copy needs (UsedExtents), so the copier skips free space.
//
// It only reads; it never trusts a number it has not checked against the
// filesystem size, and it never allocates more than the image can justify.
package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// SuperblockOffset is where the primary superblock starts on the device.
const SuperblockOffset = 1024

const (
	superblockSize = 1024
	magic          = 0xEF53
)

// Feature flags this package reads or reports (see the ext4 disk layout).
const (
	CompatHasJournal   = 0x4
	CompatResizeInode  = 0x10
	CompatSparseSuper2 = 0x200

	IncompatFiletype    = 0x2
	IncompatRecover     = 0x4
	IncompatJournalDev  = 0x8
	IncompatMetaBG      = 0x10
	IncompatExtents     = 0x40
	Incompat64Bit       = 0x80
	IncompatMMP         = 0x100
	IncompatFlexBG      = 0x200
	IncompatEAInode     = 0x400
	IncompatDirData     = 0x1000
	IncompatCsumSeed    = 0x2000
	IncompatLargeDir    = 0x4000
	IncompatInlineData  = 0x8000
	IncompatEncrypt     = 0x10000
	IncompatCasefold    = 0x20000
	incompatCompression = 0x1

	RoCompatSparseSuper  = 0x1
	RoCompatLargeFile    = 0x2
	RoCompatBtreeDir     = 0x4
	RoCompatGDTCsum      = 0x10
	RoCompatBigalloc     = 0x200
	RoCompatMetadataCsum = 0x400
)

// incompatKnown is every incompat feature whose effect on the on-disk layout
// this package knows. An unknown one may move metadata, so it is refused, as
// the kernel refuses to mount it.
const incompatKnown = incompatCompression | IncompatFiletype | IncompatRecover |
	IncompatJournalDev | IncompatMetaBG | IncompatExtents | Incompat64Bit |
	IncompatMMP | IncompatFlexBG | IncompatEAInode | IncompatDirData |
	IncompatCsumSeed | IncompatLargeDir | IncompatInlineData | IncompatEncrypt |
	IncompatCasefold

// What ext3 (and so blkid's "ext3") can have; anything more makes it ext4.
const (
	ext3Incompat = IncompatFiletype | IncompatRecover | IncompatMetaBG
	ext3RoCompat = RoCompatSparseSuper | RoCompatLargeFile | RoCompatBtreeDir
)

// Superblock is the part of the ext2/3/4 superblock this package uses.
// Block counts are already combined with their _hi halves when the 64bit
// feature says they are valid.
type Superblock struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	Magic     uint16
	RevLevel  uint32
	State     uint16 // 1 clean, 2 errors found, 4 orphans being recovered
	BlockSize int64

	BlocksCount    uint64
	ReservedBlocks uint64
	FreeBlocks     uint64
	InodesCount    uint32
	FreeInodes     uint32
	FirstDataBlock uint32
	BlocksPerGroup uint32
	InodesPerGroup uint32
	InodeSize      uint16
	DescSize       uint16 // effective: 32 without the 64bit feature

	FeatureCompat   uint32
	FeatureIncompat uint32
	FeatureRoCompat uint32

	ReservedGDTBlocks uint16
	FirstMetaBG       uint32
	BackupBGs         [2]uint32 // sparse_super2: the only groups with backups
	LogGroupsPerFlex  uint8
	JournalInode      uint32

	UUID        [16]byte
	Label       string
	LastMounted string
}

// ReadSuperblock reads and checks the primary superblock at byte 1024. It
// fails, saying what it found instead, when r holds no ext2/3/4 filesystem
// or one whose geometry is impossible.
func ReadSuperblock(r io.ReaderAt) (*Superblock, error) {
	buf := make([]byte, superblockSize)
	if n, err := r.ReadAt(buf, SuperblockOffset); n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("ext: no superblock: device ends at byte %d, before byte %d", SuperblockOffset+int64(n), SuperblockOffset+superblockSize)
		}
		return nil, fmt.Errorf("ext: reading superblock at byte %d: %w", SuperblockOffset, err)
	}
	le := binary.LittleEndian
	sb := &Superblock{
		InodesCount:     le.Uint32(buf[0x0:]),
		BlocksCount:     uint64(le.Uint32(buf[0x4:])),
		ReservedBlocks:  uint64(le.Uint32(buf[0x8:])),
		FreeBlocks:      uint64(le.Uint32(buf[0xC:])),
		FreeInodes:      le.Uint32(buf[0x10:]),
		FirstDataBlock:  le.Uint32(buf[0x14:]),
		BlocksPerGroup:  le.Uint32(buf[0x20:]),
		InodesPerGroup:  le.Uint32(buf[0x28:]),
		Magic:           le.Uint16(buf[0x38:]),
		State:           le.Uint16(buf[0x3A:]),
		RevLevel:        le.Uint32(buf[0x4C:]),
		InodeSize:       128,
		DescSize:        32,
		JournalInode:    le.Uint32(buf[0xE0:]),
		FirstMetaBG:     le.Uint32(buf[0x104:]),
		BackupBGs:       [2]uint32{le.Uint32(buf[0x24C:]), le.Uint32(buf[0x250:])},
		Label:           cString(buf[0x78:0x88]),
		LastMounted:     cString(buf[0x88:0xC8]),
		FeatureCompat:   le.Uint32(buf[0x5C:]),
		FeatureIncompat: le.Uint32(buf[0x60:]),
		FeatureRoCompat: le.Uint32(buf[0x64:]),

		ReservedGDTBlocks: le.Uint16(buf[0xCE:]),
		LogGroupsPerFlex:  buf[0x174],
	}
	copy(sb.UUID[:], buf[0x68:0x78])
	if sb.Magic != magic {
		return nil, fmt.Errorf("ext: no ext2/3/4 filesystem: magic at byte %d is %#04x, want %#04x%s",
			SuperblockOffset+0x38, sb.Magic, magic, sniff(r))
	}
	logBlockSize := le.Uint32(buf[0x18:])
	if logBlockSize > 6 { // 1024<<6 = 64 KiB, the largest the kernel mounts
		return nil, fmt.Errorf("ext: impossible block size 1024<<%d in superblock", logBlockSize)
	}
	sb.BlockSize = 1024 << logBlockSize
	if sb.RevLevel == 0 {
		// Revision 0 has none of the dynamic fields; they may hold anything.
		sb.FeatureCompat, sb.FeatureIncompat, sb.FeatureRoCompat = 0, 0, 0
		sb.ReservedGDTBlocks, sb.FirstMetaBG, sb.BackupBGs = 0, 0, [2]uint32{}
		sb.LogGroupsPerFlex, sb.Label, sb.LastMounted, sb.UUID = 0, "", "", [16]byte{}
	} else {
		sb.InodeSize = le.Uint16(buf[0x58:])
	}
	if sb.FeatureIncompat&Incompat64Bit != 0 {
		sb.DescSize = le.Uint16(buf[0xFE:])
		sb.BlocksCount |= uint64(le.Uint32(buf[0x150:])) << 32
		sb.ReservedBlocks |= uint64(le.Uint32(buf[0x154:])) << 32
		sb.FreeBlocks |= uint64(le.Uint32(buf[0x158:])) << 32
	}
	if err := sb.check(); err != nil {
		return nil, err
	}
	return sb, nil
}

// check refuses what no kernel would mount, so the rest of the package can
// do arithmetic on the geometry without overflowing.
func (sb *Superblock) check() error {
	bs := uint64(sb.BlockSize)
	switch {
	case sb.FeatureIncompat&IncompatJournalDev != 0:
		return errors.New("ext: external journal device (jbd), not a filesystem")
	case sb.FeatureIncompat&^incompatKnown != 0:
		return fmt.Errorf("ext: unsupported incompatible features %#x", sb.FeatureIncompat&^incompatKnown)
	case sb.FeatureRoCompat&RoCompatBigalloc != 0:
		// Bitmaps count clusters, and 1 KiB bigalloc moves group 0's
		// metadata; rare on a root filesystem, so not read natively.
		return errors.New("ext: bigalloc filesystems are not supported")
	case sb.InodeSize < 128 || sb.InodeSize&(sb.InodeSize-1) != 0 || uint64(sb.InodeSize) > bs:
		return fmt.Errorf("ext: impossible inode size %d (block size %d)", sb.InodeSize, bs)
	case sb.FeatureIncompat&Incompat64Bit != 0 &&
		(sb.DescSize < 64 || sb.DescSize > 1024 || sb.DescSize&(sb.DescSize-1) != 0):
		return fmt.Errorf("ext: impossible group descriptor size %d with the 64bit feature", sb.DescSize)
	case sb.BlocksPerGroup == 0 || sb.BlocksPerGroup%8 != 0 || uint64(sb.BlocksPerGroup) > 8*bs:
		return fmt.Errorf("ext: impossible %d blocks per group (block size %d)", sb.BlocksPerGroup, bs)
	case sb.InodesPerGroup == 0 || uint64(sb.InodesPerGroup) > 8*bs:
		return fmt.Errorf("ext: impossible %d inodes per group (block size %d)", sb.InodesPerGroup, bs)
	case sb.BlockSize == 1024 && sb.FirstDataBlock != 1, sb.BlockSize > 1024 && sb.FirstDataBlock != 0:
		return fmt.Errorf("ext: first data block %d impossible with block size %d", sb.FirstDataBlock, bs)
	case sb.BlocksCount <= uint64(sb.FirstDataBlock):
		return fmt.Errorf("ext: %d blocks: not even the first data block %d", sb.BlocksCount, sb.FirstDataBlock)
	case sb.BlocksCount > math.MaxInt64/bs:
		return fmt.Errorf("ext: %d blocks of %d bytes overflow a 64-bit size", sb.BlocksCount, bs)
	case sb.FreeBlocks > sb.BlocksCount:
		return fmt.Errorf("ext: %d free blocks but only %d blocks", sb.FreeBlocks, sb.BlocksCount)
	}
	groups := sb.groups()
	if groups > math.MaxUint32-uint64(sb.BlockSize)/uint64(sb.DescSize) {
		return fmt.Errorf("ext: %d block groups overflow the group number", groups)
	}
	if uint64(sb.InodesCount) != groups*uint64(sb.InodesPerGroup) {
		return fmt.Errorf("ext: %d inodes, but %d groups of %d inodes", sb.InodesCount, groups, sb.InodesPerGroup)
	}
	return nil
}

// groups is the number of block groups; the last may be shorter.
func (sb *Superblock) groups() uint64 {
	return (sb.BlocksCount - uint64(sb.FirstDataBlock) + uint64(sb.BlocksPerGroup) - 1) / uint64(sb.BlocksPerGroup)
}

// Kind names the filesystem as blkid and mount do: ext4 when it has any
// feature ext3 lacks (extents, 64bit, flex_bg, huge_file, uninit_bg, ...),
// else ext3 when it has a journal, else ext2.
func (sb *Superblock) Kind() string {
	switch {
	case sb.FeatureIncompat&^ext3Incompat != 0, sb.FeatureRoCompat&^ext3RoCompat != 0:
		return "ext4"
	case sb.FeatureCompat&CompatHasJournal != 0:
		return "ext3"
	}
	return "ext2"
}

// Size is the filesystem size in bytes (it may be smaller than its device).
func (sb *Superblock) Size() int64 { return int64(sb.BlocksCount) * sb.BlockSize }

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// sniff names a few other things often found where an ext filesystem was
// expected, for the error message.
func sniff(r io.ReaderAt) string {
	probes := []struct {
		off  int64
		sig  string
		name string
	}{
		{0, "XFSB", "xfs"},
		{0x10040, "_BHRfS_M", "btrfs"},
		{0, "LUKS\xba\xbe", "LUKS"},
		{4096 - 10, "SWAPSPACE2", "swap"},
	}
	for _, p := range probes {
		b := make([]byte, len(p.sig))
		if n, _ := r.ReadAt(b, p.off); n == len(b) && string(b) == p.sig {
			return " (looks like " + p.name + ")"
		}
	}
	return ""
}
