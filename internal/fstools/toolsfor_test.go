package fstools

import (
	"strings"
	"testing"
)

func TestToolsForAndPackage(t *testing.T) {
	for _, tc := range []struct {
		fstype, tools, pkg string
		ext                bool
	}{
		{"ext4", "e2fsck resize2fs tune2fs", "e2fsprogs", true},
		{"ext2", "e2fsck resize2fs tune2fs", "e2fsprogs", true},
		{"xfs", "xfs_repair xfs_growfs xfs_admin", "xfsprogs", false},
		{"btrfs", "btrfs btrfstune", "btrfs-progs", false},
		{"vfat", "", "", false},
	} {
		tools := ToolsFor(tc.fstype)
		if got := strings.Join(tools, " "); got != tc.tools {
			t.Errorf("ToolsFor(%s) = %q, want %q", tc.fstype, got, tc.tools)
		}
		for _, tool := range tools {
			if got := Package(tool); got != tc.pkg {
				t.Errorf("Package(%s) = %q, want %q", tool, got, tc.pkg)
			}
		}
		if got := IsExt(tc.fstype); got != tc.ext {
			t.Errorf("IsExt(%s) = %v, want %v", tc.fstype, got, tc.ext)
		}
	}
	if got := Package("no-such-tool"); got != "" {
		t.Errorf("Package(no-such-tool) = %q, want \"\"", got)
	}
}
