package ext

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"sort"

	"github.com/rootswap/rootswap/internal/extent"
)

const (
	// chunkBytes bounds the bitmap bytes held at once (one block per
	// group), and so the memory used for any filesystem size.
	chunkBytes = 1 << 20
	// maxReadBytes bounds one ReadAt of adjacent bitmap blocks; with
	// flex_bg a whole chunk's bitmaps are usually one read.
	maxReadBytes = 1 << 20
)

// UsedExtents returns the normalized byte ranges of r that a copy needs to
// be the same filesystem: the boot sector and primary superblock, every
// superblock and descriptor copy, reserved GDT blocks, bitmaps and inode
// tables of every group (inode tables whole, even when unused, so a copy
// onto garbage still passes e2fsck), and every block the bitmaps mark in use
// (journal, resize inode, files). For BLOCK_UNINIT groups, whose bitmap is
// not on disk, the metadata blocks are computed and the rest is free.
//
// On a consistent filesystem the total is exactly
// (BlocksCount - FreeBlocks) * BlockSize: every used block, and on 1 KiB
// filesystems also block 0, which BlocksCount counts but no group holds.
//
// It fails with ErrNeedsRecovery or ErrNotClean when the bitmaps cannot be
// believed (mounted read-write, journal not replayed, errors recorded): the
// caller should then copy the whole device.
func UsedExtents(r io.ReaderAt) ([]extent.Extent, error) {
	sb, err := ReadSuperblock(r)
	if err != nil {
		return nil, err
	}
	if err := sb.bitmapsTrusted(false); err != nil {
		return nil, err
	}
	l, err := readLayout(r, sb)
	if err != nil {
		return nil, err
	}
	return l.usedExtents()
}

// UsedExtentsLive is UsedExtents of a filesystem mounted read-write, whose
// journal is live: the bitmaps on disk lag the journal, so a block taken
// since the last checkpoint may read as free. Only for a copy that reads
// the bitmaps again, with UsedExtents, once the filesystem is read-only,
// and then copies every block that came into use meanwhile (the live
// pre-copy). A filesystem with errors recorded is refused as UsedExtents
// refuses it.
func UsedExtentsLive(r io.ReaderAt) ([]extent.Extent, error) {
	sb, err := ReadSuperblock(r)
	if err != nil {
		return nil, err
	}
	if err := sb.bitmapsTrusted(true); err != nil {
		return nil, err
	}
	l, err := readLayout(r, sb)
	if err != nil {
		return nil, err
	}
	return l.usedExtents()
}

// groupRange is the blocks [start, end) of group g, relative to its first.
type groupRange struct {
	g          uint64
	start, end uint64
}

func (l *layout) usedExtents() ([]extent.Extent, error) {
	meta := l.metadataByGroup()

	slot := l.bs // one bitmap block per group
	chunkGroups := max(1, chunkBytes/slot)
	chunk := make([]byte, min(chunkGroups, l.groups)*slot)
	readBuf := make([]byte, max(slot, min(maxReadBytes, uint64(len(chunk)))))

	// The boot sector and primary superblock are not in any group on
	// 1 KiB filesystems (block 0 precedes the first data block).
	out := []extent.Extent{{Off: 0, Len: SuperblockOffset + superblockSize}}
	for g0 := uint64(0); g0 < l.groups; g0 += chunkGroups {
		g1 := min(g0+chunkGroups, l.groups)
		if err := l.readBitmaps(g0, g1, chunk, readBuf); err != nil {
			return nil, err
		}
		for ; len(meta) > 0 && meta[0].g < g1; meta = meta[1:] {
			m := meta[0]
			setBits(chunk[(m.g-g0)*slot:], m.start, m.end)
		}
		for g := g0; g < g1; g++ {
			first := l.groupFirst(g)
			runs(chunk[(g-g0)*slot:(g-g0+1)*slot], l.groupBlocks(g), func(s, e uint64) {
				out = appendMerged(out, int64((first+s)*l.bs), int64((e-s)*l.bs))
			})
		}
	}
	return out, nil
}

