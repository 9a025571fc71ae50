package mountops

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestOption(t *testing.T) {
	for _, tc := range []struct {
		word string
		want OptionWord
		ok   bool
	}{
		{"ro", OptionWord{Set: unix.MS_RDONLY}, true},
		{"rw", OptionWord{Clear: unix.MS_RDONLY}, true},
		{"rbind", OptionWord{Set: unix.MS_BIND | unix.MS_REC}, true},
		{"defaults", OptionWord{}, true},
		{"private", OptionWord{Set: unix.MS_PRIVATE, Propagate: true}, true},
		{"rshared", OptionWord{Set: unix.MS_SHARED | unix.MS_REC, Propagate: true}, true},
		{"rslave", OptionWord{Set: unix.MS_SLAVE | unix.MS_REC, Propagate: true}, true},
		{"unbindable", OptionWord{Set: unix.MS_UNBINDABLE, Propagate: true}, true},
		{"size=1M", OptionWord{}, false},
		{"errors=remount-ro", OptionWord{}, false},
	} {
		got, ok := Option(tc.word)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Option(%q) = %+v, %v; want %+v, %v", tc.word, got, ok, tc.want, tc.ok)
		}
	}
}
