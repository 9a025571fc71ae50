package swap

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rootswap/rootswap/internal/journal"
	"golang.org/x/sys/unix"
)

// Default places. The engine's tmpfs sits under /run so that it travels
// with /run when the submounts are moved after the pivot.
const (
	DefaultEngineDir = "/run/rootswap"
	DefaultNewRoot   = "/mnt/newroot"
	DefaultPutOld    = "mnt/oldroot"
	// ArchiveDir keeps finished journals on the (new) root, so status
	// still answers after the engine's tmpfs is gone.
	ArchiveDir = "/var/log/rootswap"
)

// JournalPath is the live journal in the engine's tmpfs.
func JournalPath(engineDir string) string { return filepath.Join(engineDir, "journal") }

// FindJournal returns the live journal if there is one, else the newest
// archived one.
func FindJournal(engineDir string) (string, error) {
	live := JournalPath(engineDir)
	if _, err := os.Stat(live); err == nil {
		return live, nil
	}
	// Between the pivot and the move of /run, the tmpfs sits below the
	// old root; during a rollback, between the pivot back and the move
	// of /run, below the new root.
	for _, under := range []string{DefaultPutOld, DefaultNewRoot} {
		if p := filepath.Join("/", under, live); exists(p) {
			return p, nil
		}
	}
	last := filepath.Join(ArchiveDir, "last.journal")
	if _, err := os.Stat(last); err == nil {
		return last, nil
	}
	return "", errors.New("no swap journal found (looked for " + live + " and " + last + "): no swap has run on this host")
}

// Status is a journal summary plus whether its engine is still alive.
type Status struct {
	journal.Summary
	Path        string
	EngineAlive bool
	// Trusted: the journal is the engine's own (its tmpfs or the
	// archive), not any file given with --journal: rollback runs the
	// command lines only of a trusted journal.
	Trusted bool
	// Holders is what held the old root when release last looked (empty
	// once it is released); Finish, the commands to finish the release
	// by hand when the engine stopped waiting.
	Holders []OldRootHolder
	Finish  []string
	// Progress is the running copy's last progress record (file mode).
	Progress *CopyProgress
}

// NextFinish is what the admin types once a swap has succeeded.
const NextFinish = "rootswap finish   (--dry-run first shows each change and what a reboot now would boot)"

// Next is the command to type next: finish once the swap succeeded
// (after the release by hand when the engine stopped waiting; with
// --grub-install when relabel-old left the old root to it), else "".
func (st *Status) Next() string {
	if st.Phase != journal.Succeeded {
		return ""
	}
	next := NextFinish
	for i := range st.Steps {
		if st.Steps[i].Name == StepRelabelOld && strings.Contains(st.Steps[i].Err, grubFlag) {
			next = "rootswap finish " + grubFlag + " (the disk the machine boots from)"
		}
	}
	if len(st.Finish) > 0 {
		return "the commands that finish the release (above), then " + next
	}
	return next
}

// LoadStatus reads the journal at path and checks the engine's pid in
// procRoot. A journal with no end whose engine is gone is reported as
// failed in the step it was running: the engine died (SIGKILL, OOM).
func LoadStatus(procRoot, path string) (Status, error) {
	recs, err := journal.ReadFile(path)
	if err != nil {
		return Status{}, err
	}
	st := Status{Summary: journal.Summarize(recs), Path: path}
	pstep := ""
	for _, r := range recs {
		if r.Kind == journal.KindHolders {
			st.Holders, st.Finish = nil, nil
			json.Unmarshal([]byte(r.Data["holders"]), &st.Holders)
			json.Unmarshal([]byte(r.Data["finish"]), &st.Finish)
		}
		if r.Kind == journal.KindProgress {
			st.Progress, pstep = new(CopyProgress), r.Step
			json.Unmarshal([]byte(r.Describe), st.Progress)
		}
	}
	st.EngineAlive = engineAlive(procRoot, st.EnginePID, st.Data)
	ended := st.Phase == journal.Succeeded || st.Phase == journal.Failed || st.Phase == journal.RolledBack
	if !ended && !st.EngineAlive {
		st.Phase = journal.Failed
		if st.Err == "" {
			st.Err = "the engine (pid " + strconv.Itoa(st.EnginePID) + ") died without finishing; run `rootswap rollback` to undo its steps"
		}
	}
	if st.Progress != nil && (st.Phase != journal.Running || pstep != st.Step) {
		st.Progress = nil // its copy is over
	}
	return st, nil
}

