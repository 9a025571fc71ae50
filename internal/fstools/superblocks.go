package fstools

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

var (
	le = binary.LittleEndian
	be = binary.BigEndian
)

// ext2/3/4: the superblock is at 1024, magic 0xEF53 at offset 56.
const (
	extCompatHasJournal = 0x4
	extIncompatJournal  = 0x8  // this is an external journal device
	extIncompat64bit    = 0x80 // blocks count has a high half
	extIncompatCsumSeed = 0x2000
	// metadata_csum: checksums seeded from the UUID (or the csum seed).
	extROCompatMetadataCsum = 0x400
	// What ext3 supports; anything else makes it ext4 (blkid's rule).
	ext3Incompat = 0x2 | 0x4 | 0x10 // filetype, recover, meta_bg
	ext3ROCompat = 0x1 | 0x2 | 0x4  // sparse_super, large_file, btree_dir
)

func probeExt(d *reader) (FS, bool) {
	sb := d.at(1024, 1024)
	if sb == nil || le.Uint16(sb[56:]) != 0xEF53 {
		return FS{}, false
	}
	compat, incompat, roCompat := le.Uint32(sb[92:]), le.Uint32(sb[96:]), le.Uint32(sb[100:])
	logBlock := le.Uint32(sb[24:])
	if logBlock > 6 { // blocks beyond 64 KiB do not exist: not a real superblock
		return FS{}, false
	}
	bs := 1024 << logBlock
	blocks := uint64(le.Uint32(sb[4:]))
	if incompat&extIncompat64bit != 0 {
		blocks |= uint64(le.Uint32(sb[0x150:])) << 32
	}
	fs := FS{
		UUID:      formatUUID(sb[104:120]),
		Label:     cString(sb[120:136]),
		BlockSize: bs,
		Size:      clampSize(blocks, uint64(bs)),
		Ext:       ExtFeatures{Compat: compat, Incompat: incompat, ROCompat: roCompat},
	}
	switch {
	case incompat&extIncompatJournal != 0:
		fs.Type = "jbd"
	case incompat&^ext3Incompat != 0 || roCompat&^ext3ROCompat != 0:
		fs.Type = "ext4"
	case compat&extCompatHasJournal != 0:
		fs.Type = "ext3"
	default:
		fs.Type = "ext2"
	}
	return fs, true
}

// XFS: big-endian superblock at 0 starting with "XFSB".
func probeXFS(d *reader) (FS, bool) {
	sb := d.at(0, 512)
	if sb == nil || string(sb[:4]) != "XFSB" {
		return FS{}, false
	}
	bs := be.Uint32(sb[4:])
	if bs < 512 || bs > 65536 {
		return FS{}, false
	}
	return FS{
		Type:      "xfs",
		UUID:      formatUUID(sb[32:48]),
		Label:     cString(sb[108:120]),
		BlockSize: int(bs),
		Size:      clampSize(be.Uint64(sb[8:]), uint64(bs)),
	}, true
}

// btrfs: the primary superblock is at 64 KiB, magic "_BHRfS_M" at 64.
func probeBtrfs(d *reader) (FS, bool) {
	sb := d.at(65536, 4096)
	if sb == nil || string(sb[64:72]) != "_BHRfS_M" {
		return FS{}, false
	}
	// dev_item starts at 201: devid u64, then this device's total_bytes.
	return FS{
		Type:      "btrfs",
		UUID:      formatUUID(sb[32:48]),
		Label:     cString(sb[299 : 299+256]),
		BlockSize: int(le.Uint32(sb[144:])),
		Size:      clampSize(le.Uint64(sb[209:]), 1),
	}, true
}

// LUKS1 and LUKS2 share the first fields: magic, version, and the UUID
// as text at 168; LUKS2 has a label at 24.
func probeLUKS(d *reader) (FS, bool) {
	h := d.at(0, 512)
	if h == nil || string(h[:6]) != "LUKS\xba\xbe" {
		return FS{}, false
	}
	fs := FS{Type: "crypto_LUKS", UUID: cString(h[168:208])}
	if be.Uint16(h[6:]) == 2 {
		fs.Label = cString(h[24:72])
	}
	return fs, true
}

