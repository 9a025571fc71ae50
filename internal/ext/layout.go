package ext

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// Group descriptor flags, honoured only with uninit_bg or metadata_csum.
const (
	bgInodeUninit = 0x1
	bgBlockUninit = 0x2
)

type groupDesc struct {
	blockBitmap, inodeBitmap, inodeTable uint64
	flags                                uint16
}

// layout is a checked superblock plus its group descriptors: everything
// needed to say where each group's metadata lives.
type layout struct {
	sb           *Superblock
	r            io.ReaderAt
	bs           uint64
	groups       uint64
	descPerBlock uint64
	descBlocks   uint64
	itableBlocks uint64
	uninitFlags  bool // bg_flags mean something (uninit_bg or metadata_csum)
	descs        []groupDesc
}

func readLayout(r io.ReaderAt, sb *Superblock) (*layout, error) {
	bs := uint64(sb.BlockSize)
	l := &layout{
		sb:           sb,
		r:            r,
		bs:           bs,
		groups:       sb.groups(),
		descPerBlock: bs / uint64(sb.DescSize),
		itableBlocks: (uint64(sb.InodesPerGroup)*uint64(sb.InodeSize) + bs - 1) / bs,
		uninitFlags:  sb.FeatureRoCompat&(RoCompatGDTCsum|RoCompatMetadataCsum) != 0,
	}
	l.descBlocks = (l.groups + l.descPerBlock - 1) / l.descPerBlock

	// Everything below reads inside the filesystem, and every allocation
	// is bounded by its size: so first make sure the device really is
	// that big, or a forged block count could make us allocate for it.
	var last [1]byte
	if _, err := r.ReadAt(last[:], sb.Size()-1); err != nil {
		return nil, fmt.Errorf("ext: filesystem of %d bytes (%d blocks of %d) is larger than its device: reading its last byte: %w",
			sb.Size(), sb.BlocksCount, bs, err)
	}
	if l.metaBG() && uint64(sb.FirstMetaBG) > l.descBlocks {
		return nil, fmt.Errorf("ext: first meta_bg %d beyond the %d group descriptor blocks", sb.FirstMetaBG, l.descBlocks)
	}
	if l.itableBlocks >= uint64(sb.BlocksCount) {
		return nil, fmt.Errorf("ext: inode table of %d blocks does not fit %d blocks", l.itableBlocks, sb.BlocksCount)
	}
	if err := l.readDescriptors(); err != nil {
		return nil, err
	}
	if err := l.checkOverlaps(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *layout) metaBG() bool { return l.sb.FeatureIncompat&IncompatMetaBG != 0 }

// groupFirst is the first block of group g.
func (l *layout) groupFirst(g uint64) uint64 {
	return uint64(l.sb.FirstDataBlock) + g*uint64(l.sb.BlocksPerGroup)
}

// groupBlocks is how many blocks group g has: the last one may be short.
func (l *layout) groupBlocks(g uint64) uint64 {
	return min(uint64(l.sb.BlocksPerGroup), l.sb.BlocksCount-l.groupFirst(g))
}

// hasSuper says whether group g holds a superblock copy (and, outside
// meta_bg, a copy of the group descriptor table), as libext2fs decides.
func (l *layout) hasSuper(g uint64) bool {
	sb := l.sb
	switch {
	case g == 0:
		return true
	case sb.FeatureCompat&CompatSparseSuper2 != 0:
		return g == uint64(sb.BackupBGs[0]) || g == uint64(sb.BackupBGs[1])
	case g == 1 || sb.FeatureRoCompat&RoCompatSparseSuper == 0:
		return true
	case g%2 == 0:
		return false
	}
	return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7)
}

func isPowerOf(n, base uint64) bool {
	p := base
	for p < n {
		p *= base
	}
	return p == n
}

