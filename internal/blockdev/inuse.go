package blockdev

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"golang.org/x/sys/unix"
)

// InUse lists why n, or what is stored on it (its partitions, the
// devices built on it, the loop devices on its file, and theirs), is in
// use, which no --force may override: mounted in any mount namespace, an
// active swap area, held by device-mapper (a physical volume of a live
// volume group) or md (an array member), or the device of /boot or
// /boot/efi in /etc/fstab. self false leaves out n's own mounts in the
// caller's namespace, and then its mounts anywhere, which are of the
// same superblock (resize and relabel work on those). Each reason
// names the device.
func (s *Stack) InUse(n Node, self bool) ([]string, error) {
	start := s.key(n)
	if start == "" {
		return nil, nil
	}
	// What is stored on n: everything reached going up.
	seen := map[string]bool{start: true}
	order := []string{start}
	for i := 0; i < len(order); i++ {
		for _, e := range s.up(order[i]) {
			if !seen[e.to] {
				seen[e.to] = true
				order = append(order, e.to)
			}
		}
	}
	if s.ProcRoot == "" {
		s.ProcRoot = "/proc"
	}
	var nss []Namespace
	var why []string
	for _, k := range order {
		dev, ok := s.devOf(k)
		if !ok {
			continue // a file, or gone from sysfs
		}
		if nss == nil {
			var err error
			if nss, err = Namespaces(s.ProcRoot); err != nil {
				return nil, err
			}
		}
		// Not self: n's mounts here are the caller's business, and so
		// are other namespaces' copies of them (the same superblock).
		mine := !self && k == start && len(MountedAt(nss[0].Mounts, dev)) > 0
		for _, ns := range nss {
			for _, m := range MountedAt(ns.Mounts, dev) {
				if mine {
					break
				}
				w := "/dev/" + k + " is mounted at " + m.Point
				if !ns.Own {
					w += " (in the mount namespace of " + ns.Who + ")"
				}
				why = append(why, w)
				break // one mount a namespace says enough
			}
		}
		for _, h := range s.holders(k) {
			why = append(why, "/dev/"+k+" "+s.heldBy(h))
		}
	}
	swaps, err := ReadSwaps(s.ProcRoot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, a := range swaps {
		var st unix.Stat_t
		if unix.Stat(s.Root+a.Path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			if k := fileKey(st.Dev, st.Ino); seen[k] {
				why = append(why, s.name(k)+" is an active swap file ("+a.Path+" in /proc/swaps)")
			}
			continue
		}
		if k := s.linkName(a.Path); seen[k] {
			why = append(why, "/dev/"+k+" is an active swap area ("+a.Path+" in /proc/swaps)")
		}
	}
	for _, b := range s.bootDevices() {
		if seen[b[0]] {
			why = append(why, "/dev/"+b[0]+" holds "+b[1]+" (/etc/fstab: "+b[2]+")")
		}
	}
	return why, nil
}

// devOf is the device number of a sysfs name.
func (s *Stack) devOf(name string) (uint64, bool) {
	if strings.HasPrefix(name, "file:") {
		return 0, false
	}
	dir, err := sysDirOfName(s.SysRoot, name)
	if err != nil {
		return 0, false
	}
	v, err := readString(filepath.Join(dir, "dev"))
	if err != nil {
		return 0, false
	}
	maj, min, err := parseMajMin(v)
	return unix.Mkdev(maj, min), err == nil
}

// heldBy says what holder h makes of the device under it.
func (s *Stack) heldBy(h string) string {
	dir := filepath.Join(s.SysRoot, "class", "block", h)
	if state, err := readString(filepath.Join(dir, "md", "array_state")); err == nil {
		return "is a member of the md array " + h + " (" + state + "; mdadm --stop /dev/" + h + " releases it)"
	}
	name, _ := readString(filepath.Join(dir, "dm", "name"))
	if uuid, _ := readString(filepath.Join(dir, "dm", "uuid")); strings.HasPrefix(uuid, "LVM-") {
		return "is a physical volume of an active LVM volume group (" + h + ", " + name + ", is on it; vgchange -an releases it)"
	}
	if name != "" {
		return "is held by the device-mapper device " + h + " (" + name + ")"
	}
	return "is held by " + h
}

// linkName is the sysfs name of the device node a path names, through
// udev's links (/dev/mapper/NAME, /dev/disk/by-uuid/U): its base name.
func (s *Stack) linkName(p string) string {
	if real, err := filepath.EvalSymlinks(s.Root + p); err == nil {
		p = real
	}
	return filepath.Base(p)
}

// bootDevices are /etc/fstab's /boot and /boot/efi lines whose device
// resolves: sysfs name, mount point, the line's device field.
func (s *Stack) bootDevices() [][3]string {
	f, err := os.Open(s.Root + "/etc/fstab")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][3]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 2 || strings.HasPrefix(fl[0], "#") {
			continue
		}
		point := mountinfo.Unescape(fl[1])
		if point != "/boot" && point != "/boot/efi" {
			continue
		}
		spec := mountinfo.Unescape(fl[0])
		p := spec
		for _, t := range [][2]string{{"UUID=", "by-uuid"}, {"LABEL=", "by-label"}, {"PARTUUID=", "by-partuuid"}, {"PARTLABEL=", "by-partlabel"}} {
			if v, ok := strings.CutPrefix(spec, t[0]); ok {
				p = "/dev/disk/" + t[1] + "/" + v
			}
		}
		if !strings.HasPrefix(p, "/dev/") {
			continue
		}
		if _, err := os.Stat(s.Root + p); err == nil {
			out = append(out, [3]string{s.linkName(p), point, spec})
		}
	}
	return out
}

