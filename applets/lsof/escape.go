package lsof

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names and commands are printed the way lsof 4.95 prints them (its
// safestrprt and safepup), so that a file named with a newline cannot
// forge a row and one named with ESC cannot reach the terminal: C0
// controls as \b \f \n \r \t or ^X (ESC is ^[), a backslash doubled,
// DEL and other bytes as \xNN. In a UTF-8 locale a printable multibyte
// character is kept as is.

// needsEscape is whether s has a byte that is not printed as itself.
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return true
		}
	}
	return false
}

// appendName appends a NAME as lsof prints it; utf8Mode is a UTF-8
// locale (see utf8Locale).
func appendName(b []byte, s string, utf8Mode bool) []byte {
	if !needsEscape(s) {
		return append(b, s...)
	}
	for i := 0; i < len(s); {
		if utf8Mode && s[i] >= 0x80 {
			r, n := utf8.DecodeRuneInString(s[i:])
			if n > 1 {
				if printable(r) {
					b = append(b, s[i:i+n]...)
				} else {
					for k := range n {
						b = appendByte(b, s[i+k], false)
					}
				}
				i += n
				continue
			}
		}
		b = appendByte(b, s[i], false)
		i++
	}
	return b
}

// printable approximates glibc's iswprint: assigned, not a control, not
// a line or paragraph separator (format and private-use characters are
// printable there).
func printable(r rune) bool {
	return unicode.IsGraphic(r) || unicode.In(r, unicode.Cf, unicode.Co)
}

// appendByte appends one byte as lsof's safepup does; space too when
// noSpace (the COMMAND column).
func appendByte(b []byte, c byte, noSpace bool) []byte {
	switch {
	case c == ' ' && noSpace:
		return append(b, `\x20`...)
	case c >= 0x20 && c < 0x7f && c != '\\':
		return append(b, c)
	case c == '\\':
		return append(b, `\\`...)
	case c == '\b':
		return append(b, `\b`...)
	case c == '\f':
		return append(b, `\f`...)
	case c == '\n':
		return append(b, `\n`...)
	case c == '\r':
		return append(b, `\r`...)
	case c == '\t':
		return append(b, `\t`...)
	case c < 0x20:
		return append(b, '^', c+0x40)
	}
	const hex = "0123456789abcdef"
	return append(b, '\\', 'x', hex[c>>4], hex[c&15])
}

// commandWidth is the width lsof reserves for a command under +c limit
// (0: no limit). It is lsof's safestrlen, which counts the \xNN of a
// byte above 0x7f as two characters (a signed char compared with 0x20);
// the printed command is then cut to the column (commandText).
func commandWidth(cmd string, limit int) int {
	n := 0
	for i := 0; i < len(cmd); i++ {
		switch c := cmd[i]; {
		case c == ' ' || c == 0x7f:
			n += 4
		case c < 0x20 || c >= 0x80 || c == '\\':
			n += 2
		default:
			n++
		}
	}
	if limit > 0 && n > limit {
		return limit
	}
	return n
}

// commandText is the COMMAND column text: escaped byte by byte (no
// multibyte characters, spaces as \x20), cut to width without splitting
// an escape; the caller pads it.
func commandText(cmd string, width int) string {
	if !needsEscape(cmd) && !strings.Contains(cmd, " ") {
		if len(cmd) > width {
			return cmd[:width]
		}
		return cmd
	}
	var b []byte
	for i := 0; i < len(cmd); i++ {
		n := len(b)
		b = appendByte(b, cmd[i], true)
		if len(b) > width {
			b = b[:n]
			break
		}
	}
	return string(b)
}

// utf8Locale is whether the locale of the environment (LC_ALL, LC_CTYPE,
// LANG, first set wins) uses UTF-8, as lsof's setlocale would find.
func utf8Locale(getenv func(string) string) bool {
	if getenv == nil {
		return false
	}
	for _, v := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if l := getenv(v); l != "" {
			l = strings.ToLower(l)
			return strings.Contains(l, "utf-8") || strings.Contains(l, "utf8")
		}
	}
	return false
}