// engineAlive says whether pid is still the engine that wrote the
// journal: same start time and same executable as the start record says
// (a pid is reused; a name proves nothing). A journal without them (from
// an older engine) falls back on the name.
func engineAlive(procRoot string, pid int, started map[string]string) bool {
	if pid <= 0 {
		return false
	}
	if started["start_time"] == "" && started["exe"] == "" {
		comm, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "comm"))
		return err == nil && strings.HasPrefix(strings.TrimSpace(string(comm)), "rootswap")
	}
	now := EngineIdentity(procRoot, pid)
	return now["start_time"] == started["start_time"] && now["exe"] == started["exe"]
}

// EngineIdentity is what tells a process apart from a later one with the
// same pid: its start time in clock ticks since boot (field 22 of
// /proc/PID/stat) and its executable's device and inode.
func EngineIdentity(procRoot string, pid int) map[string]string {
	d := map[string]string{}
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	if b, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil {
		// The name (field 2) may hold spaces and parentheses: count
		// from the last ')'; field 3 is the first after it.
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 19 {
				d["start_time"] = f[19]
			}
		}
	}
	var st unix.Stat_t
	if unix.Stat(filepath.Join(dir, "exe"), &st) == nil {
		d["exe"] = strconv.FormatUint(st.Dev, 10) + ":" + strconv.FormatUint(st.Ino, 10)
	}
	return d
}

// Step names that status and the windows refer to.
const (
	StepStopServices  = "stop-services"
	StepRemountRO     = "remount-ro"
	StepCopy          = "copy"
	StepPivot         = "pivot"
	StepMoveMounts    = "move-mounts"
	StepRestartSSHD   = "restart-sshd"
	StepStartServices = "start-services"
	stepMountNew      = "mount-new"
	stepUnmountExtra  = "unmount-extra"
)

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// LiveProcRoot is procRoot when procfs is mounted there, else the procfs
// still below the old root (between the pivot and the move of /proc).
func LiveProcRoot(procRoot string) string {
	if exists(filepath.Join(procRoot, "self/stat")) {
		return procRoot
	}
	if p := filepath.Join("/", DefaultPutOld, "proc"); exists(filepath.Join(p, "self/stat")) {
		return p
	}
	return procRoot
}

// CurrentStatus finds the journal (path, or the live or archived one when
// empty) and loads its status, with procfs wherever it is right now. It is
// what status, confirm and rollback all start with.
func CurrentStatus(procRoot, path string) (Status, error) {
	trusted := path == ""
	if trusted {
		var err error
		if path, err = FindJournal(DefaultEngineDir); err != nil {
			return Status{}, err
		}
	} else {
		trusted = TrustedJournal(path)
	}
	st, err := LoadStatus(LiveProcRoot(procRoot), path)
	st.Trusted = trusted
	return st, err
}

// TrustedJournal says whether path is the engine's own journal: the live
// one in its tmpfs (wherever the pivot put it), or one in the archive,
// compared by device and inode, not by name.
func TrustedJournal(path string) bool {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return false
	}
	live := JournalPath(DefaultEngineDir)
	for _, p := range []string{live, filepath.Join("/", DefaultPutOld, live), filepath.Join(DefaultNewRoot, live)} {
		var o unix.Stat_t
		if unix.Stat(p, &o) == nil && o.Dev == st.Dev && o.Ino == st.Ino {
			return true
		}
	}
	return filepath.Dir(filepath.Clean(path)) == ArchiveDir && checkArchiveDir(ArchiveDir) == nil
}
