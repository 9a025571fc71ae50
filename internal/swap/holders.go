package swap

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/rootswap/rootswap/internal/procscan"
)

// Holder is a process that keeps a filesystem busy, and how.
type Holder struct {
	PID     int
	Comm    string
	Cgroup  string
	Writes  []string // fds open for writing: "3w /var/log/messages"
	Deleted []string // deleted files held open or mapped: "DEL /usr/lib/x.so"
	Uses    []string // exe, mappings, cwd, root, read fds
	// OtherNS: the process sits in a mount namespace of its own that
	// holds the filesystem (systemd's PrivateTmp/ProtectSystem services).
	// lsof never shows these; umount "succeeds" while they keep it alive.
	OtherNS string
}

// BlocksReadOnly reports whether the holder stops `mount -o remount,ro`:
// the kernel refuses while any file is open for writing or any deleted
// inode is still open (its s_remove_count).
func (h Holder) BlocksReadOnly() bool { return len(h.Writes) > 0 || len(h.Deleted) > 0 }

// What is a short account for the admin.
func (h Holder) What() string {
	switch {
	case len(h.Writes) > 0:
		return "writes " + h.Writes[0] + more(len(h.Writes))
	case len(h.Deleted) > 0:
		return "holds deleted " + h.Deleted[0] + more(len(h.Deleted))
	case h.OtherNS != "" && len(h.Uses) == 0:
		return "its own mount namespace " + h.OtherNS + " holds the filesystem"
	case len(h.Uses) > 0:
		return "uses " + h.Uses[0] + more(len(h.Uses))
	}
	return "holds it"
}

func more(n int) string {
	if n > 1 {
		return fmt.Sprintf(" (+%d more)", n-1)
	}
	return ""
}

// HoldersOf lists every process that holds the filesystem whose mounts
// show dev in mountinfo (the superblock's device): by fds (matched
// through fdinfo's mnt_id, never by stat through a link),
// mappings (by the maps line's device), exe, cwd, root, and by mount
// namespaces of their own that contain a mount of it. Sorted by PID.
func HoldersOf(snap *procscan.Snapshot, dev uint64) []Holder {
	var out []Holder
	for _, p := range snap.Procs {
		h := Holder{PID: p.PID, Comm: p.Comm, Cgroup: p.Cgroup}
		for _, l := range []struct {
			name string
			link procscan.Link
		}{{"cwd", p.Cwd}, {"rtd", p.Root}, {"txt", p.Exe}} {
			if l.link.Dev == dev && (l.link.HasMount || l.link.HasIno) {
				if l.link.Deleted {
					h.Deleted = append(h.Deleted, l.name+" "+l.link.Name)
				} else {
					h.Uses = append(h.Uses, l.name+" "+l.link.Name)
				}
			}
		}
		for i := range p.FDs {
			fd := &p.FDs[i]
			d, ok := fdDev(fd)
			if !ok || d != dev || fd.Kind != procscan.KindFile {
				continue
			}
			mode := procscan.Access(fd.Info.Flags)
			desc := strconv.Itoa(fd.Num) + string(mode) + " " + fd.Name
			switch {
			case fd.Deleted:
				h.Deleted = append(h.Deleted, desc)
			case procscan.Writable(fd.Info.Flags):
				h.Writes = append(h.Writes, desc)
			default:
				h.Uses = append(h.Uses, desc)
			}
		}
		seenMap := map[string]bool{}
		for _, m := range p.Maps {
			if m.Dev() != dev || seenMap[m.Path] {
				continue
			}
			seenMap[m.Path] = true
			if m.Deleted {
				h.Deleted = append(h.Deleted, "DEL "+m.Path)
			} else {
				h.Uses = append(h.Uses, "mem "+m.Path)
			}
		}
		if p.MountNS != "" && p.MountNS != snap.SelfMountNS {
			if len(snap.Mounts[p.MountNS].ByDev(dev)) > 0 {
				h.OtherNS = p.MountNS
			}
		}
		if len(h.Writes)+len(h.Deleted)+len(h.Uses) > 0 || h.OtherNS != "" {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// fdDev is the superblock device of the mount an fd was opened through
// (fdinfo's mnt_id): the number mountinfo shows. Its stat's st_dev is
// not: a btrfs subvolume reports an anonymous device of its own (0:43
// for files of subvol=@ where mountinfo shows 0:41). The stat is the
// fallback for an fd whose mount no namespace lists any more.
func fdDev(fd *procscan.FD) (uint64, bool) {
	if fd.HasMount {
		return fd.Mount.Dev(), true
	}
	return fd.Dev()
}
