package ddargs

import (
	"fmt"
	"math/big"
	"strconv"
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
//
// The size in parentheses lists only the figures that carry a prefix:
// none below 1000 bytes, the SI one alone below 1024.
func Transfer(bytes int64, elapsed time.Duration, progress bool) string {
	var size string
	switch {
	case bytes == 1:
		size = "1 byte"
	case bytes < 1000:
		size = strconv.FormatInt(bytes, 10) + " bytes"
	case bytes < 1024:
		size = fmt.Sprintf("%d bytes (%s)", bytes, HumanSI(bytes, false))
	default:
		size = fmt.Sprintf("%d bytes (%s, %s)", bytes, HumanSI(bytes, false), HumanSI(bytes, true))
	}
	return size + " copied, " + seconds(elapsed, progress) + ", " + rate(bytes, elapsed)
}

// seconds is the elapsed time as dd shows it: six significant digits
// in C's %g style ("58.1021 s", "3.1539e-05 s"), or whole seconds on
// the progress line.
func seconds(d time.Duration, whole bool) string {
	s := float64(d.Nanoseconds()) / 1e9
	if whole {
		return strconv.FormatFloat(s, 'f', 0, 64) + " s"
	}
	return strconv.FormatFloat(s, 'g', 6, 64) + " s"
}

// A scale is a family of unit names, one for each power of its step.
type scale struct {
	step  int64
	units []string
}

var (
	decimalUnits = scale{1000, []string{"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB", "RB", "QB"}}
	binaryUnits  = scale{1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB", "RiB", "QiB"}}
)

// HumanSI is n bytes in the largest unit of its scale (powers of 1000,
// or of 1024 when base1024) that leaves at least 1: "2.0 GB",
// "1.9 GiB", "999 B".
func HumanSI(n int64, base1024 bool) string {
	sc := decimalUnits
	if base1024 {
		sc = binaryUnits
	}
	return sc.exact(big.NewInt(n), big.NewInt(1))
}

// exact writes the ratio num/den (num >= 0, den > 0) in sc's units. A
// figure below 10 keeps one decimal, one from 10 up is whole, and a
// plain count of the base unit is whole too; ties round to even. A
// figure that rounds up to a whole step is written as 1.0 of the next
// unit.
func (sc scale) exact(num, den *big.Int) string {
	step := big.NewInt(sc.step)
	unit := new(big.Int).Set(den) // den times step^power
	power := 0
	for power < len(sc.units)-1 {
		next := new(big.Int).Mul(unit, step)
		if num.Cmp(next) < 0 {
			break
		}
		unit, power = next, power+1
	}
	if power > 0 && new(big.Int).Mul(num, big.NewInt(10)).Cmp(new(big.Int).Mul(unit, big.NewInt(100))) < 0 {
		// Below 10 of this unit: keep one decimal place.
		t := divideToEven(new(big.Int).Mul(num, big.NewInt(10)), unit)
		if t < 100 {
			return fmt.Sprintf("%d.%d %s", t/10, t%10, sc.units[power])
		}
		return "10 " + sc.units[power]
	}
	w := divideToEven(num, unit)
	if w >= sc.step && power < len(sc.units)-1 {
		return "1.0 " + sc.units[power+1]
	}
	return strconv.FormatInt(w, 10) + " " + sc.units[power]
}

// divideToEven is a/b rounded to the nearest integer, ties to even. The
// quotient fits an int64 wherever it is used: it stays below 1024
// except in the top unit.
func divideToEven(a, b *big.Int) int64 {
	q, r := new(big.Int).QuoRem(a, b, new(big.Int))
	switch r.Lsh(r, 1).Cmp(b) {
	case 1:
		q.Add(q, big.NewInt(1))
	case 0:
		if q.Bit(0) == 1 {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Int64()
}

// rate is "R unit/s" for bytes over d. GNU dd shows two kinds of
// figure. When d is a whole number of seconds, or a second a whole
// number k of d and bytes*k fits 64 unsigned bits, the rate is an exact
// ratio written like a size ("512 B/s", "1.0 kB/s"). Otherwise it is an
// extended-precision (64-bit mantissa) quotient written in kB or a
// larger unit, with one decimal while it rounds below 100 and whole
// from there ("0.3 kB/s", "10.5 kB/s", "150 kB/s", "1000 kB/s").
func rate(bytes int64, d time.Duration) string {
	ns := d.Nanoseconds()
	if ns <= 0 {
		return "Infinity B/s"
	}
	const second = int64(time.Second)
	num := new(big.Int).Mul(big.NewInt(bytes), big.NewInt(second))
	den := big.NewInt(ns)
	switch {
	case ns%second == 0:
		return decimalUnits.exact(num, den) + "/s"
	case second%ns == 0:
		if whole := new(big.Int).Quo(num, den); whole.BitLen() <= 64 {
			return decimalUnits.exact(whole, big.NewInt(1)) + "/s"
		}
	}
	const prec = 64
	v := new(big.Float).SetPrec(prec).SetInt(num)
	v.Quo(v, new(big.Float).SetPrec(prec).SetInt(den))
	thousand := new(big.Float).SetPrec(prec).SetInt64(1000)
	divisor := new(big.Float).SetPrec(prec).SetInt64(1000)
	power := 1
	for power < len(decimalUnits.units)-1 {
		next := new(big.Float).SetPrec(prec).Mul(divisor, thousand)
		if v.Cmp(next) < 0 {
			break
		}
		divisor, power = next, power+1
	}
	x := new(big.Float).SetPrec(prec).Quo(v, divisor)
	s := x.Text('f', 1)
	if len(s) > 4 { // "100.0" and up
		s = x.Text('f', 0)
	}
	return s + " " + decimalUnits.units[power] + "/s"
}
