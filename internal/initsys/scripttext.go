package initsys

import (
	"path"
	"regexp"
	"strings"
)

// ScriptFacts is what an init script's text says about the daemon it
// runs: the pidfiles it names and the programs it starts. Busybox/Buildroot
// S??name scripts, OpenRC's openrc-run scripts and LSB scripts all spell
// these in a handful of ways:
//
//	PIDFILE="/var/run/$DAEMON.pid"           an assignment to a pid variable
//	pidfile="/run/${RC_SVCNAME}.pid"         OpenRC
//	start-stop-daemon -p /run/x.pid          -p, --pidfile, --pid-file[=]
//	kill $(cat /var/run/xyz.pid)             any absolute path ending in .pid
//	start-stop-daemon -x /usr/sbin/crond     -x, --exec, -a, --startas
//	DAEMON=/usr/sbin/httpd, command=...      an assignment to a program variable
//	/usr/sbin/foo -d                         an absolute command word
//
// Variables assigned in the script are expanded (the common ${V:-x},
// ${V%x} forms too); a word that needs anything else (an unset variable,
// $(...), a positional parameter) is dropped rather than guessed.
type ScriptFacts struct {
	Pidfiles    []string // absolute, cleaned, in order of appearance
	Executables []string // absolute, cleaned, in order of appearance
}

// unknownMark stands in for what the parser cannot expand; no path
// containing it is reported.
const unknownMark = "\x00"

// pidPathRE finds absolute .pid paths inside any word ("pid /run/nginx.pid;").
var pidPathRE = regexp.MustCompile(`/[A-Za-z0-9._@%+:/-]*\.pid\b`)

func isPathByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._@%+:/-", c) >= 0
}

// pidOptionCommands take -p PIDFILE (elsewhere -p is often a port).
var pidOptionCommands = map[string]bool{
	"start-stop-daemon": true, "supervise-daemon": true, "pidof": true, "pidofproc": true,
	"killproc": true, "status_of_proc": true, "checkproc": true, "start_daemon": true,
}

// execOptionCommands take -x / -a PROGRAM, and test takes -x FILE, which
// LSB scripts use to check for their daemon ("test -x $DAEMON || exit 0").
var execOptionCommands = map[string]bool{
	"start-stop-daemon": true, "supervise-daemon": true, "test": true, "[": true, "[[": true,
}

// notDaemons are programs an init script runs that are not the daemon it
// starts (and interpreters, which would match every script of theirs).
var notDaemons = map[string]bool{
	"sh": true, "bash": true, "dash": true, "ash": true, "zsh": true, "busybox": true, "env": true,
	"start-stop-daemon": true, "supervise-daemon": true, "openrc-run": true, "runscript": true,
	"kill": true, "killall": true, "killall5": true, "pidof": true, "cat": true, "echo": true,
	"printf": true, "rm": true, "mkdir": true, "chown": true, "chmod": true, "touch": true,
	"ln": true, "mv": true, "cp": true, "sleep": true, "test": true, "true": true, "false": true,
	"mount": true, "umount": true, "sed": true, "grep": true, "awk": true, "cut": true,
	"logger": true, "modprobe": true, "install": true, "id": true, "su": true, "sudo": true,
	"nice": true, "ionice": true, "nohup": true, "setsid": true, "chroot": true, "chpst": true,
	"python": true, "python2": true, "python3": true, "perl": true, "ruby": true, "node": true,
	"java": true, "php": true, "lua": true, "tclsh": true, "sysctl": true, "ip": true, "ifconfig": true,
	"hostname": true, "date": true, "stty": true, "sync": true, "udevadm": true, "mdev": true,
}

// programVars are variable names (lower case) holding the daemon's path.
var programVars = map[string]bool{
	"daemon": true, "command": true, "exec": true, "prog": true, "program": true,
	"bin": true, "binary": true, "executable": true, "daemon_bin": true, "daemon_path": true,
}

// commandPrefixes may stand before a command word without being one.
var commandPrefixes = map[string]bool{
	"exec": true, "then": true, "do": true, "else": true, "elif": true, "if": true,
	"while": true, "until": true, "!": true, "{": true, "time": true, "nohup": true, "setsid": true,
}

// ParseScript reads the text of the init script called name.
func ParseScript(name, text string) ScriptFacts {
	p := scriptParser{vars: map[string]string{
		// What openrc-run sets before it sources a script.
		"RC_SVCNAME": name, "SVCNAME": name, "RC_PREFIX": "",
		"RC_SVCDIR": "/run/openrc",
	}, seen: map[string]bool{}}
	text = strings.ReplaceAll(text, "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		p.line(line)
	}
	return p.facts
}

