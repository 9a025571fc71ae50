package fstools

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os/exec"
	"strings"
	"testing"

	"github.com/rootswap/rootswap/internal/testutil"
)

// blkid is what util-linux says about an image: TYPE, LABEL, UUID (and
// PTTYPE/PTUUID for partition tables, returned as TYPE and UUID).
func blkid(t *testing.T, img string) FS {
	t.Helper()
	testutil.RequireTool(t, "blkid")
	out, err := exec.Command("blkid", "-p", "-o", "export", img).Output()
	if err != nil {
		t.Fatalf("blkid -p %s: %v", img, err)
	}
	var fs FS
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "TYPE", "PTTYPE":
			fs.Type = v
		case "LABEL":
			fs.Label = v
		case "UUID", "PTUUID":
			fs.UUID = v
		}
	}
	return fs
}

// TestDetectAgainstBlkid makes real filesystems with the mkfs tools and
// checks Detect agrees with blkid, and that the size is the image's.
func TestDetectAgainstBlkid(t *testing.T) {
	tests := []struct {
		name string
		size int64
		mkfs []string // IMG is replaced by the image path
	}{
		{"ext2", 16 << 20, []string{"mkfs.ext2", "-q", "-L", "boot", "IMG"}},
		{"ext3", 16 << 20, []string{"mkfs.ext3", "-q", "-L", "var", "IMG"}},
		{"ext4", 64 << 20, []string{"mkfs.ext4", "-q", "-L", "root", "IMG"}},
		{"ext4-64bit-4k", 64 << 20, []string{"mkfs.ext4", "-q", "-b", "4096", "-O", "64bit,metadata_csum", "IMG"}},
		{"ext3-like-ext4", 16 << 20, []string{"mkfs.ext4", "-q", "-O", "^extent,^flex_bg,^huge_file,^dir_nlink,^extra_isize,^metadata_csum,^64bit", "IMG"}},
		{"xfs", 320 << 20, []string{"mkfs.xfs", "-q", "-L", "data", "IMG"}},
		{"btrfs", 128 << 20, []string{"mkfs.btrfs", "-q", "-L", "pool", "IMG"}},
		{"swap", 8 << 20, []string{"mkswap", "-L", "swap0", "IMG"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.RequireTool(t, tt.mkfs[0])
			img := testutil.Image(t, t.TempDir(), "img", tt.size)
			args := append([]string(nil), tt.mkfs[1:]...)
			for i, a := range args {
				if a == "IMG" {
					args[i] = img
				}
			}
			testutil.Run(t, tt.mkfs[0], args...)
			got, err := DetectPath(img)
			if err != nil {
				t.Fatal(err)
			}
			want := blkid(t, img)
			if got.Type != want.Type || got.Label != want.Label || got.UUID != want.UUID {
				t.Errorf("Detect = %s/%q/%s, blkid says %s/%q/%s", got.Type, got.Label, got.UUID, want.Type, want.Label, want.UUID)
			}
			if got.Size != tt.size {
				t.Errorf("Size = %d, want the image size %d", got.Size, tt.size)
			}
			if !strings.Contains(got.String(), want.UUID) {
				t.Errorf("String() = %q does not name UUID %s", got.String(), want.UUID)
			}
		})
	}
}

func TestDetectPartitionTables(t *testing.T) {
	for _, label := range []string{"dos", "gpt"} {
		t.Run(label, func(t *testing.T) {
			testutil.RequireTool(t, "sfdisk")
			img := testutil.Image(t, t.TempDir(), "img", 8<<20)
			cmd := exec.Command("sfdisk", "-q", img)
			cmd.Stdin = strings.NewReader("label: " + label + "\n,4M\n,\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("sfdisk: %v\n%s", err, out)
			}
			got, err := DetectPath(img)
			if err != nil {
				t.Fatal(err)
			}
			want := blkid(t, img)
			if got.Type != want.Type || got.UUID != want.UUID {
				t.Errorf("Detect = %s/%s, blkid says %s/%s", got.Type, got.UUID, want.Type, want.UUID)
			}
			if got.IsFilesystem() {
				t.Errorf("a partition table counts as a filesystem")
			}
		})
	}
}

