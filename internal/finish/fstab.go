package finish

import (
	"strings"

	"github.com/rootswap/rootswap/internal/mountinfo"
)

// Fstab is /etc/fstab kept byte for byte: lines are only ever changed
// field by field, so comments, blank lines, spacing and the fields
// rootswap does not touch come out exactly as they went in.
type Fstab struct {
	lines   []string // each with its own "\n", the last one maybe without
	Entries []Entry
}

// Entry is one mount line of fstab. The strings are unescaped (\040 is
// a space); fields missing from a short line are empty.
type Entry struct {
	Line                                  int // index into the file's lines
	Spec, File, VfsType, Opts, Freq, Pass string

	span [][2]int // byte offsets of each field within its line
}

// ParseFstab splits data into lines and fields. It never fails: a line
// that is not an entry (fewer than two fields) is kept as it is, the way
// a comment is.
func ParseFstab(data []byte) *Fstab {
	f := &Fstab{}
	s := string(data)
	for len(s) > 0 {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			f.lines = append(f.lines, s)
			break
		}
		f.lines = append(f.lines, s[:i+1])
		s = s[i+1:]
	}
	for n, line := range f.lines {
		if e, ok := parseEntry(line); ok {
			e.Line = n
			f.Entries = append(f.Entries, e)
		}
	}
	return f
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func parseEntry(line string) (Entry, bool) {
	body := strings.TrimRight(line, "\n")
	var span [][2]int
	for i := 0; i < len(body); {
		for i < len(body) && isBlank(body[i]) {
			i++
		}
		if i == len(body) {
			break
		}
		if len(span) == 0 && body[i] == '#' {
			return Entry{}, false
		}
		start := i
		for i < len(body) && !isBlank(body[i]) {
			i++
		}
		span = append(span, [2]int{start, i})
	}
	if len(span) < 2 {
		return Entry{}, false
	}
	field := func(k int) string {
		if k >= len(span) {
			return ""
		}
		return mountinfo.Unescape(body[span[k][0]:span[k][1]]) // fstab and mountinfo escape alike
	}
	return Entry{
		Spec: field(0), File: field(1), VfsType: field(2), Opts: field(3), Freq: field(4), Pass: field(5),
		span: span,
	}, true
}

// Bytes is the file as it stands now.
func (f *Fstab) Bytes() []byte { return []byte(strings.Join(f.lines, "")) }

// Root returns the entries that mount "/" (normally one).
func (f *Fstab) Root() []Entry { return f.Mounting("/") }

// Mounting returns the entries whose mount point is dir.
func (f *Fstab) Mounting(dir string) []Entry {
	var out []Entry
	for _, e := range f.Entries {
		if e.File == dir {
			out = append(out, e)
		}
	}
	return out
}

// Field numbers for SetField.
const (
	FieldSpec    = 0
	FieldVfsType = 2
	FieldOpts    = 3
)

// SetField replaces field k of entry e with value (escaped as fstab
// wants). When the field is followed by several spaces (a file aligned in
// columns), they grow or shrink so that the next column starts where it
// did, as long as one space is left; a single space or tabs are kept as
// they are. The entries of f are parsed anew.
func (f *Fstab) SetField(e Entry, k int, value string) {
	if k >= len(e.span) {
		return
	}
	line := f.lines[e.Line]
	start, end := e.span[k][0], e.span[k][1]
	esc := escapeFstab(value)
	// The separator after the field: up to the next field or the end.
	sepEnd := end
	for sepEnd < len(line) && isBlank(line[sepEnd]) {
		sepEnd++
	}
	sep := line[end:sepEnd]
	if k+1 < len(e.span) && len(sep) > 1 && strings.Trim(sep, " ") == "" {
		width := len(sep) - (len(esc) - (end - start))
		sep = strings.Repeat(" ", max(1, width))
	}
	f.lines[e.Line] = line[:start] + esc + sep + line[sepEnd:]
	if ne, ok := parseEntry(f.lines[e.Line]); ok {
		ne.Line = e.Line
		for i := range f.Entries {
			if f.Entries[i].Line == e.Line {
				f.Entries[i] = ne
			}
		}
	}
}

// escapeFstab writes the characters that would split or end a field as
// octal escapes.
func escapeFstab(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case ' ', '\t', '\n', '\r', '\\', '#':
			if c == '#' && i > 0 {
				b.WriteByte(c)
				continue
			}
			b.WriteString(`\` + string('0'+c>>6) + string('0'+c>>3&7) + string('0'+c&7))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// splitTag splits "LABEL=root" into LABEL and root, taking the quotes
// off a quoted value (LABEL="my root"). A device path has no tag.
func splitTag(spec string) (tag, value string) {
	t, v, ok := strings.Cut(spec, "=")
	if !ok || strings.HasPrefix(spec, "/") {
		return "", spec
	}
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		v = v[1 : len(v)-1]
	}
	return strings.ToUpper(t), v
}
