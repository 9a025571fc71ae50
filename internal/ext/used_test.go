package ext

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/extent"
)

type imageCase struct {
	name string
	prog string
	size string // mkfs size argument
	data int64  // bytes of random files to put in
	args []string
	// uninitMeta: the image must have BLOCK_UNINIT groups holding a
	// superblock or descriptor copy, so the computed-metadata path is
	// what the oracle comparison checks.
	uninitMeta bool
	// punch removes every third file with debugfs after mkfs, leaving
	// holes in the bitmaps.
	punch bool
}

var imageCases = []imageCase{
	{name: "ext2-1k", prog: "mkfs.ext2", size: "24M", data: 6 << 20, args: []string{"-b", "1024"}},
	{name: "ext2-1k-no-sparse-super", prog: "mkfs.ext2", size: "24M", data: 4 << 20, args: []string{"-b", "1024", "-O", "^sparse_super,^resize_inode"}},
	{name: "ext3-2k", prog: "mkfs.ext3", size: "40M", data: 8 << 20, args: []string{"-b", "2048"}},
	{name: "ext4-4k", prog: "mkfs.ext4", size: "160M", data: 20 << 20, args: []string{"-b", "4096"}, punch: true},
	{name: "ext4-1k", prog: "mkfs.ext4", size: "64M", data: 10 << 20, args: []string{"-b", "1024"}, uninitMeta: true},
	{name: "ext4-2k-no-flex_bg", prog: "mkfs.ext4", size: "256M", data: 2 << 20, args: []string{"-b", "2048", "-O", "^flex_bg"}, uninitMeta: true},
	{name: "ext4-meta_bg-64bit", prog: "mkfs.ext4", size: "80M", data: 8 << 20,
		args: []string{"-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode"}, uninitMeta: true, punch: true},
	{name: "ext4-meta_bg-32bit", prog: "mkfs.ext4", size: "72M", data: 8 << 20,
		args: []string{"-b", "1024", "-g", "512", "-O", "meta_bg,^resize_inode,^64bit,^metadata_csum,uninit_bg"}, uninitMeta: true},
	{name: "ext4-sparse_super2", prog: "mkfs.ext4", size: "64M", data: 6 << 20, args: []string{"-b", "1024", "-O", "sparse_super2"}},
	{name: "ext4-32bit-uninit_bg", prog: "mkfs.ext4", size: "64M", data: 6 << 20, args: []string{"-b", "4096", "-O", "^64bit,^metadata_csum,uninit_bg"}},
	{name: "ext4-no-journal", prog: "mkfs.ext4", size: "48M", data: 6 << 20, args: []string{"-O", "^has_journal"}},
	{name: "ext4-lazy_itable_init", prog: "mkfs.ext4", size: "64M", data: 6 << 20, args: []string{"-b", "4096", "-E", "lazy_itable_init=1"}},
	{name: "ext4-packed_meta_blocks", prog: "mkfs.ext4", size: "64M", data: 6 << 20, args: []string{"-b", "4096", "-E", "packed_meta_blocks=1"}},
	{name: "ext4-T-small", prog: "mkfs.ext4", size: "32M", data: 4 << 20, args: []string{"-T", "small"}},
	{name: "ext4-64k", prog: "mkfs.ext4", size: "128M", data: 10 << 20, args: []string{"-b", "65536"}},
	{name: "ext4-near-empty", prog: "mkfs.ext4", size: "256M", data: 1, args: []string{"-b", "4096", "-g", "8192"}, uninitMeta: true},
	{name: "ext4-near-full", prog: "mkfs.ext4", size: "40M", data: 31 << 20, args: []string{"-b", "1024", "-m", "0"}, punch: true},
}

