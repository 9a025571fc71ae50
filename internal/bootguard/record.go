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

// Record is what finish set up for the first boot.
type Record struct {
	State    string
	Finished time.Time // when finish set it up
	NewDev   string    // /dev/mapper/sys-root
	NewUUID  string
	NewEntry string // the entry that becomes the default once confirmed: gnulinux-simple-UUID, or "0"
	OldDev   string
	OldUUID  string // the old root's UUID after the relabel
	Init     string // the real init the guard starts: /sbin/init
	Deadline time.Duration
	Manual   bool   // wait for `rootswap confirm --boot` instead of sshd answering
	SSHPort  int    // the port whose SSH banner confirms the boot
	BootDev  string // /boot's device and type: the guard mounts it to log a failure
	BootFS   string
	Confirm  time.Time // when the boot was confirmed
}

// Marshal is the record as key=value lines.
func (r *Record) Marshal() []byte {
	var b strings.Builder
	kv := func(k, v string) {
		if v != "" {
			b.WriteString(k + "=" + v + "\n")
		}
	}
	kv("state", r.State)
	kv("finished", stamp(r.Finished))
	kv("new", r.NewDev)
	kv("new_uuid", r.NewUUID)
	kv("new_entry", r.NewEntry)
	kv("old", r.OldDev)
	kv("old_uuid", r.OldUUID)
	kv("init", r.Init)
	kv("deadline", strconv.Itoa(int(r.Deadline/time.Second)))
	if r.Manual {
		kv("confirm", "manual")
	}
	kv("ssh_port", strconv.Itoa(r.SSHPort))
	kv("boot_dev", r.BootDev)
	kv("boot_fs", r.BootFS)
	kv("confirmed", stamp(r.Confirm))
	return []byte(b.String())
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// ParseRecord reads a record's lines; unknown keys are ignored.
func ParseRecord(data []byte) *Record {
	r := &Record{Init: "/sbin/init", SSHPort: 22, Deadline: 10 * time.Minute}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "state":
			r.State = v
		case "finished":
			r.Finished, _ = time.Parse(time.RFC3339, v)
		case "new":
			r.NewDev = v
		case "new_uuid":
			r.NewUUID = v
		case "new_entry":
			r.NewEntry = v
		case "old":
			r.OldDev = v
		case "old_uuid":
			r.OldUUID = v
		case "init":
			r.Init = v
		case "deadline":
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				r.Deadline = time.Duration(n) * time.Second
			}
		case "confirm":
			r.Manual = v == "manual"
		case "ssh_port":
			if n, err := strconv.Atoi(v); err == nil {
				r.SSHPort = n
			}
		case "boot_dev":
			r.BootDev = v
		case "boot_fs":
			r.BootFS = v
		case "confirmed":
			r.Confirm, _ = time.Parse(time.RFC3339, v)
		}
	}
	return r
}

// ReadRecord reads the record at path.
func ReadRecord(path string) (*Record, error) {
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
	_, err = f.WriteString(stamp(now) + " " + msg + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Explain says, for `rootswap status`, what became of the first boot,
// seen from a root whose filesystem UUID is rootUUID. log is the
// firstboot.log's text. Empty when there is nothing to say.
func Explain(r *Record, rootUUID, log string) string {
	var b strings.Builder
	switch {
	case r.State == Confirmed:
		fmt.Fprintf(&b, "first boot: the new root %s booted and was confirmed at %s: it is the boot default\n", r.NewDev, stamp(r.Confirm))
	case rootUUID != "" && strings.EqualFold(rootUUID, r.OldUUID):
		fmt.Fprintf(&b, "first boot: FELL BACK: the new root %s (UUID %s) was booted once after finish (%s) and its boot was not confirmed; "+
			"this is the old root %s again (UUID %s), GRUB's default, untouched by that boot\n",
			r.NewDev, r.NewUUID, stamp(r.Finished), r.OldDev, r.OldUUID)
		if log == "" {
			b.WriteString("first boot: no log from the guard (it could not reach /boot): the new root hung or failed before its init ran, or in its initramfs (see its console)\n")
		}
		fmt.Fprintf(&b, "first boot: to try again once the new root is fixed: grub-reboot %s (its init= is the guard, so a failure comes back here again)\n", NewEntry)
	case rootUUID != "" && strings.EqualFold(rootUUID, r.NewUUID):
		how := "once sshd answers"
		if r.Manual {
			how = "by `rootswap confirm --boot`"
		}
		left := r.Deadline
		fmt.Fprintf(&b, "first boot: the new root %s runs its first boot, not yet confirmed (%s, within %s of the boot, else it reboots into the old root %s)\n",
			r.NewDev, how, left, r.OldDev)
	default:
		fmt.Fprintf(&b, "first boot: %s set up by finish at %s: the next boot tries the new root %s once, the old root %s stays the default\n",
			r.State, stamp(r.Finished), r.NewDev, r.OldDev)
	}
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
