package rescue

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func fsCommands() map[string]command {
	return map[string]command{
		"ls": {usage: `usage: ls [-ladn] [FILE]...
  -l  long listing    -a  include names starting with .
  -d  directories themselves, not their contents    -n  numeric uid/gid
`, run: ls},
		"cat": {usage: "usage: cat [FILE]...   (no FILE or - reads stdin)\n", run: cat},
		"cp": {usage: `usage: cp [-rapx] SOURCE... DEST
  -r  copy directories recursively (symlinks stay symlinks)
  -p  keep mode, owner and times    -a  -r and -p
  -x  stay on the source's filesystem
`, run: cp},
		"mv":    {usage: "usage: mv SOURCE... DEST   (copies and removes across filesystems)\n", run: mv},
		"rm":    {usage: "usage: rm [-rf] FILE...\n  -r  recursive; never crosses into another mounted filesystem\n  -f  ignore missing files\n", run: rm},
		"mkdir": {usage: "usage: mkdir [-p] DIR...\n  -p  make parents, no error if it exists\n", run: mkdir},
		"rmdir": {usage: "usage: rmdir DIR...\n", run: rmdir},
		"ln":    {usage: "usage: ln [-sf] TARGET [LINK]   or   ln [-sf] TARGET... DIR\n  -s  symbolic    -f  replace LINK\n", run: ln},
		"stat":  {usage: "usage: stat [-L] [-c FORMAT] FILE...\n  -L  follow links    -c  %n name %s size %a octal mode %A mode %F type %u %g ids %U %G names %h links %i inode %d dev %Y mtime\n", run: stat},
		"touch": {usage: "usage: touch FILE...   (creates it or sets its times to now)\n", run: touch},
	}
}

// ---- ls ----

func ls(c *call) error {
	o, operands, err := getopt(c.args, "ladn1", "", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		operands = []string{"."}
	}
	l := &lister{c: c, long: o.has('l'), all: o.has('a'), numeric: o.has('n'), loc: location(c), now: time.Now()}
	if l.numeric {
		l.long = true
	}
	type entry struct {
		name string
		st   unix.Stat_t
	}
	var files, dirs []entry
	for _, op := range operands {
		var st unix.Stat_t
		p := c.path(op)
		err := unix.Lstat(p, &st)
		if err == nil && !l.long && !o.has('d') && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			// A link named on the command line is followed unless -l/-d.
			var target unix.Stat_t
			if unix.Stat(p, &target) == nil {
				st = target
			}
		}
		if err != nil {
			c.fail(op, err)
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR && !o.has('d') {
			dirs = append(dirs, entry{op, st})
		} else {
			files = append(files, entry{op, st})
		}
	}
	byName := func(list []entry) {
		sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	}
	byName(files)
	byName(dirs)
	var rows []lsRow
	for _, f := range files {
		rows = append(rows, l.row(f.name, c.path(f.name), &f.st))
	}
	l.print(rows)
	for i, d := range dirs {
		if len(files) > 0 || i > 0 {
			fmt.Fprintln(c.stdout)
		}
		if len(operands) > 1 {
			fmt.Fprintf(c.stdout, "%s:\n", d.name)
		}
		l.dir(d.name)
	}
	return nil
}

type lister struct {
	c                  *call
	long, all, numeric bool
	loc                *time.Location
	now                time.Time
	users, groups      map[uint32]string
}

type lsRow struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	mode, links, user, group, size, date, name string
	blocks                                     int64
}

func (l *lister) dir(name string) {
	p := l.c.path(name)
	entries, err := os.ReadDir(p)
	if err != nil {
		l.c.fail(name, err)
		return
	}
	names := []string{}
	if l.all {
		names = append(names, ".", "..")
	}
	for _, e := range entries {
		if l.all || !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	var rows []lsRow
	var total int64
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(p, n), &st); err != nil {
			l.c.fail(filepath.Join(name, n), err)
			continue
		}
		r := l.row(n, filepath.Join(p, n), &st)
		total += r.blocks
		rows = append(rows, r)
	}
	if l.long {
		fmt.Fprintf(l.c.stdout, "total %d\n", total/2) // 512-byte blocks to KiB
	}
	l.print(rows)
}