// descBlock is where the primary copy of group descriptor block i lives.
func (l *layout) descBlock(i uint64) uint64 {
	if !l.metaBG() || i < uint64(l.sb.FirstMetaBG) {
		return uint64(l.sb.FirstDataBlock) + 1 + i
	}
	g := i * l.descPerBlock
	b := l.groupFirst(g)
	if l.hasSuper(g) {
		b++
	}
	return b
}

// readDescriptors reads the group descriptor table and checks that every
// bitmap and inode table it names lies inside the filesystem.
// Descriptor checksums are not verified: a mismatch is for fsck to judge,
// and the locations are checked here anyway.
func (l *layout) readDescriptors() error {
	ds := uint64(l.sb.DescSize)
	// Descriptor blocks that are contiguous (all of them without meta_bg)
	// are read with one ReadAt; the table is at most 1/32 of the
	// filesystem, which the device was checked to hold.
	buf := make([]byte, l.descBlocks*l.bs)
	for i := uint64(0); i < l.descBlocks; {
		start := l.descBlock(i)
		n := uint64(1)
		for i+n < l.descBlocks && l.descBlock(i+n) == start+n {
			n++
		}
		if start+n > l.sb.BlocksCount {
			return fmt.Errorf("ext: group descriptor block %d at block %d is outside the filesystem of %d blocks", i+n-1, start+n-1, l.sb.BlocksCount)
		}
		if _, err := l.r.ReadAt(buf[i*l.bs:(i+n)*l.bs], int64(start*l.bs)); err != nil {
			return fmt.Errorf("ext: reading group descriptor blocks %d-%d at block %d: %w", i, i+n-1, start, err)
		}
		i += n
	}
	le := binary.LittleEndian
	l.descs = make([]groupDesc, l.groups)
	for g := range l.descs {
		b := buf[uint64(g)*ds:]
		d := groupDesc{
			blockBitmap: uint64(le.Uint32(b[0x0:])),
			inodeBitmap: uint64(le.Uint32(b[0x4:])),
			inodeTable:  uint64(le.Uint32(b[0x8:])),
			flags:       le.Uint16(b[0x12:]),
		}
		if ds >= 64 {
			d.blockBitmap |= uint64(le.Uint32(b[0x20:])) << 32
			d.inodeBitmap |= uint64(le.Uint32(b[0x24:])) << 32
			d.inodeTable |= uint64(le.Uint32(b[0x28:])) << 32
		}
		if !l.uninitFlags {
			d.flags = 0
		}
		if err := l.checkRange(uint64(g), "block bitmap", d.blockBitmap, 1); err != nil {
			return err
		}
		if err := l.checkRange(uint64(g), "inode bitmap", d.inodeBitmap, 1); err != nil {
			return err
		}
		if err := l.checkRange(uint64(g), "inode table", d.inodeTable, l.itableBlocks); err != nil {
			return err
		}
		l.descs[g] = d
	}
	return nil
}

func (l *layout) checkRange(g uint64, what string, start, n uint64) error {
	first := uint64(l.sb.FirstDataBlock)
	if start < first || start >= l.sb.BlocksCount || n > l.sb.BlocksCount-start {
		return fmt.Errorf("ext: group %d: %s at blocks %d-%d is outside the filesystem (blocks %d-%d)",
			g, what, start, start+n-1, first, l.sb.BlocksCount-1)
	}
	return nil
}

// Kinds of metadata, for checkOverlaps' messages.
var metaKinds = [...]string{"superblock or group descriptors", "block bitmap", "inode bitmap", "inode table"}

