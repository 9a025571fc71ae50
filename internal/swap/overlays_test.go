package swap

import (
	"reflect"
	"strings"
	"testing"
)

func TestOverlayLayers(t *testing.T) {
	for _, tc := range []struct {
		opts string
		want []string
	}{
		{"rw,lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work,uuid=on",
			[]string{"/var/lib/docker/overlay2/l/A", "/var/lib/docker/overlay2/l/B", "/var/lib/docker/overlay2/x/diff", "/var/lib/docker/overlay2/x/work"}},
		{`ro,lowerdir=/a\:b:/c::/data`, []string{"/a:b", "/c", "/data"}},
		{`rw,lowerdir+=/l1,lowerdir+=/l2,datadir+=/d,upperdir=/u\054v,workdir=/w`, []string{"/l1", "/l2", "/d", "/u,v", "/w"}},
		{"rw,size=10m", nil},
	} {
		if got := OverlayLayers(tc.opts); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("OverlayLayers(%q) = %q, want %q", tc.opts, got, tc.want)
		}
	}
}

func FuzzOverlayLayers(f *testing.F) {
	f.Add("rw,lowerdir=/l1:/l2,upperdir=/u,workdir=/w,uuid=on")
	f.Add(`lowerdir=\:\\::x\`)
	f.Fuzz(func(t *testing.T, opts string) {
		for _, l := range OverlayLayers(opts) {
			if l == "" && !strings.Contains(opts, "dir=") {
				t.Fatalf("empty layer from %q", opts)
			}
		}
	})
}