type scriptParser struct {
	vars  map[string]string
	facts ScriptFacts
	seen  map[string]bool
}

func (p *scriptParser) add(list *[]string, kind, v string) {
	if !strings.HasPrefix(v, "/") || strings.Contains(v, unknownMark) || strings.ContainsAny(v, "*?[ \t") {
		return
	}
	v = path.Clean(v)
	if v == "/" || p.seen[kind+v] {
		return
	}
	p.seen[kind+v] = true
	*list = append(*list, v)
}

func (p *scriptParser) pidfile(v string) { p.add(&p.facts.Pidfiles, "p", v) }

func (p *scriptParser) executable(v string) {
	base := path.Base(v)
	if notDaemons[base] || strings.HasPrefix(v, "/etc/") || strings.HasPrefix(v, "/lib/lsb/") ||
		strings.HasPrefix(v, "/proc/") || strings.HasPrefix(v, "/dev/") || strings.HasSuffix(v, ".pid") {
		return
	}
	p.add(&p.facts.Executables, "x", v)
}

// word is one shell word after expansion; sep marks a command separator.
type word struct {
	text string
	sep  bool
}

// line handles one line word by word: each word is expanded only once
// the words before it took effect (A=/x; B=$A/y.pid), as sh does.
func (p *scriptParser) line(line string) {
	cmdStart := true
	cmd := ""
	var pending func(string) // an option waiting for its value
	p.split(line, func(w word) {
		if w.sep {
			cmdStart, cmd, pending = true, "", nil
			return
		}
		if pending != nil {
			pending(w.text)
			pending = nil
		}
		for _, m := range pidPathRE.FindAllStringIndex(w.text, -1) {
			// A path glued to what precedes it is the tail of another
			// ("$UNSET/x.pid", "run/x.pid"): not a path of its own.
			if m[0] > 0 && (isPathByte(w.text[m[0]-1]) || w.text[m[0]-1] == unknownMark[0]) {
				continue
			}
			p.pidfile(w.text[m[0]:m[1]])
		}
		if cmdStart {
			if name, val, ok := assignment(w.text); ok {
				p.assign(name, val)
				return // further words are still at command position
			}
			if commandPrefixes[w.text] || w.text == "local" || w.text == "export" || w.text == "readonly" {
				return
			}
			cmdStart = false
			cmd = path.Base(w.text)
			if strings.HasPrefix(w.text, "/") {
				p.executable(w.text)
			}
			return
		}
		opt, val, hasVal := strings.Cut(w.text, "=")
		switch {
		case opt == "--pidfile" || opt == "--pid-file" || opt == "-pidfile":
			if hasVal {
				p.pidfile(val)
			} else {
				pending = p.pidfile
			}
		case w.text == "-p" && pidOptionCommands[cmd]:
			pending = p.pidfile
		case (opt == "--exec" || opt == "--startas") && cmd == "start-stop-daemon":
			if hasVal {
				p.executable(val)
			} else {
				pending = p.executable
			}
		case (w.text == "-x" || w.text == "-a") && execOptionCommands[cmd]:
			pending = p.executable
		case (w.text == "-S" || w.text == "--start") && cmd == "supervise-daemon":
			pending = p.executable
		}
	})
}

