package procscan

import (
	"testing"
	"time"
)

func TestZZDebug(t *testing.T) {
	for _, w := range []int{1, 2, 3} {
		best := time.Hour
		for i := 0; i < 5; i++ {
			st := time.Now()
			Scan("/proc", Options{Workers: w})
			best = min(best, time.Since(st))
		}
		t.Log(w, best)
	}
}
