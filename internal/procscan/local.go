package procscan

import (
	"strings"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// localFS lists the filesystem types whose inodes can be stat'ed without
// any chance of blocking on something outside this machine: block
// device and memory filesystems and the kernel's own. Everything else
// (nfs, nfs4, cifs, smb3, ceph, 9p, glusterfs, every fuse.*, autofs
// which may trigger a mount, and types this list has never heard of) is
// treated as able to hang, and is never stat'ed: its files are
// identified by fdinfo's mnt_id and ino and by the maps line only.
var localFS = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true,
	"f2fs": true, "jfs": true, "reiserfs": true, "nilfs2": true, "bcachefs": true,
	"zfs": true, "vfat": true, "msdos": true, "exfat": true, "ntfs3": true,
	"hfsplus": true, "squashfs": true, "erofs": true, "cramfs": true,
	"iso9660": true, "udf": true, "overlay": true,
	"tmpfs": true, "ramfs": true, "devtmpfs": true, "hugetlbfs": true,
	"proc": true, "sysfs": true, "devpts": true, "mqueue": true,
	"cgroup": true, "cgroup2": true, "bpf": true, "tracefs": true,
	"debugfs": true, "securityfs": true, "pstore": true, "configfs": true,
	"efivarfs": true, "binfmt_misc": true, "fusectl": true, "nsfs": true,
	"rpc_pipefs": true,
}

// Local reports whether files on m may be stat'ed without risk of hanging.
func Local(m mountinfo.Mount) bool { return localFS[m.FSType] }

// pathLocal reports whether a path walk of p in the namespace of t can
// only cross local filesystems: every mount whose point is p or one of
// its parents must be local. A hidden (over-mounted) remote mount on the
// way counts too, since the path text alone cannot rule it out.
func pathLocal(t mountinfo.Table, p string) bool {
	if !strings.HasPrefix(p, "/") || len(t) == 0 {
		return false
	}
	for _, m := range t {
		if isUnder(p, m.Point) && !Local(m) {
			return false
		}
	}
	return true
}

// isUnder reports whether p is dir or below it (both absolute).
func isUnder(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir) && p[len(dir)] == '/'
}