func (l *lister) row(name, full string, st *unix.Stat_t) lsRow {
	r := lsRow{name: name, blocks: st.Blocks}
	if !l.long {
		return r
	}
	r.mode = modeString(st.Mode)
	r.links = strconv.FormatUint(uint64(st.Nlink), 10)
	r.user = l.owner(st.Uid, false)
	r.group = l.owner(st.Gid, true)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR, unix.S_IFBLK:
		r.size = fmt.Sprintf("%d, %d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	default:
		r.size = strconv.FormatInt(st.Size, 10)
	}
	mtime := time.Unix(st.Mtim.Unix()).In(l.loc)
	if age := l.now.Sub(mtime); age < 0 || age > 182*24*time.Hour {
		r.date = mtime.Format("Jan _2  2006")
	} else {
		r.date = mtime.Format("Jan _2 15:04")
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if target, err := os.Readlink(full); err == nil {
			r.name += " -> " + target
		}
	}
	return r
}

func (l *lister) print(rows []lsRow) {
	if !l.long {
		for _, r := range rows {
			fmt.Fprintln(l.c.stdout, r.name)
		}
		return
	}
	var wl, wu, wg, ws int
	for _, r := range rows {
		wl, wu, wg, ws = max(wl, len(r.links)), max(wu, len(r.user)), max(wg, len(r.group)), max(ws, len(r.size))
	}
	for _, r := range rows {
		fmt.Fprintf(l.c.stdout, "%s %*s %-*s %-*s %*s %s %s\n", r.mode, wl, r.links, wu, r.user, wg, r.group, ws, r.size, r.date, r.name)
	}
}

// owner names a uid or gid from /etc/passwd or /etc/group of the current
// root, or gives the number when there is no such file (a bare rescue root).
func (l *lister) owner(id uint32, group bool) string {
	if l.numeric {
		return strconv.FormatUint(uint64(id), 10)
	}
	m := &l.users
	file := "/etc/passwd"
	if group {
		m, file = &l.groups, "/etc/group"
	}
	if *m == nil {
		*m = readIDNames(file)
	}
	if n, ok := (*m)[id]; ok {
		return n
	}
	return strconv.FormatUint(uint64(id), 10)
}

// readIDNames reads name:x:id: lines (passwd and group share the layout).
func readIDNames(file string) map[uint32]string {
	m := map[uint32]string{}
	data, err := os.ReadFile(file)
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if id, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			if _, dup := m[uint32(id)]; !dup {
				m[uint32(id)] = f[0]
			}
		}
	}
	return m
}

// location is $TZ of the shell when it names a zone, else local time.
func location(c *call) *time.Location {
	if tz := c.getenv("TZ"); tz != "" {
		if loc, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err == nil {
			return loc
		}
	}
	return time.Local
}

// modeString spells st_mode the way ls -l does: drwxr-sr-t.
func modeString(mode uint32) string {
	b := []byte("?rwxrwxrwx")
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		b[0] = '-'
	case unix.S_IFDIR:
		b[0] = 'd'
	case unix.S_IFLNK:
		b[0] = 'l'
	case unix.S_IFCHR:
		b[0] = 'c'
	case unix.S_IFBLK:
		b[0] = 'b'
	case unix.S_IFIFO:
		b[0] = 'p'
	case unix.S_IFSOCK:
		b[0] = 's'
	}
	for i := 0; i < 9; i++ {
		if mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, pos int, set, unsetExec byte) {
		if mode&bit != 0 {
			if b[pos] == 'x' {
				b[pos] = set
			} else {
				b[pos] = unsetExec
			}
		}
	}
	special(unix.S_ISUID, 3, 's', 'S')
	special(unix.S_ISGID, 6, 's', 'S')
	special(unix.S_ISVTX, 9, 't', 'T')
	return string(b)
}

// ---- cat ----

func cat(c *call) error {
	_, operands, err := getopt(c.args, "", "", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		operands = []string{"-"}
	}
	for _, op := range operands {
		if op == "-" {
			if _, err := io.Copy(c.stdout, c.stdin); err != nil {
				c.fail("stdin", err)
			}
			continue
		}
		f, err := os.Open(c.path(op))
		if err != nil {
			c.fail(op, err)
			continue
		}
		_, err = io.Copy(c.stdout, f)
		f.Close()
		if err != nil {
			c.fail(op, err)
		}
	}
	return nil
}

