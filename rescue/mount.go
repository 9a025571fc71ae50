package rescue

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
	"golang.org/x/sys/unix"
)

func mountCommands() map[string]command {
	return map[string]command{
		"mount": {usage: `usage: mount [-t TYPE] [-o OPTIONS] SOURCE TARGET
       mount                                   list mounts (from /proc/self/mountinfo)
       mount -o remount,ro TARGET
       mount --bind|--rbind|--move SOURCE TARGET
       mount --make-[r]private|shared|slave|unbindable TARGET
  OPTIONS: ro rw bind rbind move remount nosuid nodev noexec noatime relatime
           strictatime lazytime sync dirsync private rprivate shared rshared
           slave rslave unbindable runbindable; others go to the filesystem
  without -t the types in /proc/filesystems are tried in turn
`, run: mount},
		"umount": {usage: "usage: umount [-lf] TARGET...\n  -l  lazy (MNT_DETACH)    -f  force (MNT_FORCE)\n", run: umount},
		"df":     {usage: "usage: df [-ha] [FILE]...\n  -h  sizes in K/M/G    -a  include filesystems without blocks (proc, sysfs...)\n", run: df},
	}
}

// mountRequest is a parsed mount -o list.
type mountRequest struct {
	flags     uintptr // for the main mount(2)
	propagate uintptr // for a separate propagation change, 0 if none
	data      string  // the filesystem's own options
}

// parseMountOptions splits "ro,bind,size=1M" into flags and data. Later
// words win (rw after ro).
func parseMountOptions(s string) (mountRequest, error) {
	var req mountRequest
	var data []string
	for _, w := range strings.Split(s, ",") {
		if w == "" {
			continue
		}
		f, ok := mountops.Option(w)
		switch {
		case !ok:
			data = append(data, w)
		case f.Propagate:
			if req.propagate != 0 {
				return req, fmt.Errorf("%s: one propagation change at a time", w)
			}
			req.propagate = f.Set
		default:
			req.flags = req.flags&^f.Clear | f.Set
		}
	}
	req.data = strings.Join(data, ",")
	return req, nil
}

func mount(c *call) error {
	// Long options become -o words (util-linux spells both).
	var args []string
	for _, a := range c.args {
		switch a {
		case "--bind", "--rbind", "--move":
			args = append(args, "-o", a[2:])
		case "--make-private", "--make-rprivate", "--make-shared", "--make-rshared",
			"--make-slave", "--make-rslave", "--make-unbindable", "--make-runbindable":
			args = append(args, "-o", a[len("--make-"):])
		case "-r", "--read-only":
			args = append(args, "-o", "ro")
		case "-w", "--rw", "--read-write":
			args = append(args, "-o", "rw")
		default:
			args = append(args, a)
		}
	}
	// -o may repeat; join the lists in order.
	var optList []string
	var fstype string
	var operands []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o" || a == "-t":
			if i+1 >= len(args) {
				return usagef("option %s needs a value", a)
			}
			i++
			if a == "-o" {
				optList = append(optList, args[i])
			} else {
				fstype = args[i]
			}
		case strings.HasPrefix(a, "-o") && len(a) > 2:
			optList = append(optList, a[2:])
		case strings.HasPrefix(a, "-t") && len(a) > 2:
			fstype = a[2:]
		case a == "-v" || a == "-n":
			// verbose / no mtab: nothing to do
		case a == "--":
			operands = append(operands, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			return usagef("unknown option %s", a)
		default:
			operands = append(operands, a)
		}
	}
	if len(optList) == 0 && fstype == "" && len(operands) == 0 {
		return listMounts(c)
	}
	req, err := parseMountOptions(strings.Join(optList, ","))
	if err != nil {
		return usagef("%v", err)
	}
	m := mountops.System{}
	var src, target string
	switch len(operands) {
	case 1:
		target = c.path(operands[0])
		if req.flags&unix.MS_REMOUNT == 0 && req.propagate == 0 {
			return usagef("need SOURCE and TARGET (the rescue shell reads no fstab)")
		}
	case 2:
		src, target = operands[0], c.path(operands[1])
	default:
		return usagef("need SOURCE and TARGET")
	}

	switch {
	case req.flags&unix.MS_REMOUNT != 0:
		err = m.Mount("", target, "", req.flags, req.data)
	case req.flags&unix.MS_MOVE != 0:
		err = m.Mount(c.path(src), target, "", unix.MS_MOVE, "")
	case req.flags&unix.MS_BIND != 0:
		bind := req.flags & (unix.MS_BIND | unix.MS_REC)
		err = m.Mount(c.path(src), target, "", bind, "")
		// A bind mount ignores other flags; apply them per mount, as
		// util-linux does with a second call.
		if rest := req.flags &^ (unix.MS_BIND | unix.MS_REC); err == nil && rest != 0 {
			err = m.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, "")
		}
	case src != "":
		// "proc", "tmpfs", "none" are names, not paths; resolve only paths.
		if strings.Contains(src, "/") && !filepath.IsAbs(src) {
			src = c.path(src)
		}
		err = mountTryTypes(c, m, src, target, fstype, req)
	}
	if err == nil && req.propagate != 0 {
		err = m.Mount("", target, "", req.propagate, "")
	}
	if err != nil {
		c.failf("%v", err)
	}
	return nil
}

