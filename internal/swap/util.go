package swap

import (
	"sort"

	"github.com/dustin/go-humanize"
)

func human(n int64) string { return humanize.IBytes(uint64(n)) }

func sortStrings(s []string) { sort.Strings(s) }