// TestUsedExtents builds each image with mkfs -d, computes UsedExtents,
// checks it against dumpe2fs and the superblock's free count, copies only
// those ranges onto random garbage, and requires the copy to pass e2fsck
// -fn and to hold every file byte for byte.
func TestUsedExtents(t *testing.T) {
	requireE2fsprogs(t)
	for i, c := range imageCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			src := filepath.Join(dir, "src")
			makeTree(t, src, uint64(i), c.data)
			img := filepath.Join(dir, "img")
			mkfs(t, c.prog, img, c.size, src, c.args...)
			if c.punch {
				punchFiles(t, src, img)
			}

			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := UsedExtents(f)
			if err != nil {
				t.Fatalf("UsedExtents: %v", err)
			}
			sb, err := ReadSuperblock(f)
			if err != nil {
				t.Fatal(err)
			}

			if n := extent.Normalize(append([]extent.Extent(nil), got...)); !equalExtents(n, got) {
				t.Errorf("extents are not normalized:\n%v", got)
			}
			// The exact relation: every used block, which on 1 KiB
			// filesystems includes the boot block 0 (counted in
			// BlocksCount, in no group, never free).
			if total, want := extent.Total(got), int64(sb.BlocksCount-sb.FreeBlocks)*sb.BlockSize; total != want {
				t.Errorf("used total %d bytes, want (blocks %d - free %d) * %d = %d", total, sb.BlocksCount, sb.FreeBlocks, sb.BlockSize, want)
			}
			want, uninit := dumpe2fsUsed(t, img)
			if !equalExtents(got, want) {
				t.Errorf("UsedExtents differs from dumpe2fs's used blocks:\n got %s\nwant %s", summary(got), summary(want))
			}
			if c.uninitMeta {
				if n := uninitGroupsWithMetadata(t, f); n == 0 {
					t.Errorf("no BLOCK_UNINIT group holds a superblock or descriptor copy (%d BLOCK_UNINIT groups): the case does not test what it should", uninit)
				}
			}

			target := filepath.Join(dir, "target")
			copyOntoGarbage(t, img, target, got, uint64(i))
			if out, err := exec.Command("e2fsck", "-fn", target).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn on the copy: %v\n%s", err, out)
			}
			rd := filepath.Join(dir, "rdump")
			if err := os.Mkdir(rd, 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("debugfs", "-R", "rdump / "+rd, target).CombinedOutput(); err != nil {
				t.Fatalf("debugfs rdump: %v\n%s", err, out)
			}
			compareTrees(t, src, rd)
			t.Logf("%s: %d blocks of %d, %d free, %d extents, %d bytes used",
				sb.Kind(), sb.BlocksCount, sb.BlockSize, sb.FreeBlocks, len(got), extent.Total(got))
		})
	}
}

