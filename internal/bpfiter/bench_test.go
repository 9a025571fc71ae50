package bpfiter

import (
	"testing"

	"github.com/rootswap/rootswap/internal/btf"
)

// The iterators over this machine's processes, one walk per iteration
// (root only: loading BPF programs needs CAP_BPF).
func BenchmarkIterators(b *testing.B) {
	k, err := Open()
	if err != nil {
		b.Skip(err)
	}
	for _, it := range []struct {
		name string
		run  func() (int, error)
	}{
		{"files", func() (int, error) { f, err := k.Files(nil); return len(f), err }},
		{"tasks", func() (int, error) { t, err := k.Tasks(); return len(t), err }},
		{"maps", func() (int, error) { m, err := k.Maps(nil); return len(m), err }},
	} {
		b.Run(it.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				var err error
				if n, err = it.run(); err != nil {
					b.Skip(err)
				}
			}
			b.ReportMetric(float64(n), "records")
		})
	}
	b.Run("btf", func(b *testing.B) {
		for b.Loop() {
			if _, err := btf.LoadKernel(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
