package cli

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"90", 90 * time.Second},
		{"0", 0},
		{"120", 2 * time.Minute},
		{" 45 ", 45 * time.Second},
		{"1.5", 1500 * time.Millisecond},
		{"90s", 90 * time.Second},
		{"2m", 2 * time.Minute},
		{"1m30s", 90 * time.Second},
		{"500ms", 500 * time.Millisecond},
		{"1h", time.Hour},
	} {
		got, err := ParseDuration(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "-5", "-5s", "abc", "1e3", "inf", "NaN", "5x", "1..2", ".", "+3", "99999999999999999999"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
}

// A duration flag takes bare seconds on the command line, and a bad one
// is a usage error naming what to type.
func TestDurationFlag(t *testing.T) {
	fs := FlagSet(&Env{}, "x")
	d := DurationFlag(fs, "confirm-timeout", 2*time.Minute)
	if *d != 2*time.Minute {
		t.Fatalf("default = %v", *d)
	}
	if _, err := Parse(fs, []string{"--confirm-timeout", "90"}); err != nil || *d != 90*time.Second {
		t.Errorf("--confirm-timeout 90: %v, %v", *d, err)
	}
	if _, err := Parse(fs, []string{"--confirm-timeout=2m"}); err != nil || *d != 2*time.Minute {
		t.Errorf("--confirm-timeout=2m: %v, %v", *d, err)
	}
	_, err := Parse(fs, []string{"--confirm-timeout", "soon"})
	if !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), "90s, 2m") {
		t.Errorf("--confirm-timeout soon: %v, want a usage error with examples", err)
	}
	var _ flag.Value = (*Duration)(d)
}
