package fstools

import "strings"

// e2fsckBits are e2fsck's exit status bits, from e2fsck(8).
var e2fsckBits = []struct {
	bit  int
	text string
}{
	{1, "filesystem errors corrected"},
	{2, "filesystem errors corrected, system should be rebooted"},
	{4, "filesystem errors left uncorrected"},
	{8, "operational error"},
	{16, "usage or syntax error"},
	{32, "checking cancelled by user request"},
	{128, "shared-library error"},
}

// E2fsckMeaning says what an e2fsck (or fsck) exit status means: the
// bits are OR-ed, so several may be named. Fixed is true for 1 and 2
// alone (the filesystem is consistent now).
func E2fsckMeaning(code int) (meaning string, fixed bool) {
	if code == 0 {
		return "no errors", false
	}
	var words []string
	rest := code
	for _, b := range e2fsckBits {
		if code&b.bit != 0 {
			words = append(words, b.text)
			rest &^= b.bit
		}
	}
	if rest != 0 || code < 0 {
		words = append(words, "unknown status bits")
	}
	return strings.Join(words, "; "), code&^3 == 0
}

// XfsRepairMeaning explains xfs_repair's status; with -n (dryRun) 1 means
// corruption was found, otherwise 1 is a runtime error, 2 a dirty log
// and 4 (with -e) problems that were fixed.
func XfsRepairMeaning(dryRun bool) meaningFunc {
	return func(code int) (string, bool) {
		switch {
		case code == 0:
			return "no corruption", false
		case code == 1 && dryRun:
			return "filesystem corruption detected (nothing was changed: -n)", false
		case code == 1:
			return "runtime error; run xfs_repair again", false
		case code == 2:
			return "the log is dirty: mount and unmount the filesystem to replay it, then check again (xfs_repair -L zeroes the log and loses the latest changes)", false
		case code == 4:
			return "filesystem problems found and fixed", true
		}
		return "unknown status", false
	}
}

// btrfsCheckMeaning: btrfs check only says zero or not.
func btrfsCheckMeaning(code int) (string, bool) {
	return "errors found, or the check could not run (its messages above say which)", false
}
