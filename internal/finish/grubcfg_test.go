package finish

import (
	"reflect"
	"strings"
	"testing"
)

func TestKernelLines(t *testing.T) {
	cfg := `set root='hd0,msdos1'
# linux /vmlinuz-commented root=/dev/sda9
menuentry 'Debian' {
	linux	/vmlinuz-6.1.0-18-amd64 root=UUID=0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b ro  quiet
	linux16 /vmlinuz-old root=/dev/sda2 ro root=/dev/mapper/sys-root
	linuxefi "/vmlinuz with space" 'root=LABEL=my root' ro
	linux /vmlinuz-noroot ro single # root=/dev/sdz
	kernel /boot/vmlinuz root=/dev/hda1
	initrd /initrd.img root=/dev/nope
	echo 'linux /vmlinuz root=/dev/echo'
}
`
	want := []KernelLine{
		{Line: 4, Kernel: "/vmlinuz-6.1.0-18-amd64", Root: "UUID=0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b"},
		{Line: 5, Kernel: "/vmlinuz-old", Root: "/dev/mapper/sys-root"},
		{Line: 6, Kernel: "/vmlinuz with space", Root: "LABEL=my root"},
		{Line: 7, Kernel: "/vmlinuz-noroot", Root: ""},
		{Line: 8, Kernel: "/boot/vmlinuz", Root: "/dev/hda1"},
	}
	if got := KernelLines([]byte(cfg)); !reflect.DeepEqual(got, want) {
		t.Errorf("KernelLines:\n got %+v\nwant %+v", got, want)
	}
}

func FuzzKernelLines(f *testing.F) {
	f.Add([]byte("linux /vmlinuz root=UUID=x ro\n"))
	f.Add([]byte("\tlinux\t'/a b' \"root=LABEL=a\\\"b\" # c\n"))
	f.Add([]byte(grubCfgFor("root=/dev/mapper/sys-root")))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := KernelLines(data)
		n := strings.Count(string(data), "\n") + 1
		for _, l := range lines {
			if l.Line < 1 || l.Line > n {
				t.Fatalf("line number %d outside 1..%d", l.Line, n)
			}
			if strings.ContainsRune(l.Kernel, '\n') || strings.ContainsRune(l.Root, '\n') {
				t.Fatalf("a word spans lines: %+v", l)
			}
		}
	})
}
