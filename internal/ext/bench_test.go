package ext

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rootswap/rootswap/internal/extent"
)

// BenchmarkUsedExtents reads 1 GiB sparse ext4 images holding some files;
// the bytes/s figure is filesystem size scanned per second.
func BenchmarkUsedExtents(b *testing.B) {
	requireE2fsprogs(b)
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	makeTree(b, src, 7, 64<<20)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"4k", []string{"-b", "4096"}},
		{"1k", []string{"-b", "1024"}},
		{"1k-no-flex_bg", []string{"-b", "1024", "-O", "^flex_bg"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			img := filepath.Join(dir, "img-"+c.name)
			mkfs(b, "mkfs.ext4", img, "1G", src, c.args...)
			f, err := os.Open(img)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(1 << 30)
			var es []extent.Extent
			for b.Loop() {
				if es, err = UsedExtents(f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(es)), "extents")
		})
	}
}