// checkOverlaps refuses a layout where two pieces of metadata share a
// block: a bitmap pointer of 0 on a 4 KiB filesystem names the superblock's
// own block, and reading that as the bitmap would silently drop every
// block it does not mark (the root directory among them). Metadata never
// shares a block on a filesystem mke2fs or resize2fs made.
func (l *layout) checkOverlaps() error {
	// groupRange reused (its sort is already in the binary): g holds the
	// group times 4 plus the kind, start and end are absolute blocks.
	rs := make([]groupRange, 0, 4*l.groups)
	for g := uint64(0); g < l.groups; g++ {
		l.baseMetadata(g, func(start, n uint64) {
			if n > 0 {
				rs = append(rs, groupRange{g * 4, start, start + n})
			}
		})
		d := l.descs[g]
		rs = append(rs, groupRange{g*4 + 1, d.blockBitmap, d.blockBitmap + 1},
			groupRange{g*4 + 2, d.inodeBitmap, d.inodeBitmap + 1},
			groupRange{g*4 + 3, d.inodeTable, d.inodeTable + l.itableBlocks})
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	last := 0
	for i := 1; i < len(rs); i++ {
		if rs[i].start < rs[last].end {
			a, b := rs[last], rs[i]
			return fmt.Errorf("ext: group %d: %s at blocks %d-%d overlaps group %d's %s at blocks %d-%d: impossible layout, refused",
				b.g/4, metaKinds[b.g%4], b.start, b.end-1, a.g/4, metaKinds[a.g%4], a.start, a.end-1)
		}
		if rs[i].end > rs[last].end {
			last = i
		}
	}
	return nil
}

// baseMetadata calls add for the superblock copy, group descriptor blocks
// and reserved GDT blocks stored in group g: what a BLOCK_UNINIT group has
// in use besides bitmaps and inode tables (libext2fs's
// ext2fs_super_and_bgd_loc2, the kernel's ext4_num_base_meta_blocks).
func (l *layout) baseMetadata(g uint64, add func(start, n uint64)) {
	first := l.groupFirst(g)
	super := l.hasSuper(g)
	if super {
		add(first, 1)
	}
	if !l.metaBG() || g/l.descPerBlock < uint64(l.sb.FirstMetaBG) {
		if !super {
			return
		}
		old := l.descBlocks + uint64(l.sb.ReservedGDTBlocks)
		if l.metaBG() {
			old = uint64(l.sb.FirstMetaBG)
		}
		add(first+1, old)
		return
	}
	// meta_bg: a group's descriptor block is in the first, second and
	// last group of its meta group, after the superblock copy if any.
	if r := g % l.descPerBlock; r == 0 || r == 1 || r == l.descPerBlock-1 {
		if super {
			first++
		}
		add(first, 1)
	}
}

// Filesystem states (s_state).
const (
	stateValid  = 0x1 // cleanly unmounted, or checked
	stateErrors = 0x2 // the kernel found errors
)

// ErrNeedsRecovery and ErrNotClean say the bitmaps may not show every block
// in use, so only a copy of the whole device is safe.
var (
	ErrNeedsRecovery = errors.New("ext: journal needs recovery (mounted read-write, or not replayed since a crash): the bitmaps may be stale")
	ErrNotClean      = errors.New("ext: filesystem not clean: the bitmaps may be wrong until e2fsck fixes them")
)

// bitmapsTrusted says whether the on-disk bitmaps can be believed. A
// journal makes the metadata consistent once replayed, so the valid bit
// only matters without one (after a crash it is still clear on a journaled
// filesystem that the kernel recovered).
// A live journal (the filesystem mounted read-write) is taken as it is
// when the caller reads the bitmaps again once it is read-only.
func (sb *Superblock) bitmapsTrusted(liveJournal bool) error {
	switch {
	case sb.FeatureIncompat&IncompatRecover != 0 && !liveJournal:
		return ErrNeedsRecovery
	case sb.State&stateErrors != 0:
		return fmt.Errorf("%w (errors recorded, state %#x)", ErrNotClean, sb.State)
	case sb.State&stateValid == 0 && sb.FeatureCompat&CompatHasJournal == 0:
		return fmt.Errorf("%w (not cleanly unmounted and no journal, state %#x)", ErrNotClean, sb.State)
	}
	return nil
}
