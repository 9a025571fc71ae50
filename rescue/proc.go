package rescue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

func procCommands() map[string]command {
	return map[string]command{
		"ps":    {usage: "usage: ps   (every process: PID PPID STAT COMMAND ARGS, from /proc)\n", run: ps},
		"kill":  {usage: "usage: kill [-SIGNAL | -s SIGNAL] PID...   or   kill -l\n  SIGNAL is a name (TERM, SIGKILL) or a number; default TERM\n", run: kill},
		"free":  {usage: "usage: free [-h]   (memory from /proc/meminfo, in KiB)\n  -h  in Ki/Mi/Gi\n", run: free},
		"dmesg": {usage: "usage: dmesg   (the kernel log, from /dev/kmsg or syslog(2))\n", run: dmesg},
	}
}

// ---- ps ----

// procStat is what ps shows of /proc/PID/stat.
type procStat struct {
	PID, PPID int
	Comm      string
	State     string
}

// parseProcStat parses /proc/PID/stat. comm may hold spaces and
// parentheses, so it is everything between the first "(" and the last ")".
func parseProcStat(data string) (procStat, error) {
	open, shut := strings.IndexByte(data, '('), strings.LastIndexByte(data, ')')
	if open < 0 || shut < open {
		return procStat{}, errors.New("no (comm) in stat")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(data[:open]))
	if err != nil {
		return procStat{}, fmt.Errorf("bad pid: %w", err)
	}
	rest := strings.Fields(data[shut+1:])
	if len(rest) < 2 {
		return procStat{}, errors.New("stat too short")
	}
	ppid, err := strconv.Atoi(rest[1])
	if err != nil {
		return procStat{}, fmt.Errorf("bad ppid: %w", err)
	}
	return procStat{PID: pid, PPID: ppid, Comm: data[open+1 : shut], State: rest[0]}, nil
}

func ps(c *call) error {
	_, operands, err := getopt(c.args, "efAwaux", "", false) // habits (ps -ef, ps aux) are accepted
	if err != nil {
		return err
	}
	if len(operands) > 0 && operands[0] != "aux" && operands[0] != "ax" {
		return usagef("no operands")
	}
	entries, err := os.ReadDir(c.env.ProcRoot)
	if err != nil {
		return err
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	fmt.Fprintf(c.stdout, "%5s %5s %-4s %-15s %s\n", "PID", "PPID", "STAT", "COMMAND", "ARGS")
	for _, pid := range pids {
		dir := c.env.Proc(strconv.Itoa(pid))
		data, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue // exited since the directory was read
		}
		st, err := parseProcStat(string(data))
		if err != nil {
			c.failf("%s/stat: %v", dir, err)
			continue
		}
		args := "[" + st.Comm + "]" // kernel threads have no command line
		if cmdline, err := os.ReadFile(dir + "/cmdline"); err == nil && len(cmdline) > 0 {
			args = string(bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '}))
		}
		fmt.Fprintf(c.stdout, "%5d %5d %-4s %-15s %s\n", st.PID, st.PPID, st.State, st.Comm, args)
	}
	return nil
}

// ---- kill ----

// parseSignal reads TERM, SIGTERM, term or 15.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("bad signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %s (kill -l lists them)", s)
}

func kill(c *call) error {
	sig := unix.SIGTERM
	args := c.args
	if len(args) > 0 && args[0] == "-l" {
		for n := unix.Signal(1); n < 32; n++ {
			if name := unix.SignalName(n); name != "" {
				fmt.Fprintf(c.stdout, "%2d %s\n", int(n), strings.TrimPrefix(name, "SIG"))
			}
		}
		return nil
	}
	if len(args) > 1 && args[0] == "-s" {
		s, err := parseSignal(args[1])
		if err != nil {
			return usagef("%v", err)
		}
		sig, args = s, args[2:]
	} else if len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "--" {
		s, err := parseSignal(args[0][1:])
		if err != nil {
			return usagef("%v", err)
		}
		sig, args = s, args[1:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return usagef("missing PID")
	}
	for _, a := range args {
		pid, err := strconv.Atoi(a)
		if err != nil {
			c.failf("%s: not a process id", a)
			continue
		}
		if err := unix.Kill(pid, sig); err != nil {
			c.fail(a, err)
		}
	}
	return nil
}

// ---- free ----

// parseMeminfo reads /proc/meminfo into KiB values by key.
func parseMeminfo(r io.Reader) (map[string]uint64, error) {
	m := map[string]uint64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] != "kB" {
			continue // only kB values; counts (HugePages_Total) are not memory
		}
		m[key] = v
	}
	return m, sc.Err()
}

