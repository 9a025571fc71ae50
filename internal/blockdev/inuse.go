package blockdev

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	order := []string{start} // a handful: a list is enough
	for i := 0; i < len(order); i++ {
		for _, e := range s.edges(order[i], true) {
			if !contains(order, e.to) {
				order = append(order, e.to)
			}
		}
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
		if self || k != start || firstMount(nss[0].Mounts, dev) == "" {
			for i := range nss {
				// One mount a namespace says enough.
				if p := firstMount(nss[i].Mounts, dev); p != "" {
					why = append(why, "/dev/"+k+" is mounted at "+p+nss[i].Who)
				}
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
		k := "/dev/" + s.linkName(a.Path)
		if unix.Stat(s.Root+a.Path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			k = fileKey(st.Dev, st.Ino) // a swap file
		}
		if contains(order, strings.TrimPrefix(k, "/dev/")) {
			why = append(why, s.name(k)+" is an active swap area")
		}
	}
	for _, b := range s.bootDevices() {
		if contains(order, b[0]) {
			why = append(why, "/dev/"+b[0]+" holds "+b[1])
		}
	}
	return why, nil
}

// firstMount is the mount point of dev's first mount in t (MountedAt), or "".
func firstMount(t mountinfo.Table, dev uint64) string {
	for i := range t {
		m := &t[i]
		if m.Dev() == dev || (m.Major == 0 && sourceIs(m.Source, dev)) {
			return m.Point
		}
	}
	return ""
}

// CheckWrite refuses writing to the files or devices to while reading
// from (may be ""): one that overlaps from (a file yet to be created: its
// directory's filesystem), or the first, to itself, in use.
func (s *Stack) CheckWrite(from string, to ...string) error {
	in, inErr := NodeOf(from)
	for i, p := range to {
		n, err := NodeOf(p)
		exists := err == nil
		if errors.Is(err, fs.ErrNotExist) {
			var st unix.Stat_t
			dir := filepath.Dir(p)
			if unix.Stat(dir, &st) != nil {
				continue
			}
			n, err = Node{Path: dir, Dev: st.Dev, Ino: st.Ino}, nil
		}
		if err != nil || p == "" {
			continue // a character device, a pipe
		}
		if inErr == nil {
			if rel, why := s.Overlap(in, n); rel {
				return fmt.Errorf("%s: it overlaps the input %s: %s", p, from, why)
			}
		}
		if i > 0 || !exists {
			continue
		}
		busy, err := s.InUse(n, true)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(busy) > 0 {
			return fmt.Errorf("%s: %s", p, strings.Join(busy, "; "))
		}
	}
	return nil
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
	if _, err := os.Stat(filepath.Join(dir, "md")); err == nil {
		return "is a member of the active md array " + h
	}
	name, _ := readString(filepath.Join(dir, "dm", "name"))
	if uuid, _ := readString(filepath.Join(dir, "dm", "uuid")); strings.HasPrefix(uuid, "LVM-") {
		return "is a physical volume of an active LVM volume group (" + name + " is on it)"
	}
	return "is held by " + h + " " + name
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
// resolves: its sysfs name, and "/boot (/etc/fstab: SPEC)".
func (s *Stack) bootDevices() [][2]string {
	b, _ := os.ReadFile(s.Root + "/etc/fstab")
	var out [][2]string
	for _, line := range strings.Split(string(b), "\n") {
		fl := strings.Fields(line)
		if len(fl) < 2 || fl[1] != "/boot" && fl[1] != "/boot/efi" || fl[0][0] == '#' {
			continue
		}
		p := fl[0]
		if k, v, ok := strings.Cut(p, "="); ok {
			p = "/dev/disk/by-" + strings.ToLower(k) + "/" + v // UUID=, LABEL=, PARTUUID=, PARTLABEL=
		}
		if _, err := os.Stat(s.Root + p); err == nil && strings.HasPrefix(p, "/dev/") {
			out = append(out, [2]string{s.linkName(p), fl[1] + " (/etc/fstab: " + fl[0] + ")"})
		}
	}
	return out
}

// Namespace is the mount table of one mount namespace.
type Namespace struct {
	Own    bool   // the calling thread's
	Who    string // " (in the mount namespace of pid 42, sleep)"; "" for the caller's
	Mounts mountinfo.Table
}

// Namespaces reads the mount table of every mount namespace under
// procRoot, the caller's first, then one task of each other namespace
// (deduplicated by the namespace's inode): a service's
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
	tasks, _ := filepath.Glob(filepath.Join(procRoot, "[0-9]*", "task", "[0-9]*")) // sorted: the same every time
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
		out = append(out, Namespace{Who: " (in the mount namespace of pid " + pid + ", " + comm + ")", Mounts: t})
	}
	return out, nil
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