// assignment splits NAME=VALUE.
func assignment(w string) (name, val string, ok bool) {
	name, val, ok = strings.Cut(w, "=")
	if !ok || !isName(name) {
		return "", "", false
	}
	return name, val, true
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func (p *scriptParser) assign(name, val string) {
	p.vars[name] = val
	lower := strings.ToLower(name)
	switch {
	case strings.Contains(lower, "pidfile") || strings.Contains(lower, "pid_file") ||
		lower == "pid" || strings.HasSuffix(lower, "_pid"):
		p.pidfile(val)
	case programVars[lower] || strings.HasSuffix(lower, "_bin") || strings.HasSuffix(lower, "_daemon") ||
		strings.HasSuffix(lower, "_exec"):
		p.executable(val)
	}
}

// split cuts a line into words and separators, honouring quotes,
// backslashes and comments roughly as sh does, and hands each to emit
// as soon as it is complete, expanded with the variables of that moment.
func (p *scriptParser) split(line string, emit func(word)) {
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			emit(word{text: cur.String()})
		}
		cur.Reset()
		inWord = false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			flush()
		case c == '#' && !inWord:
			flush()
			return
		case c == ';' || c == '&' || c == '|' || c == '(' || c == ')':
			flush()
			emit(word{sep: true})
		case c == '`':
			// Command substitution: its value is unknown; its text may
			// still name a pidfile, which the caller finds in the word.
			end := strings.IndexByte(line[i+1:], '`')
			if end < 0 {
				end = len(line) - i - 1
			}
			cur.WriteString(unknownMark + line[i+1:i+1+end] + unknownMark)
			inWord = true
			i += end + 1
		case c == '\\':
			if i+1 < len(line) {
				i++
				cur.WriteByte(line[i])
			}
			inWord = true
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				end = len(line) - i - 1
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case c == '"':
			j := i + 1
			var inner strings.Builder
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' && j+1 < len(line) && strings.IndexByte("\"\\$`", line[j+1]) >= 0 {
					inner.WriteByte('\\')
					inner.WriteByte(line[j+1])
					j += 2
					continue
				}
				inner.WriteByte(line[j])
				j++
			}
			cur.WriteString(p.expand(inner.String()))
			inWord = true
			i = j
		case c == '$':
			n := p.dollarLen(line[i:])
			cur.WriteString(p.expand(line[i : i+n]))
			inWord = true
			i += n - 1
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
}

// dollarLen is the length of the expansion starting at s[0] == '$'.
func (p *scriptParser) dollarLen(s string) int {
	if len(s) < 2 {
		return 1
	}
	switch s[1] {
	case '{':
		if end := strings.IndexByte(s, '}'); end > 0 {
			return end + 1
		}
		return len(s)
	case '(':
		depth := 0
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(s)
	}
	i := 1
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || i > 1 && s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i == 1 {
		return 2 // $1, $@, $$, $?: one character
	}
	return i
}

// expand expands $NAME, ${NAME} and ${NAME<op>word} in s (a double-quoted
// string or a bare $ form); backslash escapes are resolved.
func (p *scriptParser) expand(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			b.WriteByte(s[i])
			continue
		}
		if c != '$' {
			b.WriteByte(c)
			continue
		}
		n := p.dollarLen(s[i:])
		b.WriteString(p.param(s[i : i+n]))
		i += n - 1
	}
	return b.String()
}

// param is the value of one $ form; unknownMark when it cannot be known.
func (p *scriptParser) param(s string) string {
	if len(s) < 2 {
		return s
	}
	if s[1] == '(' {
		// $(...): unknown value, but keep the text so a pidfile it reads
		// (kill $(cat /run/x.pid)) is still seen.
		return unknownMark + s + unknownMark
	}
	body := strings.TrimPrefix(s[1:], "{")
	braced := len(body) < len(s)-1
	body = strings.TrimSuffix(body, "}")
	if !braced {
		if v, ok := p.vars[body]; ok {
			return v
		}
		return unknownMark
	}
	i := 0
	for i < len(body) && (body[i] == '_' || body[i] >= 'a' && body[i] <= 'z' || body[i] >= 'A' && body[i] <= 'Z' || i > 0 && body[i] >= '0' && body[i] <= '9') {
		i++
	}
	name, op := body[:i], body[i:]
	v, set := p.vars[name]
	if name == "" {
		return unknownMark
	}
	switch {
	case op == "":
		if !set {
			return unknownMark
		}
		return v
	case strings.HasPrefix(op, ":-") || strings.HasPrefix(op, ":="):
		if set && v != "" {
			return v
		}
		return p.expand(op[2:])
	case strings.HasPrefix(op, "-") || strings.HasPrefix(op, "="):
		if set {
			return v
		}
		return p.expand(op[1:])
	case strings.HasPrefix(op, ":+"):
		if set && v != "" {
			return p.expand(op[2:])
		}
		return ""
	case strings.HasPrefix(op, "%") || strings.HasPrefix(op, "#"):
		if !set {
			return unknownMark
		}
		pat := strings.TrimLeft(op, op[:1])
		pat = p.expand(pat)
		if strings.ContainsAny(pat, "*?[") || strings.Contains(pat, unknownMark) {
			return unknownMark
		}
		if op[0] == '%' {
			return strings.TrimSuffix(v, pat)
		}
		return strings.TrimPrefix(v, pat)
	}
	return unknownMark
}
