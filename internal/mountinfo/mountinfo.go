// Package mountinfo parses /proc/PID/mountinfo completely (escapes,
// optional fields, super options), keeps the kernel's order, and answers
// the questions a root swap asks: which mount holds a path, and which
// mounts sit below a path, parents before children.
package mountinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one line of mountinfo (see proc(5)).
type Mount struct {
	ID, Parent   int
	Major, Minor uint32
	Root         string   // the directory of the filesystem mounted here (bind mounts)
	Point        string   // mount point, relative to the reading process's root
	Options      string   // per-mount options: "rw,relatime"
	Optional     []string // "shared:1", "master:2", "propagate_from:3", "unbindable"
	FSType       string
	Source       string
	SuperOptions string // per-superblock options
}

// Dev is the st_dev of files on this mount.
func (m Mount) Dev() uint64 { return unix.Mkdev(m.Major, m.Minor) }

// ReadOnly reports whether the mount itself is read-only.
func (m Mount) ReadOnly() bool { return hasOption(m.Options, "ro") }

// Shared reports whether the mount is in a shared peer group.
func (m Mount) Shared() bool { return m.PeerGroup() != 0 }

// PeerGroup is the N of "shared:N", or 0.
func (m Mount) PeerGroup() int { return m.optionalInt("shared:") }

// Master is the N of "master:N" (a slave mount's master peer group), or 0.
func (m Mount) Master() int { return m.optionalInt("master:") }

func (m Mount) optionalInt(prefix string) int {
	for _, o := range m.Optional {
		if v, ok := strings.CutPrefix(o, prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// String is the mount in the words an admin reads: "/dev/vda on / type ext4 (rw,relatime)".
func (m Mount) String() string {
	return fmt.Sprintf("%s on %s type %s (%s)", m.Source, m.Point, m.FSType, m.Options)
}

func hasOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// Table is a mount table in the kernel's order.
type Table []Mount

// Read reads procRoot/pid/mountinfo; pid is "self" or a number.
func Read(procRoot, pid string) (Table, error) {
	f, err := os.Open(filepath.Join(procRoot, pid, "mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return t, nil
}

// Parse reads a whole mountinfo file. A malformed line is an error that
// names the line: a mount table read half-way is worse than none.
func Parse(r io.Reader) (Table, error) {
	var t Table
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, err := ParseLine(string(line))
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		t = append(t, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return t, nil
}

// ParseLine parses one mountinfo line:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func ParseLine(line string) (Mount, error) {
	var m Mount
	f := strings.Fields(line)
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if len(f) < 6 || sep < 0 || len(f) < sep+3 {
		return m, fmt.Errorf("too few fields in %q", line)
	}
	var err error
	if m.ID, err = strconv.Atoi(f[0]); err != nil {
		return m, fmt.Errorf("mount id %q: %w", f[0], err)
	}
	if m.Parent, err = strconv.Atoi(f[1]); err != nil {
		return m, fmt.Errorf("parent id %q: %w", f[1], err)
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("device %q is not major:minor", f[2])
	}
	ma, err1 := strconv.ParseUint(maj, 10, 32)
	mi, err2 := strconv.ParseUint(min, 10, 32)
	if err1 != nil || err2 != nil {
		return m, fmt.Errorf("device %q is not major:minor", f[2])
	}
	m.Major, m.Minor = uint32(ma), uint32(mi)
	m.Root = Unescape(f[3])
	m.Point = Unescape(f[4])
	m.Options = f[5]
	if sep > 6 {
		m.Optional = f[6:sep]
	}
	m.FSType = Unescape(f[sep+1])
	m.Source = Unescape(f[sep+2])
	if len(f) > sep+3 {
		m.SuperOptions = f[sep+3]
	}
	return m, nil
}

// Unescape undoes the kernel's octal escapes (\040 space, \011 tab,
// \012 newline, \134 backslash) in mountinfo fields.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
