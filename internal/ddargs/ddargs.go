// Package ddargs parses dd's operands the way GNU coreutils 9 does
// (name=value, numbers with GNU's suffixes and x multiplication) plus
// rootswap's own (blocks=, backup=, backup-level=, verify=), and formats
// dd's closing statistics exactly as GNU prints them.
package ddargs

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Config is a parsed dd command line.
type Config struct {
	If, Of   string // "" means stdin / stdout
	IBS, OBS int64
	// BS is true when bs= was given: input blocks are written as they
	// were read, without reblocking to obs.
	BS bool
	// Count is the number of input blocks (bytes with CountBytes) to
	// copy; -1 means to the end.
	Count      int64
	Skip, Seek int64
	Status     string // "", "none", "noxfer", "progress"

	Conv  Conv
	IFlag IFlag
	OFlag OFlag

	// rootswap extensions.
	Blocks        string // "", "all", "used", "auto"
	Backup        string
	BackupLevel   int // 0 means the default
	Verify        bool
	AllowRWSource bool
	// Direct is the engine's O_DIRECT choice: "" (its default), "yes"
	// or "no". iflag=direct and oflag=direct also turn it on.
	Direct string
}

// Conv holds conv= symbols.
type Conv struct {
	Notrunc, Fsync, Fdatasync, Sparse, Excl, Nocreat bool
}

// IFlag holds iflag= symbols.
type IFlag struct {
	Direct, Fullblock, SkipBytes, CountBytes bool
}

// OFlag holds oflag= symbols.
type OFlag struct {
	Direct, Sync, Dsync, SeekBytes bool
}

// Extensions reports whether any rootswap-only operand is in use.
func (c *Config) Extensions() bool {
	return (c.Blocks != "" && c.Blocks != "all") || c.Backup != "" || c.Verify
}

// SkipBytes is where reading starts.
func (c *Config) SkipBytes() int64 {
	if c.IFlag.SkipBytes {
		return c.Skip
	}
	return mulSat(c.Skip, c.IBS)
}

// SeekBytes is where writing starts.
func (c *Config) SeekBytes() int64 {
	if c.OFlag.SeekBytes {
		return c.Seek
	}
	return mulSat(c.Seek, c.OBS)
}

// CountBytes is how much to read at most, -1 for all.
func (c *Config) CountBytes() int64 {
	if c.Count < 0 || c.IFlag.CountBytes {
		return c.Count
	}
	return mulSat(c.Count, c.IBS)
}

func mulSat(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// ErrInvalid wraps every parse error; the message is GNU's.
var ErrInvalid = errors.New("invalid dd operand")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%s%w", fmt.Sprintf(format, args...), errSilent{ErrInvalid})
}

// errSilent wraps a sentinel without adding to the message.
type errSilent struct{ error }

func (errSilent) Error() string   { return "" }
func (e errSilent) Unwrap() error { return e.error }

// Parse parses dd operands. Defaults are GNU's: stdin to stdout in
// 512-byte blocks.
func Parse(operands []string) (Config, error) {
	c := Config{IBS: 512, OBS: 512, Count: -1}
	var bs int64
	for _, op := range operands {
		if op == "--allow-rw-source" || op == "allow-rw-source" {
			c.AllowRWSource = true
			continue
		}
		name, val, ok := strings.Cut(op, "=")
		if !ok {
			return c, invalid("unrecognized operand %s", quote(op))
		}
		switch name {
		case "if":
			c.If = val
		case "of":
			c.Of = val
		case "conv":
			if err := symbols(val, "conversion", map[string]*bool{
				"notrunc": &c.Conv.Notrunc, "fsync": &c.Conv.Fsync, "fdatasync": &c.Conv.Fdatasync,
				"sparse": &c.Conv.Sparse, "excl": &c.Conv.Excl, "nocreat": &c.Conv.Nocreat,
			}); err != nil {
				return c, err
			}
		case "iflag":
			if err := symbols(val, "input flag", map[string]*bool{
				"direct": &c.IFlag.Direct, "fullblock": &c.IFlag.Fullblock,
				"skip_bytes": &c.IFlag.SkipBytes, "count_bytes": &c.IFlag.CountBytes,
			}); err != nil {
				return c, err
			}
		case "oflag":
			if err := symbols(val, "output flag", map[string]*bool{
				"direct": &c.OFlag.Direct, "sync": &c.OFlag.Sync, "dsync": &c.OFlag.Dsync,
				"seek_bytes": &c.OFlag.SeekBytes,
			}); err != nil {
				return c, err
			}
		case "status":
			switch val {
			case "none", "noxfer", "progress":
				c.Status = val
			default:
				return c, invalid("invalid status level: %s", quote(val))
			}
		case "blocks":
			switch val {
			case "used", "all", "auto":
				c.Blocks = val
			default:
				return c, invalid("invalid blocks: %s (used, all or auto)", quote(val))
			}
		case "backup":
			if val == "" {
				return c, invalid("backup= needs a file name")
			}
			c.Backup = val
		case "backup-level":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 22 {
				return c, invalid("invalid backup-level: %s (1..19)", quote(val))
			}
			c.BackupLevel = n
		case "direct":
			if val != "yes" && val != "no" {
				return c, invalid("invalid direct: %s (yes or no)", quote(val))
			}
			c.Direct = val
		case "verify":
			switch val {
			case "yes":
				c.Verify = true
			case "no":
				c.Verify = false
			default:
				return c, invalid("invalid verify: %s (yes or no)", quote(val))
			}
		case "bs", "ibs", "obs", "skip", "iseek", "seek", "oseek", "count":
			n, err := ParseNumber(val)
			hasB := strings.Contains(val, "B")
			min := int64(0)
			if name == "bs" || name == "ibs" || name == "obs" {
				min = 1
				if err == nil && n > maxBlockSize {
					err = errRange
				}
			}
			if err != nil || n < min {
				return c, invalid("invalid number: %s", quote(val))
			}
			switch name {
			case "bs":
				bs = n
			case "ibs":
				c.IBS = n
			case "obs":
				c.OBS = n
			case "skip", "iseek":
				c.Skip = n
				c.IFlag.SkipBytes = c.IFlag.SkipBytes || hasB
			case "seek", "oseek":
				c.Seek = n
				c.OFlag.SeekBytes = c.OFlag.SeekBytes || hasB
			case "count":
				c.Count = n
				c.IFlag.CountBytes = c.IFlag.CountBytes || hasB
			}
		default:
			return c, invalid("unrecognized operand %s", quote(op))
		}
	}
	if bs > 0 {
		c.IBS, c.OBS, c.BS = bs, bs, true
	}
	if c.Blocks == "used" && (c.Skip != 0 || c.Seek != 0 || c.Count >= 0) {
		return c, invalid("blocks=used copies a whole filesystem: skip=, seek= and count= do not apply")
	}
	return c, nil
}