// ---- cp / mv ----

type copier struct {
	c         *call
	recursive bool // copy directories; links are copied as links
	preserve  bool // mode bits beyond umask, owner, times
	oneFS     bool
	srcDev    uint64
}

func cp(c *call) error {
	o, operands, err := getopt(c.args, "rRapx", "", false)
	if err != nil {
		return err
	}
	cp := &copier{c: c, recursive: o.has('r') || o.has('R') || o.has('a'), preserve: o.has('p') || o.has('a'), oneFS: o.has('x')}
	return eachToDest(c, operands, func(src, dst string) error {
		return cp.copyTop(src, dst)
	})
}

func mv(c *call) error {
	_, operands, err := getopt(c.args, "f", "", false)
	if err != nil {
		return err
	}
	return eachToDest(c, operands, func(src, dst string) error {
		err := os.Rename(c.path(src), c.path(dst))
		if !errors.Is(err, unix.EXDEV) {
			return err
		}
		// Another filesystem: copy everything, then remove the source.
		cp := &copier{c: c, recursive: true, preserve: true}
		if err := cp.copyTop(src, dst); err != nil {
			return err
		}
		if c.failed {
			return nil // keep the source when part of the copy failed
		}
		return os.RemoveAll(c.path(src))
	})
}

// eachToDest applies op to SOURCE... DEST the way cp and mv read them:
// into DEST when it is a directory (required for several sources), else
// onto DEST.
func eachToDest(c *call, operands []string, op func(src, dst string) error) error {
	if len(operands) < 2 {
		return usagef("need SOURCE and DEST")
	}
	srcs, dest := operands[:len(operands)-1], operands[len(operands)-1]
	fi, err := os.Stat(c.path(dest))
	destDir := err == nil && fi.IsDir()
	if len(srcs) > 1 && !destDir {
		if err != nil {
			return &os.PathError{Op: "stat", Path: dest, Err: fmt.Errorf("%s (with several sources DEST must be a directory)", errText(err))}
		}
		return fmt.Errorf("%s: not a directory (with several sources DEST must be one)", dest)
	}
	for _, src := range srcs {
		dst := dest
		if destDir {
			dst = filepath.Join(dest, filepath.Base(filepath.Clean(src)))
		}
		if err := op(src, dst); err != nil {
			c.fail(src, err)
		}
	}
	return nil
}

func (cp *copier) copyTop(src, dst string) error {
	absSrc, absDst := filepath.Clean(cp.c.path(src)), filepath.Clean(cp.c.path(dst))
	if absSrc == absDst {
		return fmt.Errorf("'%s' and '%s' are the same file", src, dst)
	}
	if strings.HasPrefix(absDst, absSrc+"/") || absSrc == "/" {
		return fmt.Errorf("cannot copy a directory into itself ('%s')", dst)
	}
	var st unix.Stat_t
	if err := unix.Lstat(absSrc, &st); err != nil {
		return err
	}
	cp.srcDev = st.Dev
	return cp.copy(src, absSrc, absDst, true)
}

// copy copies one name; shown is the source as the user wrote it, for
// messages about a failure deep in a tree.
func (cp *copier) copy(shown, src, dst string, top bool) error {
	var st unix.Stat_t
	var err error
	if cp.recursive {
		err = unix.Lstat(src, &st)
	} else {
		err = unix.Stat(src, &st)
	}
	if err != nil {
		return &os.PathError{Op: "stat", Path: shown, Err: err}
	}
	perm := os.FileMode(st.Mode & 0o7777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if !cp.recursive {
			return fmt.Errorf("-r not specified; omitting directory")
		}
		if cp.oneFS && !top && st.Dev != cp.srcDev {
			return nil // a mount point: leave the (empty) directory out, like cp -x
		}
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			child := filepath.Join(shown, e.Name())
			if err := cp.copy(child, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), false); err != nil {
				cp.c.fail(child, err)
			}
		}
		if err := os.Chmod(dst, perm); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case unix.S_IFREG:
		if err := copyData(src, dst, perm); err != nil {
			return err
		}
	default:
		if !cp.recursive {
			return fmt.Errorf("not a regular file (cp -a copies device nodes, fifos and sockets)")
		}
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	}
	if cp.preserve {
		return preserve(dst, &st)
	}
	return nil
}

