package lsof

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/cli"
)

// options is one command line, parsed the way lsof parses its own: single
// letters after '-' or '+' that combine ("-nP", "-ta"), an option's value
// either attached ("-p1", "+c0") or the next word, plus rootswap's long
// options. Words that are no option are PATHs; options may follow them.
type options struct {
	and      bool // -a: AND the selections (default OR, as lsof)
	terse    bool // -t: PIDs only
	numUID   bool // -l: UIDs as numbers
	noWarn   bool // -w: no warning about processes that could not be read
	cmdWidth int  // +c: COMMAND width; 0 the whole name

	pids, notPIDs []int
	cmds, notCmds []string // -c prefixes, ^ excluded
	cmdRx         []*regexp.Regexp
	users         []string // -u names or uids, resolved later
	notUsers      []string
	fds           fdList // -d
	dirs          []dirOpt
	paths         []string

	deleted, writable, json, noBPF bool
}

// dirOpt is +d DIR (tree false) or +D DIR (tree true).
type dirOpt struct {
	path string
	tree bool
}

// defaultCmdWidth is lsof's COMMAND width without +c.
const defaultCmdWidth = 9

// long sets one of rootswap's own options by name; false when there is
// no such option.
func (o *options) long(name string) bool {
	switch name {
	case "deleted":
		o.deleted = true
	case "writable":
		o.writable = true
	case "json":
		o.json = true
	case "no-bpf":
		o.noBPF = true
	default:
		return false
	}
	return true
}

// parseArgs parses args (without the applet name).
func parseArgs(args []string) (*options, error) {
	o := &options{cmdWidth: defaultCmdWidth}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.paths = append(o.paths, args[i+1:]...)
			break
		}
		if a == "-h" || a == "-?" || a == "--help" || a == "-help" {
			return nil, cli.ErrHelp
		}
		if name, ok := strings.CutPrefix(a, "--"); ok {
			if !o.long(name) {
				return nil, cli.UsageError("unknown option %s", a)
			}
			continue
		}
		// A single dash is taken too, as the flag package did before;
		// none of these words is a useful lsof letter combination.
		if name, ok := strings.CutPrefix(a, "-"); ok && len(name) > 2 && o.long(name) {
			continue
		}
		if len(a) < 2 || a[0] != '-' && a[0] != '+' {
			o.paths = append(o.paths, a)
			continue
		}
		sign := a[0]
		for j := 1; j < len(a); j++ {
			c := a[j]
			if !takesValue(sign, c) {
				if err := o.flag(sign, c); err != nil {
					return nil, err
				}
				continue
			}
			v := a[j+1:]
			if v == "" {
				if i+1 >= len(args) {
					return nil, cli.UsageError("%c%c needs a value", sign, c)
				}
				i++
				v = args[i]
			}
			if err := o.value(sign, c, v); err != nil {
				return nil, err
			}
			break
		}
	}
	if o.and && !o.selects() {
		return nil, cli.UsageError("no select options to AND via -a")
	}
	return o, nil
}

func takesValue(sign, c byte) bool {
	if sign == '+' {
		return c == 'c' || c == 'd' || c == 'D'
	}
	return strings.IndexByte("pcud", c) >= 0
}

// flag sets a letter without a value.
func (o *options) flag(sign, c byte) error {
	if sign == '-' {
		switch c {
		case 'a':
			o.and = true
			return nil
		case 't':
			o.terse = true
			return nil
		case 'l':
			o.numUID = true
			return nil
		case 'w':
			o.noWarn = true
			return nil
		case 'n', 'P':
			return nil // rootswap prints numbers anyway
		}
	} else if c == 'w' {
		o.noWarn = false
		return nil
	}
	return cli.UsageError("unknown option %c%c", sign, c)
}

