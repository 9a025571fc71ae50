package cli

import (
	"flag"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a duration the way admins type one: bare seconds
// ("90", "1.5", as `netplan try --timeout 120` and `timeout 90` take
// them) or Go's units ("90s", "2m", "1m30s"). Negative durations are
// refused: every duration rootswap takes is a wait or a bound.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty duration: give seconds (90) or a unit (90s, 2m)")
	}
	if isSeconds(t) {
		sec, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		if sec >= math.MaxInt64/float64(time.Second) {
			return 0, fmt.Errorf("duration %q: too long", s)
		}
		return time.Duration(sec * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("duration %q: give seconds (90) or a unit (90s, 2m, 1h)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return d, nil
}

// isSeconds: digits with at most one decimal point, nothing else (no
// sign, exponent, "inf" or "nan", which ParseFloat would take).
func isSeconds(s string) bool {
	digits, dots := 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}

// Duration is a flag.Value for ParseDuration. Its String is Go's form
// ("2m0s"), which ParseDuration reads back.
type Duration time.Duration

// Set parses s.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d *Duration) String() string { return time.Duration(*d).String() }

// DurationFlag defines a duration flag that takes bare seconds as well as
// Go's units; every duration flag of every applet is one.
func DurationFlag(fs *flag.FlagSet, name string, def time.Duration) *time.Duration {
	p := new(time.Duration)
	*p = def
	fs.Var((*Duration)(p), name, "")
	return p
}
