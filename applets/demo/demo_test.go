package demo

import (
	"errors"
	"testing"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/sandbox"
)

func TestParseVariants(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want sandbox.Variants
	}{
		{"", sandbox.Variants{}},
		{"bind", sandbox.Variants{BindMount: true}},
		{"swapfile,overlay", sandbox.Variants{SwapFile: true, Overlay: true}},
		{"buildroot", sandbox.Variants{Buildroot: true}},
		{"squashfs", sandbox.Variants{Squashfs: true}},
		{"all", sandbox.Variants{BindMount: true, SwapFile: true, Overlay: true, Buildroot: true, Squashfs: true}},
	} {
		got, err := parseVariants(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseVariants(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if _, err := parseVariants("bind,nfs"); !errors.Is(err, cli.ErrUsage) {
		t.Errorf("parseVariants(bind,nfs): %v, want a usage error", err)
	}
}