// Namespace is the mount table of one mount namespace.
type Namespace struct {
	Own    bool   // the calling thread's
	Who    string // a process in it: "pid 42, sleep"
	Mounts mountinfo.Table
}

// Namespaces reads the mount table of every mount namespace under
// procRoot, the caller's first, then one task of each other namespace
// (deduplicated by the namespace's inode), in PID order: a service's
// private namespace (systemd's PrivateTmp=) or a container may hold a
// mount nobody else sees.
func Namespaces(procRoot string) ([]Namespace, error) {
	own, err := ReadMounts(procRoot)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	out := []Namespace{{Own: true, Mounts: own}}
	seen := map[string]bool{}
	for _, self := range []string{"thread-self", "self"} {
		if ns, err := os.Readlink(filepath.Join(procRoot, self, "ns", "mnt")); err == nil {
			seen[ns] = true
			break
		}
	}
	tasks, _ := filepath.Glob(filepath.Join(procRoot, "[0-9]*", "task", "[0-9]*"))
	sort.Slice(tasks, func(i, j int) bool { return taskLess(tasks[i], tasks[j]) })
	for _, task := range tasks {
		ns, err := os.Readlink(filepath.Join(task, "ns", "mnt"))
		if err != nil || seen[ns] {
			continue // gone, a kernel thread, or a namespace read already
		}
		seen[ns] = true
		f, err := os.Open(filepath.Join(task, "mountinfo"))
		if err != nil {
			continue
		}
		t, err := mountinfo.Parse(f)
		f.Close()
		if err != nil {
			continue
		}
		comm, _ := readString(filepath.Join(task, "comm"))
		pid := filepath.Base(filepath.Dir(filepath.Dir(task)))
		out = append(out, Namespace{Who: "pid " + pid + ", " + comm, Mounts: t})
	}
	return out, nil
}

// taskLess orders /proc/PID/task/TID paths by number.
func taskLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// SwapArea is one line of /proc/swaps.
type SwapArea struct {
	Path     string `json:"path"` // as the reading process's root names it: /swap.img
	Type     string `json:"type"` // "file" or "partition"
	Size     int64  `json:"size"` // bytes
	Used     int64  `json:"used"` // bytes swapped out to it now
	Priority int    `json:"priority"`
}

// ParseSwaps reads /proc/swaps: a header line, then
//
//	/swap.img                               file		2097148		0		-2
//
// sizes in KiB; the kernel escapes space, tab, newline and backslash in
// the path as octal (\040).
func ParseSwaps(r io.Reader) ([]SwapArea, error) {
	var out []SwapArea
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || (n == 1 && f[0] == "Filename") {
			continue
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("/proc/swaps line %d: %d fields, want 5: %q", n, len(f), sc.Text())
		}
		size, err1 := strconv.ParseInt(f[2], 10, 64)
		used, err2 := strconv.ParseInt(f[3], 10, 64)
		prio, err3 := strconv.Atoi(f[4])
		if err := errors.Join(err1, err2, err3); err != nil || size < 0 || used < 0 || size > 1<<53 || used > 1<<53 {
			return nil, fmt.Errorf("/proc/swaps line %d: bad numbers in %q: %v", n, sc.Text(), err)
		}
		out = append(out, SwapArea{Path: mountinfo.Unescape(f[0]), Type: f[1], Size: size << 10, Used: used << 10, Priority: prio})
	}
	return out, sc.Err()
}

// ReadSwaps reads procRoot/swaps.
func ReadSwaps(procRoot string) ([]SwapArea, error) {
	f, err := os.Open(filepath.Join(procRoot, "swaps"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseSwaps(f)
}