func TestDetectNothing(t *testing.T) {
	got, err := Detect(bytes.NewReader(make([]byte, 1<<20)))
	if err != nil || got != (FS{}) {
		t.Errorf("Detect(zeros) = %+v, %v; want FS{}, nil", got, err)
	}
	if got.String() != "no known signature" {
		t.Errorf("String() = %q", got.String())
	}
	// Too short for any superblock: still no error.
	if got, err := Detect(bytes.NewReader([]byte("short"))); err != nil || got.Type != "" {
		t.Errorf("Detect(short) = %+v, %v", got, err)
	}
}

// Synthetic headers for the formats whose tools are not installed; each
// check reads back the fields it wrote.

func TestDetectLUKS(t *testing.T) {
	for _, version := range []uint16{1, 2} {
		img := make([]byte, 4096)
		copy(img, "LUKS\xba\xbe")
		binary.BigEndian.PutUint16(img[6:], version)
		copy(img[24:], "cryptroot")
		const uuid = "0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b"
		copy(img[168:], uuid)
		got, _ := Detect(bytes.NewReader(img))
		wantLabel := ""
		if version == 2 {
			wantLabel = "cryptroot"
		}
		if got.Type != "crypto_LUKS" || got.UUID != uuid || got.Label != wantLabel {
			t.Errorf("LUKS%d: Detect = %+v", version, got)
		}
	}
}

func TestDetectLVM(t *testing.T) {
	img := make([]byte, 4096)
	s := img[512:1024] // LVM puts its label in sector 1
	copy(s, "LABELONE")
	binary.LittleEndian.PutUint32(s[20:], 32)
	copy(s[24:], "LVM2 001")
	copy(s[32:], "AbCdEf0123456789GhIjKlMnOpQrStUv")
	binary.LittleEndian.PutUint64(s[64:], 20<<30)
	got, _ := Detect(bytes.NewReader(img))
	if got.Type != "LVM2_member" || got.UUID != "AbCdEf-0123-4567-89Gh-IjKl-MnOp-QrStUv" || got.Size != 20<<30 {
		t.Errorf("Detect = %+v", got)
	}
}

func TestDetectMD(t *testing.T) {
	uuid := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	for _, where := range []string{"1.1", "1.2", "1.0"} {
		img := make([]byte, 1<<20)
		off := map[string]int{"1.1": 0, "1.2": 4096, "1.0": (len(img) - 8192) &^ 4095}[where]
		binary.LittleEndian.PutUint32(img[off:], mdMagic)
		binary.LittleEndian.PutUint32(img[off+4:], 1)
		copy(img[off+16:], uuid)
		copy(img[off+32:], "host:0")
		got, _ := Detect(bytes.NewReader(img))
		if got.Type != "linux_raid_member" || got.UUID != formatUUID(uuid) || got.Label != "host:0" {
			t.Errorf("md %s: Detect = %+v", where, got)
		}
	}
	img := make([]byte, 1<<20)
	off := len(img) - 65536
	binary.LittleEndian.PutUint32(img[off:], mdMagic)
	got, _ := Detect(bytes.NewReader(img))
	if got.Type != "linux_raid_member" {
		t.Errorf("md 0.90: Detect = %+v", got)
	}
	// Without a size the end of the device is out of reach.
	if got, _ := Detect(readerAtOnly{bytes.NewReader(img)}); got.Type != "" {
		t.Errorf("md 0.90 without Size(): Detect = %+v, want nothing", got)
	}
}

type readerAtOnly struct{ r *bytes.Reader }

func (r readerAtOnly) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }

