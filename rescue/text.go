package rescue

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
)

// The few filters a pipeline needs when there is no /bin: ps | grep,
// dmesg | tail.
func textCommands() map[string]command {
	return map[string]command{
		"head":  {usage: "usage: head [-n LINES] [FILE]...\n", run: head},
		"tail":  {usage: "usage: tail [-n LINES] [FILE]...\n", run: tail},
		"grep":  {usage: "usage: grep [-vciqF] PATTERN [FILE]...\n  PATTERN is a Go (RE2) regular expression, like egrep's; -F a fixed string\n  -v  non-matching lines  -c  count  -i  ignore case  -q  quiet, status only\n", run: grep},
		"wc":    {usage: "usage: wc [-lwc] [FILE]...\n", run: wc},
		"sleep": {usage: "usage: sleep SECONDS   (fractions and Go durations like 1m30s too)\n", run: sleep},
	}
}

// eachInput calls fn with every operand's contents, stdin for none or "-".
func eachInput(c *call, operands []string, fn func(name string, r io.Reader)) {
	if len(operands) == 0 {
		operands = []string{"-"}
	}
	for _, op := range operands {
		if op == "-" {
			fn("-", c.stdin)
			continue
		}
		f, err := os.Open(c.path(op))
		if err != nil {
			c.fail(op, err)
			continue
		}
		fn(op, f)
		f.Close()
	}
}

// oldCount turns the historic -NUM (head -3) into -n NUM.
func oldCount(args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) > 1 && a[0] == '-' && strings.Trim(a[1:], "0123456789") == "" {
			out[i] = "-n" + a[1:]
		}
	}
	return out
}

func lineCount(o opts) (int, error) {
	if !o.has('n') {
		return 10, nil
	}
	n, err := strconv.Atoi(o.vals['n'])
	if err != nil || n < 0 {
		return 0, usagef("bad line count %q", o.vals['n'])
	}
	return n, nil
}

func head(c *call) error {
	o, operands, err := getopt(oldCount(c.args), "", "n", false)
	if err != nil {
		return err
	}
	n, err := lineCount(o)
	if err != nil {
		return err
	}
	eachInput(c, operands, func(name string, r io.Reader) {
		br := bufio.NewReader(r)
		for i := 0; i < n; i++ {
			line, err := br.ReadBytes('\n')
			c.stdout.Write(line)
			if err != nil {
				break
			}
		}
	})
	return nil
}

func tail(c *call) error {
	o, operands, err := getopt(oldCount(c.args), "", "n", false)
	if err != nil {
		return err
	}
	n, err := lineCount(o)
	if err != nil {
		return err
	}
	eachInput(c, operands, func(name string, r io.Reader) {
		ring := make([][]byte, 0, n)
		br := bufio.NewReader(r)
		for n > 0 {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				if len(ring) == n {
					ring = append(ring[:0], ring[1:]...)
				}
				ring = append(ring, line)
			}
			if err != nil {
				break
			}
		}
		for _, l := range ring {
			c.stdout.Write(l)
		}
	})
	return nil
}

func grep(c *call) error {
	o, operands, err := getopt(c.args, "vciqFE", "", false)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing PATTERN")
	}
	pattern := operands[0]
	if o.has('F') {
		pattern = regexp.QuoteMeta(pattern)
	}
	if o.has('i') {
		pattern = "(?i)" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return usagef("bad PATTERN: %v", err)
	}
	files := operands[1:]
	matched := 0
	eachInput(c, files, func(name string, r io.Reader) {
		count := 0
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if re.Match(line) == o.has('v') {
				continue
			}
			count++
			if o.has('q') || o.has('c') {
				continue
			}
			if len(files) > 1 {
				fmt.Fprintf(c.stdout, "%s:", name)
			}
			c.stdout.Write(append(bytes.Clone(line), '\n'))
		}
		if err := sc.Err(); err != nil {
			c.fail(name, err)
		}
		if o.has('c') && !o.has('q') {
			if len(files) > 1 {
				fmt.Fprintf(c.stdout, "%s:", name)
			}
			fmt.Fprintln(c.stdout, count)
		}
		matched += count
	})
	if c.failed {
		return exitStatus(2)
	}
	if matched == 0 {
		return exitStatus(1)
	}
	return nil
}

func wc(c *call) error {
	o, operands, err := getopt(c.args, "lwc", "", false)
	if err != nil {
		return err
	}
	all := !o.has('l') && !o.has('w') && !o.has('c')
	// Like GNU wc: one count of one input is printed bare (ps | wc -l).
	columns := 3
	if !all {
		columns = len(o.set)
	}
	field := "%7d "
	if columns == 1 && len(operands) <= 1 {
		field = "%d "
	}
	var tl, tw, tc int
	print := func(l, w, n int, name string) {
		var out []any
		format := ""
		for _, f := range []struct {
			on bool
			v  int
		}{{all || o.has('l'), l}, {all || o.has('w'), w}, {all || o.has('c'), n}} {
			if f.on {
				format += field
				out = append(out, f.v)
			}
		}
		if name != "-" {
			format += "%s"
			out = append(out, name)
		}
		fmt.Fprintf(c.stdout, trimRight(format)+"\n", out...)
	}
	eachInput(c, operands, func(name string, r io.Reader) {
		data, err := io.ReadAll(r)
		if err != nil {
			c.fail(name, err)
			return
		}
		l, w := bytes.Count(data, []byte("\n")), len(bytes.Fields(data))
		tl, tw, tc = tl+l, tw+w, tc+len(data)
		print(l, w, len(data), name)
	})
	if len(operands) > 1 {
		print(tl, tw, tc, "total")
	}
	return nil
}

func trimRight(s string) string {
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

func sleep(c *call) error {
	_, operands, err := getopt(c.args, "", "", true)
	if err != nil {
		return err
	}
	if len(operands) != 1 {
		return usagef("one duration")
	}
	d, err := cli.ParseDuration(operands[0])
	if err != nil {
		return usagef("bad duration %q", operands[0])
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.ctx.Done():
		return exitStatus(130)
	}
}