// maxBlockSize is what GNU dd accepts for a block size on 64-bit Linux
// (the buffer must be allocatable: it says "memory exhausted" later; we
// cap it so that a typo cannot ask for exabytes).
const maxBlockSize = 1 << 40

var errRange = errors.New("out of range")

func symbols(val, what string, known map[string]*bool) error {
	for _, s := range strings.Split(val, ",") {
		p, ok := known[s]
		if !ok {
			return invalid("invalid %s: %s", what, quote(s))
		}
		*p = true
	}
	return nil
}

// quote is GNU's 'x' quoting for the ASCII case.
func quote(s string) string { return "'" + s + "'" }

// ParseNumber parses a dd number: decimal digits with an optional suffix
// (c=1, w=2, b=512, kB=1000, K=KiB=1024, MB=1000², M=MiB=1024², and so on
// through E, Z, Y, R, Q), and products with x ("2x512", "1Kx4"). A bare
// suffix counts as 1 of it ("K" is 1024), as in GNU.
func ParseNumber(s string) (int64, error) {
	n, rest, err := parseFactor(s)
	if err != nil {
		return 0, err
	}
	if rest == "" {
		return n, nil
	}
	if rest[0] != 'x' {
		return 0, fmt.Errorf("invalid suffix in %q", s)
	}
	m, err := ParseNumber(rest[1:])
	if err != nil {
		return 0, err
	}
	hi, lo := bits.Mul64(uint64(n), uint64(m))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, errRange
	}
	return int64(lo), nil
}

const suffixLetters = "bcEGkKMPQRTwYZ"

// parseFactor reads one number with its suffixes and returns what is left.
func parseFactor(s string) (int64, string, error) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] >= '\t' && s[i] <= '\r') {
		i++
	}
	if i < len(s) && s[i] == '+' {
		i++
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	var n uint64 = 1
	if j == i {
		if j == len(s) || !strings.ContainsRune(suffixLetters, rune(s[j])) {
			return 0, "", fmt.Errorf("not a number: %q", s)
		}
	} else {
		var err error
		if n, err = strconv.ParseUint(s[i:j], 10, 64); err != nil {
			return 0, "", errRange
		}
	}
	rest := s[j:]
	if rest == "" || !strings.ContainsRune(suffixLetters, rune(rest[0])) {
		if n > math.MaxInt64 {
			return 0, "", errRange
		}
		return int64(n), rest, nil
	}
	base := uint64(1024)
	used := 1
	switch {
	case strings.HasPrefix(rest[1:], "iB"):
		used = 3
	case strings.HasPrefix(rest[1:], "B"), strings.HasPrefix(rest[1:], "D"):
		base, used = 1000, 2
	}
	var mult uint64
	switch rest[0] {
	case 'b':
		mult = 512
	case 'c':
		mult = 1
	case 'w':
		mult = 2
	default:
		power := strings.IndexByte("kMGTPEZYRQ", rest[0]) + 1
		if rest[0] == 'K' {
			power = 1
		}
		mult = 1
		for range power {
			hi, lo := bits.Mul64(mult, base)
			if hi != 0 {
				return 0, "", errRange
			}
			mult = lo
		}
	}
	hi, lo := bits.Mul64(n, mult)
	if hi != 0 || lo > math.MaxInt64 {
		return 0, "", errRange
	}
	return int64(lo), rest[used:], nil
}