func TestDetectFAT(t *testing.T) {
	img := make([]byte, 1<<20)
	img[0] = 0xEB
	binary.LittleEndian.PutUint16(img[11:], 512)
	img[13] = 8
	binary.LittleEndian.PutUint32(img[32:], 2048)
	binary.LittleEndian.PutUint32(img[67:], 0x1234ABCD)
	copy(img[71:], "EFI        ")
	copy(img[82:], "FAT32   ")
	img[510], img[511] = 0x55, 0xAA
	got, _ := Detect(bytes.NewReader(img))
	if got.Type != "vfat" || got.UUID != "1234-ABCD" || got.Label != "EFI" || got.Size != 2048*512 {
		t.Errorf("Detect = %+v", got)
	}
}

func TestDetectISO9660(t *testing.T) {
	img := make([]byte, 64<<10)
	pvd := img[32768:]
	pvd[0] = 1
	copy(pvd[1:], "CD001")
	copy(pvd[40:], "DEBIAN_12                       ")
	binary.LittleEndian.PutUint32(pvd[80:], 32)
	binary.LittleEndian.PutUint16(pvd[128:], 2048)
	img[510], img[511] = 0x55, 0xAA // hybrid images carry an MBR too
	got, _ := Detect(bytes.NewReader(img))
	if got.Type != "iso9660" || got.Label != "DEBIAN_12" || got.Size != 64<<10 {
		t.Errorf("Detect = %+v", got)
	}
}

func FuzzDetect(f *testing.F) {
	// Each seed is just long enough for its superblock: big inputs make
	// the fuzzer slow.
	seed := func(off int, data string) []byte {
		b := make([]byte, max(off+len(data), 4096)+4096)
		copy(b[off:], data)
		return b
	}
	f.Add(seed(1024+56, "\x53\xef"))
	f.Add(seed(0, "XFSB\x00\x00\x10\x00"))
	f.Add(seed(65536+64, "_BHRfS_M"))
	f.Add(seed(4096-10, "SWAPSPACE2"))
	f.Add(seed(0, "LUKS\xba\xbe\x00\x02"))
	f.Add(seed(512, "LABELONE\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xf0\x01\x00\x00LVM2 001"))
	f.Add(seed(4096, "\xfc\x4e\x2b\xa9\x01\x00\x00\x00"))
	f.Add(seed(510, "\x55\xaaEFI PART"))
	f.Add(seed(32768, "\x01CD001"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, err := Detect(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Detect on memory returned an error: %v", err)
		}
		if fs.Size < 0 {
			t.Fatalf("negative size %d", fs.Size)
		}
		_ = fs.String()
	})
}

// TestExtFeatures compares the feature words with dumpe2fs's list.
func TestExtFeatures(t *testing.T) {
	testutil.RequireTool(t, "dumpe2fs")
	for _, features := range []string{"metadata_csum,^metadata_csum_seed", "metadata_csum,metadata_csum_seed", "^metadata_csum"} {
		img := testutil.Image(t, t.TempDir(), "img", 16<<20)
		testutil.Run(t, "mkfs.ext4", "-q", "-O", features, img)
		out := testutil.Run(t, "dumpe2fs", "-h", img)
		var listed []string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "Filesystem features:"); ok {
				listed = strings.Fields(v)
			}
		}
		has := func(f string) bool {
			for _, l := range listed {
				if l == f {
					return true
				}
			}
			return false
		}
		fs, err := DetectPath(img)
		if err != nil {
			t.Fatal(err)
		}
		want := has("metadata_csum") && !has("metadata_csum_seed")
		if got := fs.Ext.UUIDChangeNeedsUnmount(); got != want {
			t.Errorf("-O %s: UUIDChangeNeedsUnmount() = %v, dumpe2fs lists %q", features, got, listed)
		}
		if got := fs.Ext.Compat&extCompatHasJournal != 0; got != has("has_journal") {
			t.Errorf("-O %s: has_journal %v, dumpe2fs lists %q", features, got, listed)
		}
	}
}
