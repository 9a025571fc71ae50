package bootguard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	newID = "0b7c2f7e-1d5a-4c3b-9e8f-7a6b5c4d3e2f"
	oldID = "6a0e7d4b-93c1-4f8e-b2a5-0c9d8e7f6a51"
)

type confirmFixture struct {
	root     string
	out      bytes.Buffer
	uuid     string
	sshErr   error
	notified int
	rec      Record
}

func newConfirmFixture(t *testing.T) *confirmFixture {
	x := &confirmFixture{root: t.TempDir(), uuid: newID, rec: Record{
		"state": Pending, "finished": Stamp(t0), "new": "/dev/mapper/sys-root", "new_uuid": newID, "new_entry": "gnulinux-simple-" + newID,
		"old": "/dev/vda2", "old_uuid": oldID, "deadline": "60",
	}}
	return x
}

func (x *confirmFixture) run(t *testing.T, byAdmin bool) error {
	for _, p := range []string{RootRecord, BootRecord} {
		if err := WriteFile(filepath.Join(x.root, p), x.rec.Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := filepath.Join(x.root, GrubEnv)
	os.MkdirAll(filepath.Dir(env), 0o755)
	if err := EditEnv(env, "saved_entry", OldEntry); err != nil {
		t.Fatal(err)
	}
	c := &Confirmer{
		Out: &x.out, Root: x.root, ByAdmin: byAdmin,
		Now:      func() time.Time { return t0.Add(3 * time.Minute) },
		RootUUID: func() (string, error) { return x.uuid, nil },
		WaitSSH:  func(context.Context, int) error { return x.sshErr },
		Notify:   func() error { x.notified++; return nil },
	}
	return c.Confirm(context.Background())
}

func (x *confirmFixture) saved(t *testing.T) string {
	env, err := ReadEnv(filepath.Join(x.root, GrubEnv))
	if err != nil {
		t.Fatal(err)
	}
	return env["saved_entry"]
}

func TestConfirm(t *testing.T) {
	x := newConfirmFixture(t)
	if err := x.run(t, false); err != nil {
		t.Fatal(err)
	}
	if got, want := x.saved(t), "gnulinux-simple-"+newID; got != want {
		t.Errorf("saved_entry %q, want %q", got, want)
	}
	for _, p := range []string{RootRecord, BootRecord} {
		r, err := ReadRecord(filepath.Join(x.root, p))
		if err != nil || r["state"] != Confirmed || r["confirmed"] != "2024-01-02T03:03:00Z" || r["new_uuid"] != newID {
			t.Errorf("%s: %v %v", p, r, err)
		}
	}
	if x.notified != 1 {
		t.Errorf("keeper told %d times", x.notified)
	}
	log, _ := os.ReadFile(filepath.Join(x.root, BootLog))
	if !strings.Contains(string(log), "confirm: / is the new root /dev/mapper/sys-root and sshd answers on port 22") {
		t.Errorf("log %q", log)
	}
}

// TestConfirmRefuses: nothing changes unless / is the new root and (for
// the unit) sshd answers, and the unit leaves a manual confirmation to
// the admin.
func TestConfirmRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		prep    func(x *confirmFixture)
		byAdmin bool
		err     string
	}{
		"old root": {func(x *confirmFixture) { x.uuid = oldID }, true, "not the new root"},
		"no sshd":  {func(x *confirmFixture) { x.sshErr = errors.New("no SSH banner") }, false, "no SSH banner"},
		"manual":   {func(x *confirmFixture) { x.rec["confirm"] = "manual" }, false, ""},
	} {
		t.Run(name, func(t *testing.T) {
			x := newConfirmFixture(t)
			tc.prep(x)
			err := x.run(t, tc.byAdmin)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("err %v, want %q", err, tc.err)
			}
			if got := x.saved(t); got != OldEntry {
				t.Errorf("saved_entry %q, want %q", got, OldEntry)
			}
			if x.notified != 0 {
				t.Errorf("keeper told")
			}
		})
	}
	// The admin confirms a manual one.
	x := newConfirmFixture(t)
	x.rec["confirm"] = "manual"
	x.sshErr = errors.New("not asked")
	if err := x.run(t, true); err != nil || x.saved(t) != "gnulinux-simple-"+newID {
		t.Errorf("confirm --boot: %v, saved_entry %q", err, x.saved(t))
	}
}

func TestExplain(t *testing.T) {
	r := Record{"state": Pending, "finished": Stamp(t0), "new": "/dev/mapper/sys-root", "new_uuid": newID, "old": "/dev/vda2", "old_uuid": oldID}
	log := "2024-01-02T03:05:00Z guard: the new root's init /sbin/init is missing or not executable: rebooting into the old root\n"
	got := Explain(r, oldID, log)
	for _, want := range []string{
		"first boot: FELL BACK: the new root /dev/mapper/sys-root (UUID " + newID + ") was booted once after finish (2024-01-02T03:00:00Z)",
		"this is the old root /dev/vda2 again, GRUB's default",
		"  2024-01-02T03:05:00Z guard: the new root's init /sbin/init is missing",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("fell back: lacks %q:\n%s", want, got)
		}
	}
	if got := Explain(r, newID, ""); !strings.Contains(got, "runs its first boot, not yet confirmed") {
		t.Errorf("on the new root: %s", got)
	}
	r["state"], r["confirmed"] = Confirmed, Stamp(t0)
	if got := Explain(r, newID, ""); !strings.HasPrefix(got, "first boot: the new root /dev/mapper/sys-root booted and was confirmed") {
		t.Errorf("confirmed: %s", got)
	}
}