// punchFiles removes every third regular file from both the tree and the
// image, so the image's bitmaps have holes between used runs.
func punchFiles(t *testing.T, src, img string) {
	t.Helper()
	var cmds []string
	i := 0
	filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && d.Name() != "empty" {
			if i++; i%3 == 0 {
				rel, _ := filepath.Rel(src, p)
				cmds = append(cmds, "rm /"+rel)
				os.Remove(p)
			}
		}
		return nil
	})
	if len(cmds) == 0 {
		t.Fatal("no files to punch")
	}
	script := filepath.Join(t.TempDir(), "cmds")
	if err := os.WriteFile(script, []byte(strings.Join(cmds, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("debugfs", "-w", "-f", script, img).CombinedOutput(); err != nil {
		t.Fatalf("debugfs -w -f %s: %v\n%s", script, err, out)
	}
	// The source must still be consistent, or the copy proves nothing.
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn on the punched source: %v\n%s", err, out)
	}
}

// uninitGroupsWithMetadata counts BLOCK_UNINIT groups where baseMetadata
// finds a superblock or descriptor block.
func uninitGroupsWithMetadata(t *testing.T, f *os.File) int {
	t.Helper()
	sb, err := ReadSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	l, err := readLayout(f, sb)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for g, d := range l.descs {
		if d.flags&bgBlockUninit == 0 {
			continue
		}
		found := false
		l.baseMetadata(uint64(g), func(uint64, uint64) { found = true })
		if found {
			n++
		}
	}
	return n
}

func equalExtents(a, b []extent.Extent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// summary prints a long extent list short enough for a failure message,
// with the first differences findable.
func summary(es []extent.Extent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d extents, %d bytes:", len(es), extent.Total(es))
	for i, e := range es {
		if i == 40 {
			b.WriteString(" ...")
			break
		}
		fmt.Fprintf(&b, " %d+%d", e.Off, e.Len)
	}
	return b.String()
}

// TestUsedExtentsCorrupt damages one field of a good image at a time and
// requires an error that names the problem, never a panic or a wrong list.
func TestUsedExtentsCorrupt(t *testing.T) {
	requireE2fsprogs(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	makeTree(t, src, 99, 1<<20)
	img := filepath.Join(dir, "img")
	mkfs(t, "mkfs.ext4", img, "32M", src, "-b", "4096")
	good, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ReadSuperblock(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	desc := func(b []byte, g int) []byte { return b[sb.BlockSize+int64(g)*int64(sb.DescSize):] }
	beyond := uint32(sb.BlocksCount + 5)

	for _, c := range []struct {
		name    string
		damage  func(b []byte) []byte
		wantErr string
		wantIs  error
	}{
		{"block bitmap beyond the fs", func(b []byte) []byte { le.PutUint32(desc(b, 0)[0x0:], beyond); return b }, "group 0: block bitmap at blocks", nil},
		{"inode bitmap beyond the fs", func(b []byte) []byte { le.PutUint32(desc(b, 0)[0x4:], beyond); return b }, "group 0: inode bitmap", nil},
		{"inode table crossing the end", func(b []byte) []byte {
			le.PutUint32(desc(b, 0)[0x8:], uint32(sb.BlocksCount-1))
			return b
		}, "group 0: inode table", nil},
		// Block 0 of a 4 KiB filesystem is the superblock's: read as the
		// bitmap it lost the root directory, exit 0.
		{"block bitmap at block 0", func(b []byte) []byte { le.PutUint32(desc(b, 0)[0x0:], 0); return b }, "group 0: block bitmap at blocks 0-0 overlaps", nil},
		{"inode bitmap on the descriptors", func(b []byte) []byte { le.PutUint32(desc(b, 0)[0x4:], 1); return b }, "overlaps group 0's superblock or group descriptors", nil},
		{"block bitmap inside the inode table", func(b []byte) []byte {
			le.PutUint32(desc(b, 0)[0x0:], le.Uint32(desc(b, 0)[0x8:])+1)
			return b
		}, "overlaps group 0's inode table", nil},
		{"inode table over the block bitmap", func(b []byte) []byte {
			le.PutUint32(desc(b, 0)[0x8:], le.Uint32(desc(b, 0)[0x0:]))
			return b
		}, "overlaps group 0's block bitmap", nil},
		{"block bitmap high half set", func(b []byte) []byte { le.PutUint32(desc(b, 0)[0x20:], 1); return b }, "outside the filesystem", nil},
		{"device shorter than the fs", func(b []byte) []byte { return b[:len(b)-int(sb.BlockSize)] }, "larger than its device", nil},
		{"block count beyond the device", func(b []byte) []byte { le.PutUint32(b[1024+0x4:], uint32(sb.BlocksCount*4)); return b }, "larger than its device", nil},
		{"huge 64-bit block count", func(b []byte) []byte { le.PutUint32(b[1024+0x150:], 0xffffffff); return b }, "overflow", nil},
		{"inode count mismatch", func(b []byte) []byte { le.PutUint32(b[1024+0x0:], sb.InodesCount+1); return b }, "inodes, but", nil},
		{"zero blocks per group", func(b []byte) []byte { le.PutUint32(b[1024+0x20:], 0); return b }, "blocks per group", nil},
		{"needs journal recovery", func(b []byte) []byte { le.PutUint32(b[1024+0x60:], sb.FeatureIncompat|IncompatRecover); return b }, "", ErrNeedsRecovery},
		{"errors recorded", func(b []byte) []byte { le.PutUint16(b[1024+0x3A:], 3); return b }, "errors recorded", ErrNotClean},
		{"unclean without a journal", func(b []byte) []byte {
			le.PutUint16(b[1024+0x3A:], 0)
			le.PutUint32(b[1024+0x5C:], sb.FeatureCompat&^CompatHasJournal)
			return b
		}, "not cleanly unmounted", ErrNotClean},
		{"unknown incompat feature", func(b []byte) []byte { le.PutUint32(b[1024+0x60:], sb.FeatureIncompat|0x80000000); return b }, "unsupported incompatible features 0x80000000", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.damage(append([]byte(nil), good...))
			p := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			es, err := UsedExtents(f)
			if err == nil {
				t.Fatalf("UsedExtents succeeded with %d extents, want an error", len(es))
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Errorf("error %q, want %q", err, c.wantIs)
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("error %q, want it to mention %q", err, c.wantErr)
			}
		})
	}
}

// TestUncleanJournaledTrusted: a journaled filesystem the kernel recovered
// after a crash keeps its valid bit clear, yet its bitmaps are right.
func TestUncleanJournaledTrusted(t *testing.T) {
	requireE2fsprogs(t)
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, "mkfs.ext4", img, "32M", "", "-b", "4096")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	clean, err := UsedExtents(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint16(b[1024+0x3A:], 0)
	unclean, err := UsedExtents(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("UsedExtents on a journaled fs without the valid bit: %v", err)
	}
	if !equalExtents(clean, unclean) {
		t.Errorf("extents changed with the state:\n got %s\nwant %s", summary(unclean), summary(clean))
	}
}

// TestBadDescriptorChecksumIgnored flips a group descriptor's checksum:
// fsck's business, not ours; the extents must not change.
func TestBadDescriptorChecksumIgnored(t *testing.T) {
	requireE2fsprogs(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "img")
	mkfs(t, "mkfs.ext4", img, "32M", "", "-b", "4096")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before, err := UsedExtents(f)
	if err != nil {
		t.Fatal(err)
	}
	var csum [2]byte
	off := int64(4096 + 0x1E) // group 0's bg_checksum
	if _, err := f.ReadAt(csum[:], off); err != nil {
		t.Fatal(err)
	}
	csum[0] ^= 0xff
	if _, err := f.WriteAt(csum[:], off); err != nil {
		t.Fatal(err)
	}
	// e2fsck -n ignores it and exits 0, but must have noticed it.
	if out, _ := exec.Command("e2fsck", "-fn", img).CombinedOutput(); !strings.Contains(string(out), "Group descriptor 0 checksum is") {
		t.Fatalf("e2fsck did not notice the damaged checksum, so this test damaged nothing:\n%s", out)
	}
	after, err := UsedExtents(f)
	if err != nil {
		t.Fatalf("UsedExtents with a bad descriptor checksum: %v", err)
	}
	if !equalExtents(before, after) {
		t.Errorf("extents changed with the checksum:\n got %s\nwant %s", summary(after), summary(before))
	}
}

func TestRuns(t *testing.T) {
	for _, c := range []struct {
		bits string // '1' set, anything else clear; bit 0 first
		want [][2]uint64
	}{
		{"", nil},
		{"0000", nil},
		{"1", [][2]uint64{{0, 1}}},
		{"0110", [][2]uint64{{1, 3}}},
		{"1011" + strings.Repeat("1", 70) + "0001", [][2]uint64{{0, 1}, {2, 74}, {77, 78}}},
		{strings.Repeat("1", 128), [][2]uint64{{0, 128}}},
		{strings.Repeat("0", 63) + "11" + strings.Repeat("0", 63) + "1", [][2]uint64{{63, 65}, {128, 129}}},
	} {
		bm := make([]byte, 64)
		for i, ch := range c.bits {
			if ch == '1' {
				bm[i/8] |= 1 << (i % 8)
			}
		}
		// Bits past n are set, and must be ignored.
		for i := len(c.bits); i < len(bm)*8; i++ {
			bm[i/8] |= 1 << (i % 8)
		}
		var got [][2]uint64
		runs(bm, uint64(len(c.bits)), func(s, e uint64) { got = append(got, [2]uint64{s, e}) })
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("runs(%q) = %v, want %v", c.bits, got, c.want)
		}
	}
}

// TestUsedExtentsLive: the live pre-copy reads the bitmaps of a mounted
// read-write filesystem (journal flagged for recovery) as they are; a
// filesystem with errors recorded is still refused.
func TestUsedExtentsLive(t *testing.T) {
	requireE2fsprogs(t)
	img := filepath.Join(t.TempDir(), "img")
	mkfs(t, "mkfs.ext4", img, "32M", "", "-b", "4096")
	clean, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	want, err := UsedExtents(bytes.NewReader(clean))
	if err != nil {
		t.Fatal(err)
	}
	sb, err := ReadSuperblock(bytes.NewReader(clean))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	live := append([]byte(nil), clean...)
	le.PutUint32(live[1024+0x60:], sb.FeatureIncompat|IncompatRecover)
	if _, err := UsedExtents(bytes.NewReader(live)); !errors.Is(err, ErrNeedsRecovery) {
		t.Fatalf("UsedExtents of a live journal: %v, want %v", err, ErrNeedsRecovery)
	}
	got, err := UsedExtentsLive(bytes.NewReader(live))
	if err != nil {
		t.Fatalf("UsedExtentsLive of a live journal: %v", err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("UsedExtentsLive = %v, want the bitmaps' %v", got, want)
	}
	broken := append([]byte(nil), live...)
	le.PutUint16(broken[1024+0x3A:], 3)
	if _, err := UsedExtentsLive(bytes.NewReader(broken)); !errors.Is(err, ErrNotClean) {
		t.Errorf("UsedExtentsLive with errors recorded: %v, want %v", err, ErrNotClean)
	}
}
