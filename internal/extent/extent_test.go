package extent

import (
	"reflect"
	"testing"
)

func TestNormalize(t *testing.T) {
	got := Normalize([]Extent{{100, 10}, {0, 10}, {10, 5}, {105, 20}, {50, 0}, {200, 1}})
	want := []Extent{{0, 15}, {100, 25}, {200, 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Normalize = %v, want %v", got, want)
	}
	if got, want := Total(want), int64(41); got != want {
		t.Errorf("Total = %d, want %d", got, want)
	}
}