// mountTryTypes mounts with -t TYPE, or without one tries every block
// filesystem the kernel knows (as busybox does), reporting the last error.
func mountTryTypes(c *call, m mountops.System, src, target, fstype string, req mountRequest) error {
	if fstype != "" && fstype != "auto" {
		return m.Mount(src, target, fstype, req.flags, req.data)
	}
	types, err := blockFilesystems(c.env.Proc("filesystems"))
	if err != nil {
		return fmt.Errorf("no -t TYPE and %v", err)
	}
	var last error
	for _, t := range types {
		last = m.Mount(src, target, t, req.flags, req.data)
		if last == nil {
			return nil
		}
		if errors.Is(last, unix.EBUSY) || errors.Is(last, unix.EACCES) || errors.Is(last, unix.ENOENT) || errors.Is(last, unix.EROFS) {
			return last // the filesystem was recognised or the paths are wrong
		}
	}
	if last == nil {
		return fmt.Errorf("no -t TYPE and no block filesystem in %s", c.env.Proc("filesystems"))
	}
	return fmt.Errorf("no -t TYPE; tried %s: %w", strings.Join(types, " "), last)
}

// blockFilesystems reads /proc/filesystems: the types not marked nodev.
func blockFilesystems(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var types []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "nodev") {
			continue
		}
		if t := strings.TrimSpace(line); t != "" {
			types = append(types, t)
		}
	}
	return types, sc.Err()
}

// listMounts prints the mount table the way mount(8) does:
// SOURCE on POINT type TYPE (OPTIONS).
func listMounts(c *call) error {
	t, err := mountinfo.Read(c.env.ProcRoot, "self")
	if err != nil {
		return err
	}
	for _, m := range t {
		fmt.Fprintf(c.stdout, "%s on %s type %s (%s)\n", m.Source, m.Point, m.FSType, mountOptions(m))
	}
	return nil
}

// mountOptions merges per-mount and superblock options as mount(8)
// shows them: "rw,relatime,errors=remount-ro".
func mountOptions(m mountinfo.Mount) string {
	opts := strings.Split(m.Options, ",")
	seen := map[string]bool{}
	for _, o := range opts {
		seen[o] = true
	}
	for _, o := range strings.Split(m.SuperOptions, ",") {
		if o == "" || o == "rw" || o == "ro" || seen[o] {
			continue
		}
		seen[o] = true
		opts = append(opts, o)
	}
	return strings.Join(opts, ",")
}

func umount(c *call) error {
	o, operands, err := getopt(c.args, "lfn", "", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing TARGET")
	}
	flags := 0
	if o.has('l') {
		flags |= unix.MNT_DETACH
	}
	if o.has('f') {
		flags |= unix.MNT_FORCE
	}
	for _, op := range operands {
		if err := (mountops.System{}).Unmount(c.path(op), flags); err != nil {
			c.failf("%v", err)
		}
	}
	return nil
}

