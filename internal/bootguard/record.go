// Package bootguard is the safe first boot of a new root: finish makes
// the new root GRUB's entry for the next boot only, with this package's
// guard as its init; the guard starts the real init and keeps a deadline,
// and the machine comes back on the old root (GRUB's saved default) unless
// the boot is confirmed in time.
//
// The record (/boot/rootswap/firstboot, and its copy /etc/rootswap/firstboot
// on the new root, where the guard reads it before anything is mounted)
// says what finish set up; the log beside it (firstboot.log, on the /boot
// both roots share) says what the guard, the keeper and the confirmation
// did, so that `rootswap status` on the old root can explain a fall-back.
package bootguard

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Paths, on the live system.
const (
	BootDir    = "/boot/rootswap"           // the old root's kernel and initramfs, the record, the log
	BootRecord = "/boot/rootswap/firstboot" // the record, where both roots see it
	BootLog    = "/boot/rootswap/firstboot.log"
	RootRecord = "/etc/rootswap/firstboot"  // its copy on the new root, for the guard
	GuardPath  = "/sbin/rootswap-bootguard" // the rootswap binary as the one-shot entry's init=
	GrubCfg    = "/boot/grub/rootswap.cfg"  // the two entries, sourced by grub.cfg
	GrubEnv    = "/boot/grub/grubenv"
	OldEntry   = "rootswap-old" // GRUB menu entry ids
	NewEntry   = "rootswap-new"
	// Socket is the keeper's abstract unix socket: no file, so it works
	// before anything is mounted and leaves nothing behind.
	Socket = "@rootswap-bootguard"
)

// States of the record.
const (
	Pending   = "pending"   // finish set it up; the first boot has not been confirmed
	Confirmed = "confirmed" // the new root booted and was confirmed: it is GRUB's default
)

// Record is what finish set up for the first boot, as key=value lines:
//
//	state      pending or confirmed
//	finished   when finish set it up; confirmed: when the boot was confirmed (RFC 3339)
//	new, new_uuid, new_entry   the new root, its UUID, the GRUB entry that
//	           becomes the default once confirmed (gnulinux-simple-UUID)
//	old, old_uuid              the old root and its UUID after the relabel
//	init       the real init the guard starts (/sbin/init)
//	deadline   seconds the boot has to be confirmed in
//	confirm    manual: wait for `rootswap confirm --boot`, not sshd answering
//	ssh_port   the port whose SSH banner confirms the boot
//	boot_dev, boot_fs          /boot: the guard mounts it to log a failure
type Record map[string]string

// Marshal is the record's lines, sorted by key.
func (r Record) Marshal() []byte {
	keys := make([]string, 0, len(r))
	for k, v := range r {
		if v != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + r[k] + "\n")
	}
	return []byte(b.String())
}

// ParseRecord reads a record's lines.
func ParseRecord(data []byte) Record {
	r := Record{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			r[k] = v
		}
	}
	return r
}

// Init is the real init, /sbin/init unless the record names another.
func (r Record) Init() string {
	if r["init"] != "" {
		return r["init"]
	}
	return "/sbin/init"
}

// Deadline is how long the boot has to be confirmed in: 10 minutes
// unless the record says otherwise.
func (r Record) Deadline() time.Duration {
	if n, err := strconv.Atoi(r["deadline"]); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 10 * time.Minute
}

// SSHPort is the port whose banner confirms the boot (22).
func (r Record) SSHPort() int {
	if n, err := strconv.Atoi(r["ssh_port"]); err == nil && n > 0 {
		return n
	}
	return 22
}

// Stamp is the record's form of a time.
func Stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// ReadRecord reads the record at path.
func ReadRecord(path string) (Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseRecord(data), nil
}

// WriteFile writes data to path through a synced temporary file and a
// rename, creating the directory.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".rootswap.tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// AppendLog adds a timestamped line to the log at path and syncs it.
func AppendLog(path string, now time.Time, msg string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(Stamp(now) + " " + msg + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Explain says, for `rootswap status`, what became of the first boot,
// seen from a root whose filesystem UUID is rootUUID; log is the
// firstboot.log's text.
func Explain(r Record, rootUUID, log string) string {
	var msg string
	switch {
	case r["state"] == Confirmed:
		msg = "the new root " + r["new"] + " booted and was confirmed at " + r["confirmed"] + ": it is the boot default"
	case rootUUID != "" && strings.EqualFold(rootUUID, r["old_uuid"]):
		msg = "FELL BACK: the new root " + r["new"] + " (UUID " + r["new_uuid"] + ") was booted once after finish (" + r["finished"] +
			") and its boot was not confirmed; this is the old root " + r["old"] + " again, GRUB's default, untouched by that boot; " +
			"once the new root is fixed, grub-reboot " + NewEntry + " tries it once more"
		if log == "" {
			msg += "; the guard left no log: the new root failed before its init ran (its initramfs), see its console"
		}
	case rootUUID != "" && strings.EqualFold(rootUUID, r["new_uuid"]):
		msg = "the new root " + r["new"] + " runs its first boot, not yet confirmed; unconfirmed within " + r.Deadline().String() +
			" of the boot, it reboots into the old root " + r["old"]
	default:
		msg = r["state"] + " since " + r["finished"] + ": the next boot tries the new root " + r["new"] + " once; the old root " + r["old"] + " stays the default"
	}
	var b strings.Builder
	b.WriteString("first boot: " + msg + "\n")
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		if l != "" {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}

// Describe is Explain for the running machine: "" when finish set up no
// first boot (no record on /boot).
func Describe(procRoot, sysRoot string) string {
	r, err := ReadRecord(BootRecord)
	if err != nil {
		return ""
	}
	uuid, _ := RootUUID(procRoot, sysRoot)
	log, _ := os.ReadFile(BootLog)
	return Explain(r, uuid, string(log))
}
