package ddargs

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Counts are dd's record counters.
type Counts struct {
	InFull, InPartial   int64
	OutFull, OutPartial int64
	Bytes               int64 // bytes written
}

// Records is the two "records in/out" lines.
func (c Counts) Records() string {
	return fmt.Sprintf("%d+%d records in\n%d+%d records out\n", c.InFull, c.InPartial, c.OutFull, c.OutPartial)
}

// Transfer is GNU dd's last line without the newline:
// "2006843392 bytes (2.0 GB, 1.9 GiB) copied, 58.1021 s, 34.5 MB/s".
// progress selects the once-a-second form (whole seconds).
func Transfer(bytes int64, elapsed time.Duration, progress bool) string {
	si := HumanSI(bytes, false)
	iec := HumanSI(bytes, true)
	var rate string
	if elapsed > 0 {
		rate = humanRate(bytes, int64(elapsed)) + "/s"
	} else {
		rate = "Infinity B/s"
	}
	secs := float64(elapsed.Nanoseconds()) / 1e9 // one rounding, as C divides
	var t string
	if progress {
		t = strconv.FormatFloat(secs, 'f', 0, 64) + " s"
	} else {
		t = formatG(secs) + " s"
	}
	switch {
	case lacksPrefix(si):
		unit := "bytes"
		if bytes == 1 {
			unit = "byte"
		}
		return fmt.Sprintf("%d %s copied, %s, %s", bytes, unit, t, rate)
	case lacksPrefix(iec):
		return fmt.Sprintf("%d bytes (%s) copied, %s, %s", bytes, si, t, rate)
	default:
		return fmt.Sprintf("%d bytes (%s, %s) copied, %s, %s", bytes, si, iec, t, rate)
	}
}

// lacksPrefix is true for "999 B": a figure with no SI prefix adds
// nothing to the byte count.
func lacksPrefix(s string) bool { return len(s) >= 2 && s[len(s)-2] == ' ' }

// formatG is C's %g: six significant digits, trailing zeros dropped.
func formatG(v float64) string {
	s := strconv.FormatFloat(v, 'g', 6, 64)
	// Go writes exponents as e-05 like C, but keeps the mantissa's
	// trailing zeros in %e form; C drops them.
	if m, e, ok := strings.Cut(s, "e"); ok && strings.Contains(m, ".") {
		m = strings.TrimRight(strings.TrimRight(m, "0"), ".")
		s = m + "e" + e
	}
	return s
}

var powerLetter = "\x00KMGTPEZYRQ"

// HumanSI is gnulib's human_readable(n, human_autoscale |
// human_round_to_nearest | human_space_before_unit | human_SI | human_B
// [| human_base_1024], 1, 1): "999 B", "1.0 kB", "2.0 GB", "1.9 GiB".
func HumanSI(n int64, base1024 bool) string {
	return humanInt(uint64(n), 0, 0, base1024)
}

// humanInt is human_readable's exact integer path for amt.tenths with
// the given rounding state (0 exact, 1 below half, 2 half, 3 above).
func humanInt(amt uint64, tenths, rounding int, base1024 bool) string {
	base := uint64(1000)
	if base1024 {
		base = 1024
	}
	exponent := 0
	frac := ""
	if base <= amt {
		for {
			r10 := int((amt%base)*10) + tenths
			r2 := (r10%int(base))*2 + (rounding >> 1)
			amt /= base
			tenths = r10 / int(base)
			if r2 < int(base) {
				rounding = b2i(r2+rounding != 0)
			} else {
				rounding = 2 + b2i(int(base) < r2+rounding)
			}
			exponent++
			if !(base <= amt && exponent < len(powerLetter)-1) {
				break
			}
		}
		if amt < 10 {
			if 2 < rounding+(tenths&1) {
				tenths++
				rounding = 0
				if tenths == 10 {
					amt++
					tenths = 0
				}
			}
			if amt < 10 {
				frac = "." + strconv.Itoa(tenths)
				tenths, rounding = 0, 0
			}
		}
	}
	if 5 < tenths+b2i(0 < rounding+int(amt&1)) {
		amt++
		if amt == base && exponent < len(powerLetter)-1 {
			exponent++
			frac = ".0"
			amt = 1
		}
	}
	return strconv.FormatUint(amt, 10) + frac + suffix(exponent, base1024)
}

func suffix(exponent int, base1024 bool) string {
	s := " "
	if exponent > 0 {
		if !base1024 && exponent == 1 {
			s += "k"
		} else {
			s += string(powerLetter[exponent])
		}
		if base1024 {
			s += "i"
		}
	}
	return s + "B"
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// humanRate is human_readable(bytes, opts, 1e9, ns): bytes per second in
// SI units. gnulib computes it with integer arithmetic when one block
// size divides the other and in long double otherwise; big.Float with a
// 64-bit mantissa is the x87 long double, so the figure rounds the same.
func humanRate(bytes, ns int64) string {
	const from = 1_000_000_000
	n := uint64(bytes)
	to := uint64(ns)
	if to <= from {
		if from%to == 0 {
			mult := from / to
			if amt := n * mult; amt/mult == n {
				return humanInt(amt, 0, 0, false)
			}
		}
	} else if to%from == 0 {
		divisor := to / from
		r10 := (n % divisor) * 10
		r2 := (r10 % divisor) * 2
		rounding := 0
		if r2 < divisor {
			rounding = b2i(0 < r2)
		} else {
			rounding = 2 + b2i(divisor < r2)
		}
		return humanInt(n/divisor, int(r10/divisor), rounding, false)
	}
	// damt = n * (from / to) in long double.
	ld := func() *big.Float { return new(big.Float).SetPrec(64).SetMode(big.ToNearestEven) }
	ratio := ld().Quo(ld().SetUint64(from), ld().SetUint64(to))
	damt := ld().Mul(ld().SetUint64(n), ratio)
	e := ld().SetInt64(1)
	exponent := 0
	base := ld().SetInt64(1000)
	for {
		e.Mul(e, base)
		exponent++
		if !(ld().Mul(e, base).Cmp(damt) <= 0 && exponent < len(powerLetter)-1) {
			break
		}
	}
	damt.Quo(damt, e)
	s := damt.Text('f', 1)
	if len(s) > 4 { // 1 + len(".d") + 1 < buflen: three digits or more
		s = damt.Text('f', 0)
	}
	return s + suffix(exponent, false)
}