// LVM2: a label "LABELONE" in one of the first four sectors, type
// "LVM2 001", and the PV header (32-character UUID, device size) at the
// offset the label gives.
func probeLVM(d *reader) (FS, bool) {
	for sector := int64(0); sector < 4; sector++ {
		s := d.at(sector*512, 512)
		if s == nil || string(s[:8]) != "LABELONE" || string(s[24:32]) != "LVM2 001" {
			continue
		}
		fs := FS{Type: "LVM2_member"}
		if off := le.Uint32(s[20:]); off <= 512-40 {
			uuid := s[off : off+32]
			fs.UUID = fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", uuid[0:6], uuid[6:10], uuid[10:14], uuid[14:18], uuid[18:22], uuid[22:26], uuid[26:32])
			fs.Size = clampSize(le.Uint64(s[off+32:]), 1)
		}
		return fs, true
	}
	return FS{}, false
}

const mdMagic = 0xa92b4efc

// md RAID: version 1.1 at 0, 1.2 at 4 KiB, 1.0 at 8 KiB from the end
// (rounded down to 4 KiB), 0.90 at the last 64 KiB-aligned 64 KiB.
func probeMD(d *reader) (FS, bool) {
	offsets := []int64{0, 4096}
	if d.size > 0 {
		offsets = append(offsets, (d.size-8192)&^4095)
	}
	for _, off := range offsets {
		sb := d.at(off, 256)
		if sb == nil || le.Uint32(sb) != mdMagic || le.Uint32(sb[4:]) != 1 {
			continue
		}
		return FS{Type: "linux_raid_member", UUID: formatUUID(sb[16:32]), Label: cString(sb[32:64])}, true
	}
	if d.size >= 65536 {
		off := d.size&^65535 - 65536
		sb := d.at(off, 256)
		for _, bo := range []binary.ByteOrder{le, be} {
			if sb == nil || bo.Uint32(sb) != mdMagic || bo.Uint32(sb[4:]) != 0 {
				continue
			}
			uuid := make([]byte, 16)
			for i, o := range []int{20, 52, 56, 60} {
				bo.PutUint32(uuid[4*i:], bo.Uint32(sb[o:]))
			}
			return FS{Type: "linux_raid_member", UUID: formatUUID(uuid)}, true
		}
	}
	return FS{}, false
}

// Linux swap: "SWAPSPACE2" (or the old "SWAP-SPACE") in the last 10
// bytes of the first page, for the page sizes Linux has.
func probeSwap(d *reader) (FS, bool) {
	for _, page := range []int64{4096, 8192, 16384, 65536} {
		tail := d.at(page-10, 10)
		if tail == nil || (string(tail) != "SWAPSPACE2" && string(tail) != "SWAP-SPACE") {
			continue
		}
		fs := FS{Type: "swap", BlockSize: int(page)}
		if h := d.at(1024, 44); h != nil && string(tail) == "SWAPSPACE2" {
			lastPage := uint64(le.Uint32(h[4:]))
			fs.Size = clampSize(lastPage+1, uint64(page))
			fs.UUID = formatUUID(h[12:28])
			fs.Label = cString(h[28:44])
		}
		return fs, true
	}
	return FS{}, false
}

// ISO 9660: the primary volume descriptor at 32 KiB, "CD001" at 1.
func probeISO9660(d *reader) (FS, bool) {
	pvd := d.at(32768, 2048)
	if pvd == nil || string(pvd[1:6]) != "CD001" || pvd[0] != 1 {
		return FS{}, false
	}
	bs := le.Uint16(pvd[128:])
	return FS{
		Type:      "iso9660",
		Label:     strings.TrimRight(string(pvd[40:72]), " \x00"),
		BlockSize: int(bs),
		Size:      clampSize(uint64(le.Uint32(pvd[80:])), uint64(bs)),
	}, true
}