// value sets a letter with its value v.
func (o *options) value(sign, c byte, v string) error {
	switch {
	case sign == '+' && c == 'c':
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return cli.UsageError("+c %q: not a width", v)
		}
		o.cmdWidth = n
	case sign == '+':
		if v == "" {
			return cli.UsageError("%c%c: empty directory", sign, c)
		}
		o.dirs = append(o.dirs, dirOpt{path: v, tree: c == 'D'})
	case c == 'p':
		for _, s := range strings.Split(v, ",") {
			neg := strings.HasPrefix(s, "^")
			n, err := strconv.Atoi(strings.TrimPrefix(s, "^"))
			if err != nil || n <= 0 {
				return cli.UsageError("-p %q: not a process id", s)
			}
			if neg {
				o.notPIDs = append(o.notPIDs, n)
			} else {
				o.pids = append(o.pids, n)
			}
		}
	case c == 'c':
		return o.command(v)
	case c == 'u':
		for _, s := range strings.Split(v, ",") {
			name, neg := strings.CutPrefix(s, "^")
			if name == "" {
				return cli.UsageError("-u %q: no user", v)
			}
			if neg {
				o.notUsers = append(o.notUsers, name)
			} else {
				o.users = append(o.users, name)
			}
		}
	case c == 'd':
		l, err := parseFDList(v)
		if err != nil {
			return err
		}
		o.fds = l
	}
	return nil
}

// command adds one -c: a prefix, ^prefix to exclude, or /regex/ with
// lsof's modifiers i (ignore case) and x (extended, RE2's own syntax);
// b (basic) has no RE2 counterpart and is refused.
func (o *options) command(v string) error {
	if v == "" {
		return cli.UsageError("-c: empty command")
	}
	if len(v) >= 2 && v[0] == '/' {
		end := strings.LastIndexByte(v, '/')
		if end > 0 {
			expr, mods := v[1:end], v[end+1:]
			if strings.Trim(mods, "ix") != "" {
				return cli.UsageError("-c %q: modifiers other than i and x", v)
			}
			if strings.Contains(mods, "i") {
				expr = "(?i)" + expr
			}
			rx, err := regexp.Compile(expr)
			if err != nil {
				return cli.UsageError("-c %q: %v", v, err)
			}
			o.cmdRx = append(o.cmdRx, rx)
			return nil
		}
	}
	if s, ok := strings.CutPrefix(v, "^"); ok {
		if s == "" {
			return cli.UsageError("-c %q: empty command", v)
		}
		o.notCmds = append(o.notCmds, s)
		return nil
	}
	o.cmds = append(o.cmds, v)
	return nil
}

// selects reports whether any selection (not only exclusions) was given.
func (o *options) selects() bool {
	return len(o.pids)+len(o.cmds)+len(o.cmdRx)+len(o.users)+len(o.paths)+len(o.dirs) > 0 || o.fds.set
}

// fdList is a -d list: names (cwd, rtd, txt, mem, DEL) and numbers or
// ranges, all included or all excluded (^).
type fdList struct {
	set     bool
	exclude bool
	names   []string
	ranges  [][2]int
}

func parseFDList(v string) (fdList, error) {
	l := fdList{set: true}
	for i, s := range strings.Split(v, ",") {
		name, neg := strings.CutPrefix(s, "^")
		if i == 0 {
			l.exclude = neg
		} else if neg != l.exclude {
			return fdList{}, cli.UsageError("-d %q: mixes included and excluded descriptors", v)
		}
		if name == "" {
			return fdList{}, cli.UsageError("-d %q: empty entry", v)
		}
		lo, hi, isRange := strings.Cut(name, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		switch {
		case isRange && err1 == nil && err2 == nil && a >= 0 && b > a:
			l.ranges = append(l.ranges, [2]int{a, b})
		case !isRange && err1 == nil && a >= 0:
			l.ranges = append(l.ranges, [2]int{a, a})
		case isRange:
			return fdList{}, cli.UsageError("-d %q: bad range %q", v, name)
		default:
			l.names = append(l.names, name)
		}
	}
	return l, nil
}

// selected is whether the list selects a descriptor (lsof's SELFD): num
// >= 0 for a numbered one, else its name ("cwd", "mem"...); "fd" in the
// list stands for every numbered descriptor.
func (l *fdList) selected(num int, name string) bool {
	in := false
	if num >= 0 {
		for _, r := range l.ranges {
			in = in || num >= r[0] && num <= r[1]
		}
		name = "fd"
	}
	for _, n := range l.names {
		in = in || n == name
	}
	return in != l.exclude
}
