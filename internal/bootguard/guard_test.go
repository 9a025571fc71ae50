package bootguard

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeSys records what the guard and the keeper did, on a fake clock.
type fakeSys struct {
	now       time.Time
	inits     map[string]bool
	did       []string
	logs      []string
	keeperOK  bool
	confirmAt time.Time // zero: never
}

func (f *fakeSys) sys() *Sys {
	return &Sys{
		Now:        func() time.Time { return f.now },
		Sleep:      func(d time.Duration) { f.now = f.now.Add(d) },
		Executable: func(p string) bool { return f.inits[p] },
		Exec: func(argv []string) error {
			f.did = append(f.did, "exec "+strings.Join(argv, " "))
			return errors.New("exec format error")
		},
		StartKeeper: func() error {
			f.did = append(f.did, "keeper")
			if !f.keeperOK {
				return errors.New("fork failed")
			}
			return nil
		},
		Reboot: func() error {
			f.did = append(f.did, "reboot at "+f.now.Format("15:04:05"))
			return errors.New("fake")
		},
		Log:       func(m string) { f.logs = append(f.logs, m) },
		Confirmed: func() bool { return !f.confirmAt.IsZero() && !f.now.Before(f.confirmAt) },
	}
}

var t0 = time.Date(2024, 1, 2, 3, 0, 0, 0, time.UTC)

func TestGuard(t *testing.T) {
	rec := Record{"init": "/sbin/init", "deadline": "600"}
	for name, tc := range map[string]struct {
		f    fakeSys
		want []string
		log  string
	}{
		// The init is missing: reboot at once, no keeper, no exec.
		"no init": {fakeSys{now: t0, keeperOK: true}, []string{"reboot at 03:00:00"}, "guard: the new root's init /sbin/init is missing"},
		// The keeper first, then the real init with the kernel's arguments.
		"boot": {fakeSys{now: t0, keeperOK: true, inits: map[string]bool{"/sbin/init": true}},
			[]string{"keeper", "exec /sbin/init single", "reboot at 03:00:00"}, "guard: exec /sbin/init: exec format error"},
		// No keeper, no deadline: back to the old root.
		"no keeper": {fakeSys{now: t0, inits: map[string]bool{"/sbin/init": true}},
			[]string{"keeper", "reboot at 03:00:00"}, "guard: cannot start the deadline keeper (fork failed)"},
	} {
		t.Run(name, func(t *testing.T) {
			f := tc.f
			err := Guard(rec, f.sys(), []string{"single"})
			if err == nil {
				t.Errorf("Guard returned nil after a failed reboot")
			}
			if !reflect.DeepEqual(f.did, tc.want) {
				t.Errorf("did %q, want %q", f.did, tc.want)
			}
			if last := f.logs[len(f.logs)-1]; !strings.HasPrefix(last, tc.log) {
				t.Errorf("last log %q, want %q...", last, tc.log)
			}
		})
	}
}

func TestKeep(t *testing.T) {
	rec := Record{} // the default deadline: 10 minutes
	// Never confirmed: the reboot comes at the deadline, not before.
	f := &fakeSys{now: t0}
	Keep(rec, f.sys(), t0)
	if want := []string{"reboot at 03:10:00"}; !reflect.DeepEqual(f.did, want) {
		t.Errorf("unconfirmed: did %q, want %q", f.did, want)
	}
	// Confirmed a second before the deadline: no reboot.
	f = &fakeSys{now: t0, confirmAt: t0.Add(10*time.Minute - time.Second)}
	if err := Keep(rec, f.sys(), t0); err != nil || len(f.did) != 0 {
		t.Errorf("confirmed: %v, did %q", err, f.did)
	}
	if got := f.logs[0]; !strings.Contains(got, "confirmed") {
		t.Errorf("confirmed: log %q", got)
	}
}