// metadataByGroup lists, sorted by group, the blocks every group's
// descriptor or the geometry says are metadata. Inode tables and the GDT
// may cross groups (flex_bg, large tables), so ranges are split per group.
func (l *layout) metadataByGroup() []groupRange {
	out := make([]groupRange, 0, 5*l.groups)
	add := func(start, n uint64) {
		end := min(start+n, l.sb.BlocksCount)
		for start < end {
			g := (start - uint64(l.sb.FirstDataBlock)) / uint64(l.sb.BlocksPerGroup)
			first := l.groupFirst(g)
			e := min(end, first+uint64(l.sb.BlocksPerGroup))
			out = append(out, groupRange{g: g, start: start - first, end: e - first})
			start = e
		}
	}
	for g := uint64(0); g < l.groups; g++ {
		l.baseMetadata(g, add)
		d := l.descs[g]
		add(d.blockBitmap, 1)
		add(d.inodeBitmap, 1)
		add(d.inodeTable, l.itableBlocks)
	}
	// sort, not slices: a generic sort per element type costs the binary
	// ~12 KB each (issue 10's budget); these lists are a few per group.
	sort.SliceStable(out, func(i, j int) bool { return out[i].g < out[j].g })
	return out
}

// readBitmaps fills chunk with the block bitmaps of groups [g0, g1), one
// block per group; BLOCK_UNINIT groups get zeros. Adjacent bitmap blocks
// (flex_bg packs them) are read together.
func (l *layout) readBitmaps(g0, g1 uint64, chunk, readBuf []byte) error {
	type want struct{ blk, g uint64 }
	var wants []want
	for g := g0; g < g1; g++ {
		s := chunk[(g-g0)*l.bs : (g-g0+1)*l.bs]
		if l.descs[g].flags&bgBlockUninit != 0 {
			clear(s)
			continue
		}
		wants = append(wants, want{l.descs[g].blockBitmap, g})
	}
	sort.Slice(wants, func(i, j int) bool { return wants[i].blk < wants[j].blk })
	maxRun := uint64(len(readBuf)) / l.bs
	for i := 0; i < len(wants); {
		start := wants[i].blk
		j := i + 1
		end := start + 1
		for j < len(wants) && wants[j].blk <= end && wants[j].blk+1-start <= maxRun {
			end = max(end, wants[j].blk+1)
			j++
		}
		buf := readBuf[:(end-start)*l.bs]
		if _, err := l.r.ReadAt(buf, int64(start*l.bs)); err != nil {
			return fmt.Errorf("ext: reading block bitmaps at blocks %d-%d (group %d): %w", start, end-1, wants[i].g, err)
		}
		for _, w := range wants[i:j] {
			copy(chunk[(w.g-g0)*l.bs:], buf[(w.blk-start)*l.bs:(w.blk-start+1)*l.bs])
		}
		i = j
	}
	return nil
}

// appendMerged appends [off, off+n) to sorted, merged extents, merging it
// into the last one when they touch or overlap.
func appendMerged(out []extent.Extent, off, n int64) []extent.Extent {
	if k := len(out); k > 0 && off <= out[k-1].End() {
		if end := off + n; end > out[k-1].End() {
			out[k-1].Len = end - out[k-1].Off
		}
		return out
	}
	return append(out, extent.Extent{Off: off, Len: n})
}

// setBits sets bits [from, to) of an ext bitmap (bit i is bit i%8 of byte i/8).
func setBits(bm []byte, from, to uint64) {
	for ; from < to && from%8 != 0; from++ {
		bm[from/8] |= 1 << (from % 8)
	}
	for ; from+8 <= to; from += 8 {
		bm[from/8] = 0xff
	}
	for ; from < to; from++ {
		bm[from/8] |= 1 << (from % 8)
	}
}

// runs calls fn for each run [start, end) of set bits among the first n
// bits of bm. len(bm)*8 must be a multiple of 64 and at least n.
func runs(bm []byte, n uint64, fn func(start, end uint64)) {
	var start uint64
	in := false
	for base := uint64(0); base < n; base += 64 {
		w := binary.LittleEndian.Uint64(bm[base/8:])
		if rem := n - base; rem < 64 {
			w &= 1<<rem - 1 // bits past the group are not blocks
		}
		if (w == 0 && !in) || (w == ^uint64(0) && in) {
			continue
		}
		for pos := uint64(0); pos < 64; {
			if !in {
				x := w >> pos
				if x == 0 {
					break
				}
				pos += uint64(bits.TrailingZeros64(x))
				start, in = base+pos, true
			} else {
				x := ^w >> pos // zeros shifted in count as set: the run goes on
				if x == 0 {
					break
				}
				pos += uint64(bits.TrailingZeros64(x))
				fn(start, base+pos)
				in = false
			}
		}
	}
	if in {
		fn(start, n)
	}
}
