// Package ddargs parses dd's operands the way GNU coreutils 9.1 does
// (name=value, numbers with GNU's suffixes and one x product, symbol
// lists) plus rootswap's own (blocks=, backup=, backup-level=, verify=,
// direct=), and formats dd's closing statistics exactly as GNU prints
// them.
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
	// CBS is cbs=; it only matters to conversions rootswap refuses.
	CBS int64
	// Count is count= as given (blocks, or bytes with IFlag.CountBytes);
	// -1 means to the end.
	Count      int64
	Skip, Seek int64
	Status     string // "", "none", "noxfer", "progress"

	Conv  Conv
	IFlag Flags
	OFlag Flags

	// Warnings are GNU's parse-time warnings ("'0x' is a zero
	// multiplier"), to be printed before anything else.
	Warnings []string

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

// Conv holds the conv= symbols rootswap implements.
type Conv struct {
	Noerror, Sync, Notrunc, Sparse, Fsync, Fdatasync, Excl, Nocreat bool
}

// Flags holds iflag= or oflag= symbols: GNU accepts every one in both
// lists (a flag that means nothing on one side is ignored there), except
// fullblock in oflag=.
type Flags struct {
	Append, Direct, Directory, Dsync, Noatime, Nocache, Noctty, Nofollow, Nonblock, Sync bool
	Fullblock, CountBytes, SkipBytes, SeekBytes                                          bool
}

// Extensions reports whether any rootswap-only operand is in use.
func (c *Config) Extensions() bool {
	return (c.Blocks != "" && c.Blocks != "all") || c.Backup != "" || c.Verify
}

// SkipRecords is GNU's split of skip= into ibs records and extra bytes.
func (c *Config) SkipRecords() (records, bytes int64) {
	if c.IFlag.SkipBytes && c.Skip != 0 {
		return c.Skip / c.IBS, c.Skip % c.IBS
	}
	return c.Skip, 0
}

// SeekRecords is GNU's split of seek= into obs records and extra bytes.
func (c *Config) SeekRecords() (records, bytes int64) {
	if c.OFlag.SeekBytes && c.Seek != 0 {
		return c.Seek / c.OBS, c.Seek % c.OBS
	}
	return c.Seek, 0
}

// CountRecords is GNU's split of count= into ibs records and a last
// partial read of bytes; records is math.MaxInt64 without count=.
func (c *Config) CountRecords() (records, bytes int64) {
	switch {
	case c.Count < 0:
		return math.MaxInt64, 0
	case c.IFlag.CountBytes:
		return c.Count / c.IBS, c.Count % c.IBS
	}
	return c.Count, 0
}

// SkipBytes is where reading starts, in bytes (saturated).
func (c *Config) SkipBytes() int64 {
	r, b := c.SkipRecords()
	return addSat(mulSat(r, c.IBS), b)
}

// SeekBytes is where writing starts, in bytes (saturated).
func (c *Config) SeekBytes() int64 {
	r, b := c.SeekRecords()
	return addSat(mulSat(r, c.OBS), b)
}

// CountBytes is how much to read at most, -1 for all.
func (c *Config) CountBytes() int64 {
	if c.Count < 0 {
		return -1
	}
	r, b := c.CountRecords()
	return addSat(mulSat(r, c.IBS), b)
}

func mulSat(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// ErrInvalid is matched (errors.Is) by every parse error.
var ErrInvalid = errors.New("invalid dd operand")

// Error is a refused command line. Msg is GNU's text (without "dd: ");
// Try says GNU follows it with "Try 'dd --help' for more information.".
type Error struct {
	Msg string
	Try bool
}

func (e *Error) Error() string        { return e.Msg }
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func invalid(try bool, format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), Try: try}
}

var (
	errRange  = errors.New("Value too large for defined data type")
	errSyntax = errors.New("invalid number")
)

// unsupportedConvs are GNU dd's conversions rootswap does not implement:
// refused by name rather than taken for typos.
func unsupportedConvs(s string) bool {
	switch s {
	case "ascii", "ebcdic", "ibm", "block", "unblock", "lcase", "ucase", "swab":
		return true
	}
	return false
}

// maxBlockSize is GNU's limit for ibs/obs/bs on 64-bit Linux
// (2^63 - 2); whether a buffer that large can be had is found out
// when it is allocated, as in GNU ("memory exhausted").
const maxBlockSize = math.MaxInt64 - 1

