package ddargs

import (
	"math"
	"math/bits"
	"strings"
)

// Numbers in dd operands, as GNU dd 9.1 accepts them (its manual, and
// TestParseNumberLikeGNU, which asks /usr/bin/dd):
//
//	number  = factor [ "x" factor ]         at most one product
//	factor  = [space] ["+"] digits [unit]   or a unit alone, with nothing before it
//	unit    = "c" | "w" | "b"               1, 2, 512
//	        | P [ "B" | "D" | "iB" ]        P = k K M G T P E Z Y: 1024^n, 1000^n, 1024^n
//
// The first factor may end in one more "B" (bytes: "100B", "cB",
// "1KDB"); the whole number may hold one "B" only. A first factor too
// large for 64 bits is reported as too large even when junk follows it;
// a zero factor makes the product zero however large the other one is.

type numStatus int

const (
	numOK numStatus = iota
	numInvalid
	numOverflow
)

// ParseNumber parses a dd number into a non-negative int64.
func ParseNumber(s string) (int64, error) {
	n, st, _ := evalNumber(s)
	switch st {
	case numOverflow:
		return 0, errRange
	case numInvalid:
		return 0, errSyntax
	}
	return n, nil
}

// factor is one operand of the product: its value, whether that value
// overflowed 64 bits, and the text after it.
type factor struct {
	v    uint64
	over bool
	rest string
}

// evalNumber returns the number, its status, and whether it starts with
// "0x", which GNU dd warns about (a zero multiplier, probably meant as
// hexadecimal).
func evalNumber(s string) (int64, numStatus, bool) {
	a, ok := parseFactor(s, true)
	if !ok {
		return 0, numInvalid, false
	}
	b := factor{v: 1}
	if a.rest != "" {
		if a.rest[0] != 'x' {
			if a.over {
				return 0, numOverflow, false
			}
			return 0, numInvalid, false
		}
		if b, ok = parseFactor(a.rest[1:], false); !ok || b.rest != "" {
			return 0, numInvalid, false
		}
	}
	var v uint64
	over := false
	switch {
	case (a.v == 0 && !a.over) || (b.v == 0 && !b.over):
		v = 0
	case a.over || b.over:
		over = true
	default:
		hi, lo := bits.Mul64(a.v, b.v)
		v, over = lo, hi != 0
	}
	if over || v > math.MaxInt64 {
		return 0, numOverflow, false
	}
	if strings.Count(s, "B") > 1 {
		return 0, numInvalid, false
	}
	return int64(v), numOK, strings.HasPrefix(s, "0x")
}

// parseFactor reads one factor from the start of s. ok is false when s
// starts with no digits and no unit (or a sign, or a bare "B").
func parseFactor(s string, first bool) (factor, bool) {
	var f factor
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	if i < len(s) && s[i] == '+' {
		i++
	}
	prefixed := i > 0
	d := i
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if !f.over {
			hi, lo := bits.Mul64(f.v, 10)
			lo, carry := bits.Add64(lo, uint64(s[i]-'0'), 0)
			f.v, f.over = lo, hi != 0 || carry != 0
		}
	}
	digits := i > d
	if !digits {
		f.v = 1
		if prefixed {
			return f, false
		}
	}
	mult, n := unit(s[i:])
	if n == 0 && !digits {
		return f, false
	}
	i += n
	if first && i < len(s) && s[i] == 'B' && (digits || n > 0) {
		i++ // the "bytes" B
	}
	f.rest = s[i:]
	switch {
	case f.v == 0 && !f.over:
	case mult.over:
		f.over = true
	case !f.over:
		hi, lo := bits.Mul64(f.v, mult.v)
		f.v, f.over = lo, hi != 0
	}
	return f, true
}

// unit reads a unit suffix from the start of s: its multiplier (over
// when it does not fit 64 bits: Z and Y) and its length, 0 for none.
func unit(s string) (factor, int) {
	if s == "" {
		return factor{v: 1}, 0
	}
	switch s[0] {
	case 'c':
		return factor{v: 1}, 1
	case 'w':
		return factor{v: 2}, 1
	case 'b':
		return factor{v: 512}, 1
	}
	p := strings.IndexByte("kMGTPEZY", s[0]) + 1
	if s[0] == 'K' {
		p = 1
	}
	if p == 0 {
		return factor{v: 1}, 0
	}
	base, n := uint64(1024), 1
	switch {
	case strings.HasPrefix(s[1:], "iB"):
		n = 3
	case len(s) > 1 && (s[1] == 'B' || s[1] == 'D'):
		base, n = 1000, 2
	}
	m := factor{v: 1}
	for ; p > 0; p-- {
		hi, lo := bits.Mul64(m.v, base)
		m.v = lo
		m.over = m.over || hi != 0
	}
	return m, n
}
