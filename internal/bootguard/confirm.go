package bootguard

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"
)

// Confirmer is one confirmation of the first boot: by the unit finish
// installed (sshd must answer), or by the admin's `rootswap confirm
// --boot` (the login proved it).
type Confirmer struct {
	Out      io.Writer
	Root     string // "/" live; a fixture tree in tests
	Now      func() time.Time
	RootUUID func() (string, error)
	WaitSSH  func(ctx context.Context, port int) error
	Notify   func() error
	ByAdmin  bool
}

// Confirm makes the new root GRUB's default and stops the keeper, once
// / is the new root (and, for the unit, sshd answers).
func (c *Confirmer) Confirm(ctx context.Context) error {
	path := filepath.Join(c.Root, RootRecord)
	r, err := ReadRecord(path)
	if err != nil {
		return fmt.Errorf("no first boot to confirm: %w", err)
	}
	if r["state"] == Confirmed {
		fmt.Fprintf(c.Out, "first boot: already confirmed at %s\n", r["confirmed"])
		return nil
	}
	uuid, err := c.RootUUID()
	if err != nil {
		return fmt.Errorf("which root is /: %w", err)
	}
	if !strings.EqualFold(uuid, r["new_uuid"]) {
		return fmt.Errorf("/ is the filesystem UUID %s, not the new root %s (UUID %s): not confirming", uuid, r["new"], r["new_uuid"])
	}
	how := "confirmed by `rootswap confirm --boot`"
	if !c.ByAdmin {
		if r["confirm"] == "manual" {
			fmt.Fprintf(c.Out, "first boot: waiting for `rootswap confirm --boot` (finish --boot-confirm manual)\n")
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, r.Deadline())
		defer cancel()
		if err := c.WaitSSH(wctx, r.SSHPort()); err != nil {
			return fmt.Errorf("not confirming the first boot: %w", err)
		}
		how = fmt.Sprintf("sshd answers on port %d", r.SSHPort())
	}
	entry := r["new_entry"]
	if entry == "" {
		entry = "0"
	}
	if err := EditEnv(filepath.Join(c.Root, GrubEnv), "saved_entry", entry, "next_entry", ""); err != nil {
		return err
	}
	now := c.Now()
	r["state"], r["confirmed"] = Confirmed, Stamp(now)
	for _, p := range []string{BootRecord, RootRecord} {
		if err := WriteFile(filepath.Join(c.Root, p), r.Marshal(), 0o644); err != nil {
			return err
		}
	}
	msg := fmt.Sprintf("confirm: / is the new root %s and %s: GRUB's default is now %s", r["new"], how, entry)
	AppendLog(filepath.Join(c.Root, BootLog), now, msg)
	fmt.Fprintf(c.Out, "first boot: %s\n", msg)
	if err := c.Notify(); err != nil {
		fmt.Fprintf(c.Out, "first boot: no keeper answered (%v): it was not running, or is gone\n", err)
	} else {
		fmt.Fprintf(c.Out, "first boot: the deadline keeper stopped\n")
	}
	return nil
}
