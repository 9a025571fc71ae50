package bootguard

import (
	"fmt"
	"os"
	"time"
)

// Sys is what the guard and the keeper do to the machine; tests replace
// every field.
type Sys struct {
	Now   func() time.Time
	Sleep func(time.Duration)
	// Executable reports whether path is an executable regular file.
	Executable func(path string) bool
	// Exec replaces the process with argv (only returns on failure).
	Exec func(argv []string) error
	// StartKeeper starts the deadline keeper as a child that outlives
	// the exec of the real init.
	StartKeeper func() error
	// Reboot syncs and restarts the machine at once.
	Reboot func() error
	// Log writes a line to the kernel log (the console) and, when it can,
	// to the firstboot.log on /boot.
	Log func(msg string)
	// Confirmed reports whether the confirmation arrived.
	Confirmed func() bool
}

// Guard is the first boot's PID 1: it checks that the real init exists
// (else the machine reboots at once: GRUB's one-shot entry is spent, so
// the old root boots), starts the keeper, and execs the real init with
// the arguments the kernel gave. It returns only when all of that failed
// and the reboot failed too.
func Guard(r Record, sys *Sys, args []string) error {
	init := r.Init()
	if !sys.Executable(init) {
		return rebootNow(sys, fmt.Sprintf("guard: the new root's init %s is missing or not executable: rebooting into the old root", init))
	}
	if err := sys.StartKeeper(); err != nil {
		return rebootNow(sys, fmt.Sprintf("guard: cannot start the deadline keeper (%v): rebooting into the old root", err))
	}
	sys.Log(fmt.Sprintf("guard: starting %s; the boot must be confirmed within %s", init, r.Deadline()))
	err := sys.Exec(append([]string{init}, args...))
	return rebootNow(sys, fmt.Sprintf("guard: exec %s: %v: rebooting into the old root", init, err))
}

func rebootNow(sys *Sys, msg string) error {
	sys.Log(msg)
	err := sys.Reboot()
	return fmt.Errorf("%s; reboot failed: %w", msg, err)
}

// Keep is the deadline keeper: it waits for the confirmation until the
// record's deadline, counted from start, and reboots when none came.
// It polls once a second: the confirmation is a connection to its socket.
func Keep(r Record, sys *Sys, start time.Time) error {
	end := start.Add(r.Deadline())
	for {
		if sys.Confirmed() {
			sys.Log("keeper: the boot was confirmed: GRUB's default is the new root now; keeper done")
			return nil
		}
		if !sys.Now().Before(end) {
			return rebootNow(sys, fmt.Sprintf("keeper: the boot was not confirmed within %s: rebooting into the old root", r.Deadline()))
		}
		sys.Sleep(time.Second)
	}
}

// IsExecutable is Sys.Executable on the live system: path (links
// followed) is a regular file with an execute bit.
func IsExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