func free(c *call) error {
	o, _, err := getopt(c.args, "hkmgw", "", false)
	if err != nil {
		return err
	}
	f, err := os.Open(c.env.Proc("meminfo"))
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := parseMeminfo(f)
	if err != nil {
		return err
	}
	total, freeKB := m["MemTotal"], m["MemFree"]
	cache := m["Buffers"] + m["Cached"] + m["SReclaimable"]
	used := total - freeKB - cache
	if total < freeKB+cache {
		used = total - freeKB
	}
	avail, ok := m["MemAvailable"]
	if !ok {
		avail = freeKB
	}
	size := func(kb uint64) string {
		if o.has('h') {
			return humanSize(kb*1024, "i")
		}
		return strconv.FormatUint(kb, 10)
	}
	swapUsed := m["SwapTotal"] - m["SwapFree"]
	fmt.Fprintf(c.stdout, "%-7s %11s %11s %11s %11s %11s %11s\n", "", "total", "used", "free", "shared", "buff/cache", "available")
	fmt.Fprintf(c.stdout, "%-7s %11s %11s %11s %11s %11s %11s\n", "Mem:", size(total), size(used), size(freeKB), size(m["Shmem"]), size(cache), size(avail))
	fmt.Fprintf(c.stdout, "%-7s %11s %11s %11s\n", "Swap:", size(m["SwapTotal"]), size(swapUsed), size(m["SwapFree"]))
	return nil
}

// ---- dmesg ----

// kmsgRecord is one /dev/kmsg record: "PRI,SEQ,USEC,FLAGS;TEXT" followed
// by " KEY=VALUE" continuation lines, which dmesg does not show.
type kmsgRecord struct {
	Priority int
	Seq      uint64
	Usec     uint64
	Text     string
}

func parseKmsg(rec string) (kmsgRecord, error) {
	head, text, ok := strings.Cut(rec, ";")
	if !ok {
		return kmsgRecord{}, errors.New("no ';' in record")
	}
	text, _, _ = strings.Cut(text, "\n")
	f := strings.Split(head, ",")
	if len(f) < 3 {
		return kmsgRecord{}, errors.New("record header has fewer than 3 fields")
	}
	pri, err1 := strconv.Atoi(f[0])
	seq, err2 := strconv.ParseUint(f[1], 10, 64)
	usec, err3 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return kmsgRecord{}, err
	}
	return kmsgRecord{Priority: pri, Seq: seq, Usec: usec, Text: unescapeKmsg(text)}, nil
}

// unescapeKmsg undoes the kernel's \xNN escaping of unprintable bytes,
// then escapes control characters again the way lsof prints names (\n,
// \t, ^[ for ESC, \xNN): a log line that holds a newline or an escape
// sequence must neither forge a line of output nor reach the terminal.
func unescapeKmsg(s string) string {
	if !strings.Contains(s, `\x`) {
		return safeText(s)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' {
			if v, err := strconv.ParseUint(s[i+2:i+4], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return safeText(b.String())
}

// safeText escapes what a terminal would act on: C0 controls as \b \f
// \n \r \t or ^X (lsof's spelling), DEL, C1 controls and bytes that are
// not UTF-8 as \xNN. Printable UTF-8 and backslashes stay as they are.
func safeText(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x80 {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError && unicode.IsPrint(r) {
				b.WriteString(s[i : i+n])
			} else {
				for _, c := range []byte(s[i : i+n]) {
					b.WriteString(`\x`)
					b.WriteByte(hex[c>>4])
					b.WriteByte(hex[c&15])
				}
			}
			i += n
			continue
		}
		switch {
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		case c == 0x7f:
			b.WriteString(`\x7f`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte('^')
			b.WriteByte(c + 0x40)
		}
		i++
	}
	return b.String()
}

func dmesg(c *call) error {
	if _, _, err := getopt(c.args, "", "", false); err != nil {
		return err
	}
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		// No /dev in this root: the syslog(2) ring holds the same lines.
		return dmesgSyslog(c, err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 8192)
	for {
		if c.ctx.Err() != nil {
			return c.ctx.Err()
		}
		n, err := unix.Read(fd, buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return nil // read everything there is
		case errors.Is(err, unix.EPIPE):
			continue // records were overwritten while reading; go on
		case err != nil:
			return &os.PathError{Op: "read", Path: "/dev/kmsg", Err: err}
		case n == 0:
			return nil
		}
		rec, err := parseKmsg(string(buf[:n]))
		if err != nil {
			continue
		}
		fmt.Fprintf(c.stdout, "[%5d.%06d] %s\n", rec.Usec/1e6, rec.Usec%1e6, rec.Text)
	}
}

func dmesgSyslog(c *call, openErr error) error {
	size, err := unix.Klogctl(unix.SYSLOG_ACTION_SIZE_BUFFER, nil)
	if err != nil || size <= 0 {
		return fmt.Errorf("open /dev/kmsg: %s; syslog(SYSLOG_ACTION_SIZE_BUFFER): %w", errText(openErr), err)
	}
	buf := make([]byte, size)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return fmt.Errorf("open /dev/kmsg: %s; syslog(SYSLOG_ACTION_READ_ALL): %w", errText(openErr), err)
	}
	for _, line := range strings.SplitAfter(string(buf[:n]), "\n") {
		// "<6>[    0.000000] text": drop the priority, as dmesg does.
		if strings.HasPrefix(line, "<") {
			if i := strings.IndexByte(line, '>'); i > 0 {
				line = line[i+1:]
			}
		}
		text, nl := strings.CutSuffix(line, "\n")
		io.WriteString(c.stdout, safeText(text))
		if nl {
			io.WriteString(c.stdout, "\n")
		}
	}
	return nil
}
