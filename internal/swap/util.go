package swap

import (
	"bytes"
	"sort"

	"github.com/dustin/go-humanize"
)

func human(n int64) string { return humanize.IBytes(uint64(n)) }

func sortStrings(s []string) { sort.Strings(s) }

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