// copyData copies a regular file's bytes (copy_file_range where the
// kernel can) into dst, created or truncated.
func copyData(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm&0o777)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// preserve gives dst the owner, mode and times of st (cp -p). Owner
// first: chown clears set-id bits.
func preserve(dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "lchown", Path: dst, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: dst, Err: err}
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}

// ---- rm / mkdir / rmdir ----

func rm(c *call) error {
	o, operands, err := getopt(c.args, "rRf", "", false)
	if err != nil {
		return err
	}
	recursive, force := o.has('r') || o.has('R'), o.has('f')
	if len(operands) == 0 && !force {
		return usagef("missing operand")
	}
	for _, op := range operands {
		clean := filepath.Clean(c.path(op))
		if base := filepath.Base(op); base == "." || base == ".." {
			c.failf("refusing to remove '.' or '..': %s", op)
			continue
		}
		if clean == "/" {
			c.failf("refusing to remove '/'")
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(clean, &st); err != nil {
			if !(force && errors.Is(err, unix.ENOENT)) {
				c.fail(op, err)
			}
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if !recursive {
				c.failf("%s: is a directory (rm -r removes it)", op)
				continue
			}
			removeTree(c, op, clean, st.Dev)
			continue
		}
		if err := os.Remove(clean); err != nil {
			c.fail(op, err)
		}
	}
	return nil
}

// removeTree removes dir and what is below it but never descends into
// another filesystem: after pivot_root the old root is mounted below the
// new one, and rm -rf of a directory holding it must not wipe it. It
// reports whether everything went.
func removeTree(c *call, shown, dir string, dev uint64) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		c.fail(shown, err)
		return false
	}
	ok := true
	for _, e := range entries {
		p, s := filepath.Join(dir, e.Name()), filepath.Join(shown, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			c.fail(s, err)
			ok = false
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if st.Dev != dev {
				c.failf("%s: skipped, another filesystem is mounted there (umount it first)", s)
				ok = false
			} else if !removeTree(c, s, p, dev) {
				ok = false
			}
			continue
		}
		if err := os.Remove(p); err != nil {
			c.fail(s, err)
			ok = false
		}
	}
	if !ok {
		return false // the directory is not empty; its children said why
	}
	if err := unix.Rmdir(dir); err != nil {
		c.fail(shown, err)
		return false
	}
	return true
}

func mkdir(c *call) error {
	o, operands, err := getopt(c.args, "p", "", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing operand")
	}
	for _, op := range operands {
		if o.has('p') {
			err = os.MkdirAll(c.path(op), 0o777)
		} else {
			err = os.Mkdir(c.path(op), 0o777)
		}
		if err != nil {
			c.fail(op, err)
		}
	}
	return nil
}

func rmdir(c *call) error {
	_, operands, err := getopt(c.args, "", "", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing operand")
	}
	for _, op := range operands {
		if err := unix.Rmdir(c.path(op)); err != nil {
			c.fail(op, err)
		}
	}
	return nil
}

// ---- ln ----

func ln(c *call) error {
	o, operands, err := getopt(c.args, "sfn", "", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing TARGET")
	}
	if len(operands) == 1 {
		operands = append(operands, filepath.Base(operands[0]))
	}
	targets, dest := operands[:len(operands)-1], operands[len(operands)-1]
	fi, statErr := os.Stat(c.path(dest))
	destDir := statErr == nil && fi.IsDir() && !o.has('n')
	if len(targets) > 1 && !destDir {
		return fmt.Errorf("%s: not a directory (with several targets the last operand must be one)", dest)
	}
	for _, t := range targets {
		link := dest
		if destDir {
			link = filepath.Join(dest, filepath.Base(t))
		}
		if o.has('f') {
			if fi, err := os.Lstat(c.path(link)); err == nil && !fi.IsDir() {
				if err := os.Remove(c.path(link)); err != nil {
					c.fail(link, err)
					continue
				}
			}
		}
		if o.has('s') {
			err = os.Symlink(t, c.path(link))
		} else {
			err = os.Link(c.path(t), c.path(link))
		}
		if err != nil {
			c.fail(link, err)
		}
	}
	return nil
}

// ---- stat / touch ----