// Parse parses dd operands. Defaults are GNU's: stdin to stdout in
// 512-byte blocks. On error the Config holds what was parsed so far,
// its Warnings included.
func Parse(operands []string) (Config, error) {
	c := Config{Count: -1}
	var bs int64
	var skipB, seekB, countB bool
	for _, op := range operands {
		if op == "--allow-rw-source" || op == "allow-rw-source" {
			c.AllowRWSource = true
			continue
		}
		name, val, ok := strings.Cut(op, "=")
		if !ok {
			return c, invalid(true, "unrecognized operand %s", Quote(op))
		}
		switch name {
		case "if":
			c.If = val
			continue
		case "of":
			c.Of = val
			continue
		case "conv":
			if err := c.conv(val); err != nil {
				return c, err
			}
			continue
		case "iflag":
			if err := flags(val, &c.IFlag, "invalid input flag"); err != nil {
				return c, err
			}
			continue
		case "oflag":
			if err := flags(val, &c.OFlag, "invalid output flag"); err != nil {
				return c, err
			}
			continue
		case "status":
			// Exclusive: the last symbol wins.
			for _, s := range strings.Split(val, ",") {
				switch s {
				case "none", "noxfer", "progress":
					c.Status = s
				default:
					return c, invalid(true, "invalid status level: %s", Quote(s))
				}
			}
			continue
		case "blocks":
			switch val {
			case "used", "all", "auto":
				c.Blocks = val
			default:
				return c, invalid(false, "invalid blocks: %s (used, all or auto)", Quote(val))
			}
			continue
		case "backup":
			if val == "" {
				return c, invalid(false, "backup= needs a file name")
			}
			c.Backup = val
			continue
		case "backup-level":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 22 {
				return c, invalid(false, "invalid backup-level: %s (1..19)", Quote(val))
			}
			c.BackupLevel = n
			continue
		case "direct":
			if val != "yes" && val != "no" {
				return c, invalid(false, "invalid direct: %s (yes or no)", Quote(val))
			}
			c.Direct = val
			continue
		case "verify":
			switch val {
			case "yes":
				c.Verify = true
			case "no":
				c.Verify = false
			default:
				return c, invalid(false, "invalid verify: %s (yes or no)", Quote(val))
			}
			continue
		}
		// GNU parses the value before it looks at the name: "foo=0x1"
		// warns about the multiplier, then refuses the operand.
		n, e, zero := evalNumber(val)
		if zero {
			c.Warnings = append(c.Warnings, fmt.Sprintf("warning: %s is a zero multiplier; use %s if that is intended", Quote("0x"), Quote("00x")))
		}
		hasB := strings.Contains(val, "B")
		nMin, nMax := int64(0), int64(math.MaxInt64)
		switch name {
		case "bs", "ibs", "obs":
			nMin, nMax = 1, maxBlockSize
		case "cbs":
			nMin = 1
		case "skip", "iseek", "seek", "oseek", "count":
		default:
			return c, invalid(true, "unrecognized operand %s", Quote(op))
		}
		if e == numOK && n < nMin {
			e = numInvalid
		} else if e == numOK && n > nMax {
			e = numOverflow
		}
		if e != numOK {
			if e == numOverflow {
				return c, invalid(false, "invalid number: %s: %v", Quote(val), errRange)
			}
			return c, invalid(false, "invalid number: %s", Quote(val))
		}
		switch name {
		case "bs":
			bs = n
		case "ibs":
			c.IBS = n
		case "obs":
			c.OBS = n
		case "cbs":
			c.CBS = n
		case "skip", "iseek":
			c.Skip, skipB = n, hasB
		case "seek", "oseek":
			c.Seek, seekB = n, hasB
		case "count":
			c.Count, countB = n, hasB
		}
	}
	if bs > 0 {
		c.IBS, c.OBS, c.BS = bs, bs, true
	}
	if c.IBS == 0 {
		c.IBS = 512
	}
	if c.OBS == 0 {
		c.OBS = 512
	}
	if c.OFlag.Fullblock {
		return c, invalid(true, "invalid output flag: %s", Quote("fullblock"))
	}
	c.IFlag.SkipBytes = c.IFlag.SkipBytes || skipB
	c.IFlag.CountBytes = c.IFlag.CountBytes || countB
	c.OFlag.SeekBytes = c.OFlag.SeekBytes || seekB
	if c.Conv.Excl && c.Conv.Nocreat {
		return c, invalid(false, "cannot combine excl and nocreat")
	}
	if (c.IFlag.Direct && c.IFlag.Nocache) || (c.OFlag.Direct && c.OFlag.Nocache) {
		return c, invalid(false, "cannot combine direct and nocache")
	}
	if c.Blocks == "used" && (c.Skip != 0 || c.Seek != 0 || c.Count >= 0) {
		return c, invalid(false, "blocks=used copies a whole filesystem: skip=, seek= and count= do not apply")
	}
	return c, nil
}

func (c *Config) conv(val string) error {
	known := map[string]*bool{
		"noerror": &c.Conv.Noerror, "sync": &c.Conv.Sync, "notrunc": &c.Conv.Notrunc,
		"sparse": &c.Conv.Sparse, "fsync": &c.Conv.Fsync, "fdatasync": &c.Conv.Fdatasync,
		"excl": &c.Conv.Excl, "nocreat": &c.Conv.Nocreat,
	}
	for _, s := range strings.Split(val, ",") {
		if p, ok := known[s]; ok {
			*p = true
			continue
		}
		if unsupportedConvs(s) {
			return invalid(false, "conv=%s is not supported: rootswap dd has none of GNU dd's character conversions (ascii, ebcdic, ibm, block, unblock, lcase, ucase, swab)", s)
		}
		return invalid(true, "invalid conversion: %s", Quote(s))
	}
	return nil
}

// flags parses an iflag= or oflag= list. binary, cio, nolinks and text
// are 0 on Linux, which GNU reports as invalid.
func flags(val string, f *Flags, what string) error {
	known := map[string]*bool{
		"append": &f.Append, "direct": &f.Direct, "directory": &f.Directory, "dsync": &f.Dsync,
		"noatime": &f.Noatime, "nocache": &f.Nocache, "noctty": &f.Noctty, "nofollow": &f.Nofollow,
		"nonblock": &f.Nonblock, "sync": &f.Sync, "fullblock": &f.Fullblock,
		"count_bytes": &f.CountBytes, "skip_bytes": &f.SkipBytes, "seek_bytes": &f.SeekBytes,
	}
	for _, s := range strings.Split(val, ",") {
		p, ok := known[s]
		if !ok {
			return invalid(true, "%s: %s", what, Quote(s))
		}
		*p = true
	}
	return nil
}

// Quote quotes s as GNU dd does in the C locale: 'x', with a single quote
// inside written as \'.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}