// ---- df ----

func df(c *call) error {
	o, operands, err := getopt(c.args, "haT", "", false)
	if err != nil {
		return err
	}
	t, err := mountinfo.Read(c.env.ProcRoot, "self")
	if err != nil {
		return err
	}
	var mounts []mountinfo.Mount
	if len(operands) == 0 {
		mounts = t
	}
	for _, op := range operands {
		p, err := filepath.Abs(c.path(op))
		if err == nil {
			p, err = filepath.EvalSymlinks(p)
		}
		if err != nil {
			c.fail(op, err)
			continue
		}
		m, ok := t.Containing(p)
		if !ok {
			c.failf("%s: no mount holds it", op)
			continue
		}
		mounts = append(mounts, m)
	}
	human := o.has('h')
	header := []string{"Filesystem", "1K-blocks", "Used", "Available", "Use%", "Mounted on"}
	if human {
		header = []string{"Filesystem", "Size", "Used", "Avail", "Use%", "Mounted on"}
	}
	rows := [][]string{header}
	for _, m := range mounts {
		var st unix.Statfs_t
		if err := unix.Statfs(m.Point, &st); err != nil {
			if len(operands) > 0 {
				c.fail(m.Point, err)
			}
			continue
		}
		if st.Blocks == 0 && !o.has('a') && len(operands) == 0 {
			continue
		}
		bsize := uint64(st.Bsize)
		if st.Frsize != 0 {
			bsize = uint64(st.Frsize)
		}
		total, free, avail := st.Blocks*bsize, st.Bfree*bsize, st.Bavail*bsize
		used := total - free
		pct := "-"
		if used+avail > 0 {
			pct = strconv.Itoa(int(math.Ceil(float64(used)*100/float64(used+avail)))) + "%"
		}
		size := func(b uint64) string {
			if human {
				return humanSize(b, "")
			}
			return strconv.FormatUint((b+1023)/1024, 10)
		}
		rows = append(rows, []string{m.Source, size(total), size(used), size(avail), pct, m.Point})
	}
	if len(rows) > 1 || !c.failed {
		printTable(c, rows, []bool{false, true, true, true, true, false})
	}
	return nil
}

// printTable aligns columns; right[i] right-aligns column i. The last
// column is never padded.
func printTable(c *call, rows [][]string, right []bool) {
	widths := make([]int, len(right))
	for _, r := range rows {
		for i, v := range r {
			widths[i] = max(widths[i], len(v))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, v := range r {
			if i > 0 {
				b.WriteByte(' ')
			}
			switch {
			case i == len(r)-1:
				b.WriteString(v)
			case right[i]:
				fmt.Fprintf(&b, "%*s", widths[i], v)
			default:
				fmt.Fprintf(&b, "%-*s", widths[i], v)
			}
		}
		fmt.Fprintln(c.stdout, b.String())
	}
}

// humanSize prints bytes the way df -h and free -h do: 1023, 1.5K, 20M,
// one decimal below 10. unit is "" for df (K, M) or "i" for free (Ki, Mi).
func humanSize(b uint64, unit string) string {
	if b < 1024 {
		if unit != "" {
			return strconv.FormatUint(b, 10) + "B"
		}
		return strconv.FormatUint(b, 10)
	}
	v := float64(b)
	suffixes := "KMGTPE"
	i := -1
	for v >= 1024 && i < len(suffixes)-1 {
		v /= 1024
		i++
	}
	// Round up like coreutils so that a size is never understated; 1023.9K
	// rounds to the next unit, 1.0M.
	if math.Ceil(v) >= 1024 && i < len(suffixes)-1 {
		v /= 1024
		i++
	}
	if v < 10 {
		if r := math.Ceil(v*10) / 10; r < 10 {
			return strconv.FormatFloat(r, 'f', 1, 64) + string(suffixes[i]) + unit
		}
	}
	return strconv.FormatFloat(math.Ceil(v), 'f', 0, 64) + string(suffixes[i]) + unit
}
