// Package blockdev answers questions about block devices: what a path is
// (major:minor, sysfs name, size, sector sizes, read-only), how devices
// stack on each other (partitions, holders and slaves in sysfs), and where
// a device is mounted.
//
// Everything that can be answered from sysfs takes the sysfs root as a
// parameter, so tier-1 tests run against a fixture tree; only the sizes
// and the exclusive open need a real device node.
package blockdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Device is one block device as the kernel sees it.
type Device struct {
	// Path is the device node the caller named ("/dev/loop0"); empty when
	// the Device was looked up by number.
	Path string
	// Major and Minor identify the device (st_rdev of the node).
	Major, Minor uint32
	// Name is the sysfs name: loop0, sda2, dm-0, md127.
	Name string
	// Size is the size in bytes (BLKGETSIZE64 when the node could be
	// opened, else sysfs size × 512).
	Size int64
	// LogicalSector and PhysicalSector are the sector sizes in bytes.
	LogicalSector, PhysicalSector int
	// ReadOnly is the kernel's read-only flag of the device.
	ReadOnly bool
	// IsPartition is true for a partition of a whole disk (sda2).
	IsPartition bool
	// Parent is the sysfs name of the whole disk of a partition ("sda"
	// for sda2); empty for whole disks.
	Parent string
	// Holders are the devices built on this one (dm-0 over sda2);
	// Slaves are the devices this one is built on. Both are sysfs names.
	Holders, Slaves []string
}

// Dev is the device number, comparable with st_rdev and mountinfo.Mount.Dev.
func (d *Device) Dev() uint64 { return unix.Mkdev(d.Major, d.Minor) }

// String is "/dev/loop0 (loop0, 7:0)".
func (d *Device) String() string {
	if d.Path == "" {
		return fmt.Sprintf("%s (%d:%d)", d.Name, d.Major, d.Minor)
	}
	return fmt.Sprintf("%s (%s, %d:%d)", d.Path, d.Name, d.Major, d.Minor)
}

// Stat describes the block device at path. It fails with a clear error
// when path is not a block device ("not a block device: regular file").
// Size and sector sizes come from ioctls on a read-only descriptor when
// the node can be opened, the rest from sysRoot/dev/block/MAJ:MIN.
func Stat(sysRoot, path string) (*Device, error) {
	rdev, err := rdevOf(path)
	if err != nil {
		return nil, err
	}
	d, err := Lookup(sysRoot, rdev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.Path = path
	if f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		fd := int(f.Fd())
		if n, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64); err == nil {
			d.Size = int64(n)
		}
		if n, err := unix.IoctlGetInt(fd, unix.BLKSSZGET); err == nil && n > 0 {
			d.LogicalSector = n
		}
		if n, err := unix.IoctlGetInt(fd, unix.BLKPBSZGET); err == nil && n > 0 {
			d.PhysicalSector = n
		}
		if n, err := unix.IoctlGetInt(fd, unix.BLKROGET); err == nil {
			d.ReadOnly = n != 0
		}
		f.Close()
	}
	return d, nil
}

// Open is Stat under the name other code may look for.
func Open(sysRoot, path string) (*Device, error) { return Stat(sysRoot, path) }

// rdevOf is the st_rdev of a block device node, or an error saying what
// the path is instead.
func rdevOf(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("%s: not a block device: %s", path, fileKind(st.Mode))
	}
	return st.Rdev, nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFLNK:
		return "symbolic link"
	}
	return fmt.Sprintf("file mode %#o", mode&unix.S_IFMT)
}

// Lookup describes device number dev from sysfs alone (Path stays empty,
// Size is sysfs size × 512).
func Lookup(sysRoot string, dev uint64) (*Device, error) {
	maj, min := unix.Major(dev), unix.Minor(dev)
	link := filepath.Join(sysRoot, "dev", "block", fmt.Sprintf("%d:%d", maj, min))
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return nil, fmt.Errorf("block device %d:%d not in sysfs: %w", maj, min, err)
	}
	d, err := fromSysDir(dir)
	if err != nil {
		return nil, err
	}
	d.Major, d.Minor = maj, min
	return d, nil
}

// LookupName describes the device with sysfs name (loop0, sda2, dm-0).
func LookupName(sysRoot, name string) (*Device, error) {
	dir, err := sysDirOfName(sysRoot, name)
	if err != nil {
		return nil, err
	}
	d, err := fromSysDir(dir)
	if err != nil {
		return nil, err
	}
	majMin, err := readString(filepath.Join(dir, "dev"))
	if err != nil {
		return nil, err
	}
	if d.Major, d.Minor, err = parseMajMin(majMin); err != nil {
		return nil, fmt.Errorf("%s/dev: %w", dir, err)
	}
	return d, nil
}

func sysDirOfName(sysRoot, name string) (string, error) {
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return "", fmt.Errorf("bad block device name %q", name)
	}
	dir, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "class", "block", name))
	if err != nil {
		return "", fmt.Errorf("block device %s not in sysfs: %w", name, err)
	}
	return dir, nil
}

func parseMajMin(s string) (uint32, uint32, error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("not MAJ:MIN: %q", s)
	}
	maj, err1 := strconv.ParseUint(a, 10, 32)
	min, err2 := strconv.ParseUint(b, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("not MAJ:MIN: %q", s)
	}
	return uint32(maj), uint32(min), nil
}

// fromSysDir reads a device directory of sysfs (the target of
// /sys/dev/block/MAJ:MIN). Partitions have a "partition" file and live
// inside their disk's directory; the queue/ directory is the disk's.
func fromSysDir(dir string) (*Device, error) {
	d := &Device{Name: filepath.Base(dir)}
	sectors, err := readInt(filepath.Join(dir, "size"))
	if err != nil {
		return nil, err
	}
	d.Size = sectors * 512 // sysfs counts 512-byte units whatever the sector size
	queue := filepath.Join(dir, "queue")
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		d.IsPartition = true
		d.Parent = filepath.Base(filepath.Dir(dir))
		queue = filepath.Join(filepath.Dir(dir), "queue")
	}
	d.LogicalSector = int(readIntOr(filepath.Join(queue, "logical_block_size"), 512))
	d.PhysicalSector = int(readIntOr(filepath.Join(queue, "physical_block_size"), int64(d.LogicalSector)))
	d.ReadOnly = readIntOr(filepath.Join(dir, "ro"), 0) != 0
	d.Holders = readNames(filepath.Join(dir, "holders"))
	d.Slaves = readNames(filepath.Join(dir, "slaves"))
	return d, nil
}

// partitionsOf lists the partitions of a whole disk: the subdirectories
// of its sysfs directory that have a "partition" file.
func partitionsOf(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var parts []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "partition")); err == nil {
			parts = append(parts, e.Name())
		}
	}
	return parts
}

func readNames(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func readString(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func readInt(p string) (int64, error) {
	s, err := readString(p)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p, err)
	}
	return n, nil
}

func readIntOr(p string, def int64) int64 {
	n, err := readInt(p)
	if err != nil {
		return def
	}
	return n
}
