package finish

import (
	"bytes"
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
)

// planStack checks and plans the files the initramfs reads to assemble
// the new root's stack: crypttab for LUKS, mdadm.conf for md (refreshed
// from mdadm --detail --scan), LVM's devices file and filters for the
// new PVs. They change before the initramfs is built.
func (p *Plan) planStack(ctx context.Context) error {
	s := p.New.Stack
	for _, l := range s.Layers {
		var err error
		switch l.Kind {
		case 'c':
			err = p.crypttab(l)
		case 'l':
			for _, pv := range l.Slaves {
				if err == nil {
					err = p.planPV(pv)
				}
			}
		}
		if err != nil {
			return err
		}
	}
	if s.MD {
		return p.planMdadm(ctx)
	}
	return nil
}

// refuse is a refusal, or with --force a loud warning.
func (p *Plan) refuse(msg string) error {
	if !p.cfg.Force {
		return errors.New(msg + " (--force goes on anyway)")
	}
	p.Warnings = append(p.Warnings, msg)
	return nil
}

// crypttab checks that /etc/crypttab has the line the initramfs unlocks
// the LUKS device l with: by its name, its UUID or its device.
func (p *Plan) crypttab(l Layer) error {
	data, _ := p.readHost("/etc/crypttab")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if f[0] == l.Name || strings.EqualFold(f[1], "UUID="+l.UUID) || f[1] == "/dev/disk/by-uuid/"+l.UUID || hasWord(l.Slaves, f[1]) {
			return nil
		}
	}
	return p.refuse("the new root is on LUKS and /etc/crypttab has no line for it: the initramfs would not unlock it; add \"" + l.Name + " UUID=" + l.UUID + " none luks\" first")
}

// planMdadm merges the running arrays into mdadm.conf (Debian's
// /etc/mdadm/mdadm.conf, else /etc/mdadm.conf), keeping the admin's
// other lines: an ARRAY line of the same UUID is replaced, a new array
// is appended.
func (p *Plan) planMdadm(ctx context.Context) (err error) {
	if !p.cfg.Devices.HasTool("mdadm") {
		return p.refuse("the new root is on md RAID and mdadm is not installed: the initramfs could not assemble it")
	}
	argv := []string{"mdadm", "--detail", "--scan"}
	var scan []byte
	if p.cfg.Output != nil {
		scan, err = p.cfg.Output(ctx, argv)
	} else {
		var b bytes.Buffer
		env := *p.cfg.Env
		env.Stdout = &b
		err = ExecRunner(&env)(ctx, argv)
		scan = b.Bytes()
	}
	if err != nil {
		return err
	}
	path := "/etc/mdadm.conf"
	if exists(p.root, "etc/mdadm") {
		path = "/etc/mdadm/mdadm.conf"
	}
	old, err := p.readHost(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	data := string(old)
	if data != "" && !strings.HasSuffix(data, "\n") {
		data += "\n"
	}
	for _, l := range strings.Split(string(scan), "\n") {
		_, u, ok := strings.Cut(l, " UUID=")
		if !ok || !strings.HasPrefix(l, "ARRAY") {
			continue
		}
		u, _, _ = strings.Cut(u, " ")
		mine := ""
		for _, o := range strings.SplitAfter(data, "\n") {
			if strings.HasPrefix(o, "ARRAY") && strings.Contains(o, "UUID="+u) {
				mine = o
			}
		}
		if mine != "" {
			data = strings.Replace(data, mine, l+"\n", 1)
		} else {
			data += l + "\n"
		}
	}
	// Printed even when unchanged: the plan says it was looked at.
	p.Pre = append(p.Pre, Action{What: "mdadm: the arrays of mdadm --detail --scan in " + path, Path: path, Old: old, Data: []byte(data)})
	return nil
}

// planPV checks that LVM in the initramfs sees the new root's PV: listed
// in the devices file when one is in use (else lvmdevices --adddev), not
// rejected by a filter of lvm.conf.
func (p *Plan) planPV(pv string) error {
	conf, _ := p.readHost("/etc/lvm/lvm.conf")
	var text []string
	for _, l := range strings.Split(string(conf), "\n") {
		l, _, _ = strings.Cut(l, "#")
		text = append(text, strings.TrimSpace(l))
	}
	c := "\n" + strings.Join(text, "\n")
	for _, key := range []string{"global_filter", "filter"} {
		// key = [ "a|re|", "r|re|" ], over lines maybe
		i := strings.Index(c, "\n"+key)
		if i < 0 || !strings.HasPrefix(strings.TrimLeft(c[i+1+len(key):], " \t"), "=") {
			continue
		}
		list, _, _ := strings.Cut(c[i:], "]")
		for _, q := range strings.Split(list, "\"")[1:] {
			if len(q) < 3 || q[0] != 'a' && q[0] != 'r' {
				continue
			}
			end := strings.LastIndexByte(q, q[1])
			re, err := regexp.Compile(q[2:max(end, 2)])
			if err != nil || !re.MatchString(pv) {
				continue
			}
			if q[0] == 'r' {
				return p.refuse("/etc/lvm/lvm.conf's " + key + " rejects the new root's PV " + pv + " (\"" + q + "\"): LVM in the initramfs would not find the root's volume group; accept it there first")
			}
			break
		}
	}
	df, err := p.readHost("/etc/lvm/devices/system.devices")
	if err != nil || strings.Contains(strings.Join(strings.Fields(c), ""), "use_devicesfile=0") {
		return nil // no devices file in use: every PV is seen
	}
	fs, _ := p.cfg.Devices.Detect(pv)
	pvid := strings.ReplaceAll(fs.UUID, "-", "")
	if d := string(df) + "\n"; pvid != "" && strings.Contains(d, "PVID="+pvid) || strings.Contains(d, "DEVNAME="+pv+" ") {
		p.Pre = append(p.Pre, Action{What: "lvm: the new root's PV " + pv + " is in /etc/lvm/devices/system.devices"})
		return nil
	}
	if !p.cfg.Devices.HasTool("lvmdevices") {
		return p.refuse("the new root's PV " + pv + " is not in /etc/lvm/devices/system.devices and lvmdevices is not installed: LVM would not see it")
	}
	argv := []string{"lvmdevices", "--adddev", pv}
	p.Pre = append(p.Pre, Action{What: "lvm: add the new root's PV to /etc/lvm/devices/system.devices: " + strings.Join(argv, " "), Argv: argv})
	return nil
}
