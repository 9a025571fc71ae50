package finish

import (
	"strings"
)

// The kernel command line the new root needs: root= naming it, and for
// dracut the rd.* arguments that make the initramfs assemble its stack
// (when rd.lvm.lv= or rd.md.uuid= are given, dracut activates only the
// volumes they name).

// rootArg is the root= value for the new root: the LV's /dev/mapper path
// (stable, and what installers write), else UUID= of its filesystem.
func (p *Plan) rootArg() string {
	if p.New.Stack.LVM || p.New.FS.UUID == "" {
		return p.New.Path
	}
	return "UUID=" + p.New.FS.UUID
}

// rdArgs are the dracut arguments of a stack: rd.lvm.lv=VG/LV,
// rd.md.uuid= (mdadm's form), rd.luks.uuid=.
func (p *Plan) rdArgs(s Stack) []string {
	var out []string
	for _, l := range s.Layers {
		switch l.Kind {
		case 'l':
			out = append(out, "rd.lvm.lv="+lvName(l.Name))
		case 'm':
			// A member's superblock has the array's UUID; mdadm
			// writes it as four groups of eight hex digits.
			if len(l.Slaves) > 0 {
				if fs, _ := p.cfg.Devices.Detect(l.Slaves[0]); len(fs.UUID) == 36 {
					out = append(out, "rd.md.uuid="+hexID(strings.ReplaceAll(fs.UUID, "-", ""), ":", 8, 16, 24))
				}
			}
		case 'c':
			out = append(out, "rd.luks.uuid="+l.UUID)
		}
	}
	return out
}

// hexID puts sep into h before each offset of at.
func hexID(h, sep string, at ...int) string {
	for i := len(at) - 1; i >= 0; i-- {
		h = h[:at[i]] + sep + h[at[i]:]
	}
	return h
}

// lvName is VG/LV for a dm name VG-LV, where a "-" inside a name is
// doubled.
func lvName(dm string) string {
	vg, lv, _ := strings.Cut(strings.ReplaceAll(dm, "--", "\x00"), "-")
	return strings.ReplaceAll(vg+"/"+lv, "\x00", "-")
}

// editArgs rewrites a kernel command line: root= becomes the new root's
// (added first when setRoot and none is there), rootflags= goes when the
// filesystem type changed, the old stack's rd.* arguments go, the new
// one's are added. Other words ($kernelopts, quiet) are kept in order.
func (p *Plan) editArgs(words []string, setRoot bool) []string {
	var out []string
	root := "root=" + p.rootArg()
	hadRoot := false
	for _, w := range words {
		switch {
		case strings.HasPrefix(w, "root="):
			if !hadRoot {
				out = append(out, root)
			}
			hadRoot = true
		case p.stale(w):
			p.removed = append(p.removed, w)
		default:
			out = append(out, w)
		}
	}
	if setRoot && !hadRoot {
		out = append([]string{root}, out...)
	}
	for _, a := range p.addArgs {
		if !hasWord(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// stale reports whether a word names the old root's stack, or its type
// (rootflags=, rootfstype=: "rootf") when the new one's differs.
func (p *Plan) stale(w string) bool {
	return hasWord(p.dropArgs, w) || strings.HasPrefix(w, "rootf") && p.New.FS.Type != p.Old.FS.Type
}

func hasWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// bootsNew says why a kernel command line would not boot the new root;
// empty when it would.
func (p *Plan) bootsNew(words []string) string {
	root := ""
	for _, w := range words {
		if v, ok := strings.CutPrefix(w, "root="); ok {
			root = v
		}
	}
	if root == "" {
		return "no root="
	}
	if !p.names(p.New, root) {
		return "root=" + root + " is not the new root"
	}
	for _, a := range p.addArgs {
		k, _, _ := strings.Cut(a, "=")
		if !hasWord(words, a) && strings.Contains(" "+strings.Join(words, " "), " "+k+"=") {
			return "it has " + k + "= but not " + a
		}
	}
	return ""
}