func stat(c *call) error {
	o, operands, err := getopt(c.args, "L", "c", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing FILE")
	}
	l := &lister{c: c}
	for _, op := range operands {
		var st unix.Stat_t
		if o.has('L') {
			err = unix.Stat(c.path(op), &st)
		} else {
			err = unix.Lstat(c.path(op), &st)
		}
		if err != nil {
			c.fail(op, err)
			continue
		}
		format := o.vals['c']
		if !o.has('c') {
			format = "  File: %N\n  Size: %-10s\tBlocks: %-10b IO Block: %-6o %F\nDevice: %D\tInode: %-11i Links: %h\nAccess: (%a/%A)  Uid: (%5u/%8U)   Gid: (%5g/%8G)\nAccess: %x\nModify: %y\nChange: %z"
		}
		fmt.Fprintln(c.stdout, statFormat(format, op, &st, l, location(c), c.path(op)))
	}
	return nil
}

// statFormat expands stat -c directives; a width between % and the
// letter pads like printf.
func statFormat(format, name string, st *unix.Stat_t, l *lister, loc *time.Location, full string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 >= len(format) {
			b.WriteByte(format[i])
			continue
		}
		j := i + 1
		for j < len(format) && strings.IndexByte("-0123456789", format[j]) >= 0 {
			j++
		}
		if j >= len(format) {
			b.WriteString(format[i:])
			break
		}
		width := format[i+1 : j]
		var v string
		when := func(ts unix.Timespec) string {
			return time.Unix(ts.Unix()).In(loc).Format("2006-01-02 15:04:05.000000000 -0700")
		}
		switch format[j] {
		case 'n':
			v = name
		case 'N':
			v = name
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				if t, err := os.Readlink(full); err == nil {
					v += " -> " + t
				}
			}
		case 's':
			v = strconv.FormatInt(st.Size, 10)
		case 'b':
			v = strconv.FormatInt(st.Blocks, 10)
		case 'o':
			v = strconv.FormatInt(int64(st.Blksize), 10)
		case 'a':
			v = strconv.FormatUint(uint64(st.Mode&0o7777), 8)
		case 'A':
			v = modeString(st.Mode)
		case 'F':
			v = fileType(st.Mode, st.Size)
		case 'u':
			v = strconv.FormatUint(uint64(st.Uid), 10)
		case 'g':
			v = strconv.FormatUint(uint64(st.Gid), 10)
		case 'U':
			v = l.owner(st.Uid, false)
		case 'G':
			v = l.owner(st.Gid, true)
		case 'h':
			v = strconv.FormatUint(uint64(st.Nlink), 10)
		case 'i':
			v = strconv.FormatUint(st.Ino, 10)
		case 'd':
			v = strconv.FormatUint(st.Dev, 10)
		case 'D':
			v = fmt.Sprintf("%d,%d", unix.Major(st.Dev), unix.Minor(st.Dev))
		case 'Y':
			v = strconv.FormatInt(st.Mtim.Sec, 10)
		case 'x':
			v = when(st.Atim)
		case 'y':
			v = when(st.Mtim)
		case 'z':
			v = when(st.Ctim)
		case '%':
			v = "%"
		default:
			v = format[i : j+1]
		}
		if width != "" {
			if n, err := strconv.Atoi(width); err == nil {
				if n < 0 {
					v = fmt.Sprintf("%-*s", -n, v)
				} else {
					v = fmt.Sprintf("%*s", n, v)
				}
			}
		}
		b.WriteString(v)
		i = j
	}
	return b.String()
}

func fileType(mode uint32, size int64) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		if size == 0 {
			return "regular empty file"
		}
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFCHR:
		return "character special file"
	case unix.S_IFBLK:
		return "block special file"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "unknown"
}

func touch(c *call) error {
	_, operands, err := getopt(c.args, "", "", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing FILE")
	}
	for _, op := range operands {
		f, err := os.OpenFile(c.path(op), os.O_WRONLY|os.O_CREATE, 0o666)
		if err == nil {
			f.Close()
			now := []unix.Timespec{{Nsec: unix.UTIME_NOW}, {Nsec: unix.UTIME_NOW}}
			err = unix.UtimesNanoAt(unix.AT_FDCWD, c.path(op), now, 0)
		}
		if err != nil {
			c.fail(op, err)
		}
	}
	return nil
}
