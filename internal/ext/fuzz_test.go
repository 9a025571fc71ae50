package ext

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rootswap/rootswap/internal/extent"
)

// seedImages makes a few tiny images covering the layouts (1k/4k blocks,
// 32/64-bit descriptors, meta_bg, flex_bg, sparse_super2, uninit groups)
// at fuzz start, so testdata stays empty of binaries.
func seedImages(f *testing.F) [][]byte {
	f.Helper()
	requireE2fsprogs(f)
	dir := f.TempDir()
	var out [][]byte
	for i, c := range []struct {
		prog, size string
		args       []string
	}{
		{"mkfs.ext2", "128K", []string{"-b", "1024", "-g", "256", "-N", "64"}},
		{"mkfs.ext4", "256K", []string{"-b", "1024", "-g", "256", "-N", "64", "-O", "^has_journal"}},
		{"mkfs.ext4", "256K", []string{"-b", "1024", "-g", "256", "-N", "64", "-O", "^has_journal,meta_bg,^resize_inode"}},
		{"mkfs.ext4", "256K", []string{"-b", "1024", "-g", "256", "-N", "64", "-O", "^has_journal,^64bit,^metadata_csum,uninit_bg,sparse_super2"}},
		{"mkfs.ext4", "512K", []string{"-b", "4096", "-g", "256", "-N", "64", "-O", "^has_journal"}},
	} {
		img := filepath.Join(dir, "seed"+string(rune('0'+i)))
		mkfs(f, c.prog, img, c.size, "", c.args...)
		b, err := os.ReadFile(img)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func FuzzReadSuperblock(f *testing.F) {
	for _, img := range seedImages(f) {
		f.Add(img[:4096])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sb, err := ReadSuperblock(bytes.NewReader(data))
		if err != nil {
			return
		}
		if sb.Size() <= 0 || sb.Size()%sb.BlockSize != 0 {
			t.Errorf("Size() = %d with block size %d", sb.Size(), sb.BlockSize)
		}
		if k := sb.Kind(); k != "ext2" && k != "ext3" && k != "ext4" {
			t.Errorf("Kind() = %q", k)
		}
	})
}

func FuzzUsedExtents(f *testing.F) {
	for _, img := range seedImages(f) {
		f.Add(img)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := UsedExtents(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(es) == 0 || es[0].Off != 0 {
			t.Fatalf("extents do not start with the boot sector: %v", es)
		}
		if n := extent.Normalize(append([]extent.Extent(nil), es...)); !equalExtents(n, es) {
			t.Errorf("extents are not normalized: %v", es)
		}
		if end := es[len(es)-1].End(); end > int64(len(data)) {
			t.Errorf("extents end at %d, past the %d-byte image", end, len(data))
		}
	})
}
