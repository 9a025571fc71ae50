package ext

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dumpe2fsHeader returns dumpe2fs -h's "Key: value" lines.
func dumpe2fsHeader(t *testing.T, img string) map[string]string {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", img).Output()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v", img, err)
	}
	h := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			h[k] = strings.TrimSpace(v)
		}
	}
	return h
}

// TestReadSuperblock compares every field with dumpe2fs and the kind with
// blkid, for each flavour mkfs makes.
func TestReadSuperblock(t *testing.T) {
	requireE2fsprogs(t)
	for _, c := range []struct {
		name, prog string
		args       []string
	}{
		{"ext2", "mkfs.ext2", []string{"-b", "1024"}},
		{"ext3", "mkfs.ext3", []string{"-b", "2048", "-L", "root"}},
		{"ext4", "mkfs.ext4", []string{"-L", "a-sixteen-chars!"}},
		{"ext4-no-journal", "mkfs.ext4", []string{"-O", "^has_journal"}},
		{"ext4-32bit", "mkfs.ext4", []string{"-O", "^64bit", "-b", "4096"}},
		{"ext3-meta_bg", "mkfs.ext3", []string{"-O", "meta_bg,^resize_inode"}},
		{"ext4-sparse_super2", "mkfs.ext4", []string{"-O", "sparse_super2", "-E", "num_backup_sb=1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			mkfs(t, c.prog, img, "40M", "", c.args...)
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sb, err := ReadSuperblock(f)
			if err != nil {
				t.Fatal(err)
			}
			h := dumpe2fsHeader(t, img)
			num := func(k string) string {
				if v, ok := h[k]; ok {
					return v
				}
				return "0"
			}
			descSize := num("Group descriptor size")
			if descSize == "0" {
				descSize = "32"
			}
			label := h["Filesystem volume name"]
			if label == "<none>" {
				label = ""
			}
			uuid := strings.ReplaceAll(h["Filesystem UUID"], "-", "")
			for _, f := range []struct{ what, got, want string }{
				{"BlockSize", strconv.FormatInt(sb.BlockSize, 10), num("Block size")},
				{"BlocksCount", strconv.FormatUint(sb.BlocksCount, 10), num("Block count")},
				{"FreeBlocks", strconv.FormatUint(sb.FreeBlocks, 10), num("Free blocks")},
				{"ReservedBlocks", strconv.FormatUint(sb.ReservedBlocks, 10), num("Reserved block count")},
				{"InodesCount", strconv.FormatUint(uint64(sb.InodesCount), 10), num("Inode count")},
				{"FreeInodes", strconv.FormatUint(uint64(sb.FreeInodes), 10), num("Free inodes")},
				{"FirstDataBlock", strconv.FormatUint(uint64(sb.FirstDataBlock), 10), num("First block")},
				{"BlocksPerGroup", strconv.FormatUint(uint64(sb.BlocksPerGroup), 10), num("Blocks per group")},
				{"InodesPerGroup", strconv.FormatUint(uint64(sb.InodesPerGroup), 10), num("Inodes per group")},
				{"InodeSize", strconv.FormatUint(uint64(sb.InodeSize), 10), num("Inode size")},
				{"DescSize", strconv.FormatUint(uint64(sb.DescSize), 10), descSize},
				{"ReservedGDTBlocks", strconv.FormatUint(uint64(sb.ReservedGDTBlocks), 10), num("Reserved GDT blocks")},
				{"Magic", "0x" + strings.ToUpper(strconv.FormatUint(uint64(sb.Magic), 16)), h["Filesystem magic number"]},
				{"UUID", hex.EncodeToString(sb.UUID[:]), uuid},
				{"Label", sb.Label, label},
				{"Size", strconv.FormatInt(sb.Size(), 10), strconv.FormatInt(atoi(t, num("Block count"))*atoi(t, num("Block size")), 10)},
			} {
				if f.got != f.want {
					t.Errorf("%s = %q, dumpe2fs says %q", f.what, f.got, f.want)
				}
			}
			if _, err := exec.LookPath("blkid"); err == nil {
				out, err := exec.Command("blkid", "-p", "-o", "value", "-s", "TYPE", img).Output()
				if err != nil {
					t.Fatalf("blkid -p %s: %v", img, err)
				}
				if got, want := sb.Kind(), strings.TrimSpace(string(out)); got != want {
					t.Errorf("Kind() = %q, blkid says %q", got, want)
				}
			}
		})
	}
}

func TestReadSuperblockNotExt(t *testing.T) {
	withAt := func(size int, off int, sig string) []byte {
		b := make([]byte, size)
		copy(b[off:], sig)
		return b
	}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "device ends at byte 1024"},
		{"short", make([]byte, 1500), "device ends at byte 1500"},
		{"zeros", make([]byte, 4096), "magic at byte 1080 is 0x0000"},
		{"xfs", withAt(4096, 0, "XFSB"), "looks like xfs"},
		{"btrfs", withAt(0x11000, 0x10040, "_BHRfS_M"), "looks like btrfs"},
		{"swap", withAt(4096, 4086, "SWAPSPACE2"), "looks like swap"},
		{"bad block size", withAt(4096, 1024+0x18, "\x07"), "impossible block size"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if strings.HasPrefix(c.name, "bad ") { // an ext magic, then a bad field
				copy(c.data[1024+0x38:], "\x53\xef")
			}
			sb, err := ReadSuperblock(bytes.NewReader(c.data))
			if err == nil {
				t.Fatalf("ReadSuperblock = %+v, want an error", sb)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
		})
	}
}
