package procscan

import "strings"

// Mapping is one line of /proc/PID/maps that maps a file.
type Mapping struct {
	Start, End, Offset uint64
	Perms              string // "r-xp"
	Major, Minor       uint32 // device of the mapped file, from the line itself
	Inode              uint64
	Path               string // " (deleted)" removed when Deleted
	Deleted            bool
}

// DeletedSuffix is what the kernel appends to the name of an unlinked
// file in link text and maps lines.
const DeletedSuffix = " (deleted)"

// ParseMapsLine parses one maps line (without its newline). ok is false
// for malformed lines; anonymous mappings parse with Inode 0 and a Path
// that is empty or a pseudo name like "[heap]".
func ParseMapsLine(line []byte) (m Mapping, ok bool) {
	field := func() []byte {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		i := indexByte(line, ' ')
		if i < 0 {
			f := line
			line = nil
			return f
		}
		f := line[:i]
		line = line[i+1:]
		return f
	}
	rng, perms, off, dev, ino := field(), field(), field(), field(), field()
	dash := indexByte(rng, '-')
	colon := indexByte(dev, ':')
	if dash < 0 || colon < 0 || len(perms) != 4 {
		return Mapping{}, false
	}
	var ok1, ok2, ok3, ok4, ok5, ok6 bool
	m.Start, ok1 = parseUint(rng[:dash], 16)
	m.End, ok2 = parseUint(rng[dash+1:], 16)
	m.Offset, ok3 = parseUint(off, 16)
	major, ok4 := parseUint(dev[:colon], 16)
	minor, ok5 := parseUint(dev[colon+1:], 16)
	m.Inode, ok6 = parseUint(ino, 10)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || major > 1<<32-1 || minor > 1<<32-1 {
		return Mapping{}, false
	}
	m.Major, m.Minor = uint32(major), uint32(minor)
	m.Perms = permString(perms)
	for len(line) > 0 && line[0] == ' ' {
		line = line[1:]
	}
	path := string(line)
	if strings.Contains(path, `\012`) {
		// seq_path escapes only newlines in maps.
		path = strings.ReplaceAll(path, `\012`, "\n")
	}
	m.Path, m.Deleted = cutDeleted(path)
	return m, true
}

// permString avoids allocating for the common permission strings.
func permString(b []byte) string {
	switch string(b) {
	case "r--p":
		return "r--p"
	case "r-xp":
		return "r-xp"
	case "rw-p":
		return "rw-p"
	case "rw-s":
		return "rw-s"
	case "r--s":
		return "r--s"
	case "---p":
		return "---p"
	}
	return string(b)
}

// cutDeleted splits the kernel's " (deleted)" marker off a name. A name
// that really ends in " (deleted)" cannot be told apart here; the scanner
// checks such names against the filesystem when that is safe.
func cutDeleted(name string) (string, bool) {
	if strings.HasSuffix(name, DeletedSuffix) && len(name) > len(DeletedSuffix) {
		return name[:len(name)-len(DeletedSuffix)], true
	}
	return name, false
}