// FAT12/16/32: a boot sector with a jump instruction, 0x55AA at 510 and
// the file-system-type text where FAT puts it.
func probeFAT(d *reader) (FS, bool) {
	bs := d.at(0, 512)
	if bs == nil || bs[510] != 0x55 || bs[511] != 0xAA || (bs[0] != 0xEB && bs[0] != 0xE9) {
		return FS{}, false
	}
	var idOff, labelOff int
	switch {
	case string(bs[82:87]) == "FAT32":
		idOff, labelOff = 67, 71
	case string(bs[54:59]) == "FAT12" || string(bs[54:59]) == "FAT16" || string(bs[54:61]) == "FAT    ":
		idOff, labelOff = 39, 43
	default:
		return FS{}, false
	}
	sector := uint64(le.Uint16(bs[11:]))
	sectors := uint64(le.Uint16(bs[19:]))
	if sectors == 0 {
		sectors = uint64(le.Uint32(bs[32:]))
	}
	label := strings.TrimRight(string(bs[labelOff:labelOff+11]), " \x00")
	if label == "NO NAME" {
		label = ""
	}
	id := le.Uint32(bs[idOff:])
	return FS{
		Type:      "vfat",
		Label:     label,
		UUID:      fmt.Sprintf("%04X-%04X", id>>16, id&0xffff),
		BlockSize: int(sector) * int(bs[13]),
		Size:      clampSize(sectors, sector),
	}, true
}

// NTFS: "NTFS    " at 3 of the boot sector.
func probeNTFS(d *reader) (FS, bool) {
	bs := d.at(0, 512)
	if bs == nil || string(bs[3:11]) != "NTFS    " {
		return FS{}, false
	}
	return FS{
		Type: "ntfs",
		UUID: fmt.Sprintf("%016X", le.Uint64(bs[72:])),
		Size: clampSize(le.Uint64(bs[40:]), uint64(le.Uint16(bs[11:]))),
	}, true
}

// GPT: "EFI PART" at LBA 1, for 512- or 4096-byte sectors.
func probeGPT(d *reader) (FS, bool) {
	for _, lba := range []int64{512, 4096} {
		h := d.at(lba, 92)
		if h == nil || string(h[:8]) != "EFI PART" {
			continue
		}
		return FS{Type: "gpt", UUID: formatGUID(h[56:72])}, true
	}
	return FS{}, false
}

// DOS: 0x55AA at 510 and four partition entries with sane boot flags.
func probeDOS(d *reader) (FS, bool) {
	mbr := d.at(0, 512)
	if mbr == nil || mbr[510] != 0x55 || mbr[511] != 0xAA {
		return FS{}, false
	}
	for i := 0; i < 4; i++ {
		if f := mbr[446+16*i]; f != 0 && f != 0x80 {
			return FS{}, false
		}
	}
	fs := FS{Type: "dos"}
	if id := le.Uint32(mbr[440:]); id != 0 {
		fs.UUID = fmt.Sprintf("%08x", id)
	}
	return fs, true
}

// formatUUID prints 16 bytes in the usual 8-4-4-4-12 form; all zeros is
// "no UUID".
func formatUUID(b []byte) string {
	if bytes.Equal(b, make([]byte, 16)) {
		return ""
	}
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// formatGUID prints a GPT GUID, whose first three fields are little-endian.
func formatGUID(b []byte) string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b), le.Uint16(b[4:]), le.Uint16(b[6:]), b[8:10], b[10:16])
}

// cString is a NUL-padded string field.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// clampSize multiplies a count by a unit, answering 0 (unknown) rather
// than a negative or wrapped size for a corrupt count.
func clampSize(count, unit uint64) int64 {
	const maxSize = 1 << 62
	if unit == 0 || count > maxSize/unit {
		return 0
	}
	return int64(count * unit)
}
