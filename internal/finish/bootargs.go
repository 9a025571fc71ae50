package finish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// bootArgs is what finish changes on the kernel command lines outside a
// generated grub.cfg: BLS entries (RHEL 8+, Fedora; with grubby when it
// is installed), systemd-boot entries, extlinux.conf, and the templates
// new kernels get theirs from (/etc/default/grub, /etc/kernel/cmdline,
// grubenv's kernelopts).
type bootArgs struct {
	// Layout names the kernel command lines finish checks after the boot
	// loader's files are regenerated; empty: grub.cfg's linux lines are.
	Layout string
	// Pre are the actions that run before the initramfs is built: the
	// stack's files (stackfiles.go), then the kernel arguments.
	Pre      []Action
	argFiles []argFile
	grubenv  string
	addArgs  []string
	dropArgs []string
	removed  []string // the stale words editArgs took out
}

// Action is one change: a file replaced atomically (mode and owner
// kept), a command, or with neither only a note.
type Action struct {
	What      string // printed after "==> "
	Path      string // the file, as on the host
	Old, Data []byte // its content as read, and the new one
	Argv      []string
}

// argFile is a file of kernel command lines: "options" lines (a BLS or
// systemd-boot entry: all of them are one kernel line) or "append" lines
// (extlinux: each is one).
type argFile struct{ path, key string }

func (p *Plan) readHost(path string) ([]byte, error) {
	return os.ReadFile(filepath.Join(p.root, path))
}

// argLines finds the kernel command lines of a file: the words after a
// line's first word key (any case), after the prefix key ending in "="
// (GRUB_CMDLINE_LINUX=, unquoted; kernelopts=), or the whole file (key
// ""). With edit, each is replaced by edit(words).
func argLines(data []byte, key string, edit func([]string) []string) ([]byte, [][]string) {
	var got [][]string
	if key == "" {
		w := strings.Fields(string(data))
		if edit != nil {
			data = []byte(strings.Join(edit(w), " ") + "\n")
		}
		return data, append(got, w)
	}
	lines := strings.SplitAfter(string(data), "\n")
	for i, l := range lines {
		body := strings.TrimRight(l, "\r\n")
		t := strings.TrimLeft(body, " \t")
		head, val, tail := "", "", ""
		if strings.HasSuffix(key, "=") {
			v, ok := strings.CutPrefix(t, key)
			if !ok {
				continue
			}
			head, val = key, v
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
				head, val, tail = key+v[:1], v[1:len(v)-1], v[:1]
			}
		} else {
			f := strings.Fields(t)
			if len(f) == 0 || !strings.EqualFold(f[0], key) {
				continue
			}
			val = strings.TrimLeft(t[len(f[0]):], " \t")
			head = t[:len(t)-len(val)]
			if head == f[0] {
				head += " "
			}
		}
		w := strings.Fields(val)
		got = append(got, w)
		if edit != nil {
			lines[i] = body[:len(body)-len(t)] + head + strings.Join(edit(w), " ") + tail + l[len(body):]
		}
	}
	return []byte(strings.Join(lines, "")), got
}

// planBootArgs finds the layout, plans its edits and checks the result
// before anything changes.
func (p *Plan) planBootArgs() error {
	// The arguments to add, for dracut, and to drop (rdArgs: the
	// initramfs would wait for what is gone).
	p.addArgs = nil
	if p.Generator != nil && p.Generator.Name == "dracut" {
		p.addArgs = p.rdArgs(p.New.Stack)
	}
	p.dropArgs = p.rdArgs(p.Old.Stack)
	over := map[string][]byte{}
	var err error
	edit := func(path, key string, setRoot bool, what string) {
		old, e := p.readHost(path)
		if e != nil {
			if !errors.Is(e, os.ErrNotExist) {
				err = e
			}
			return
		}
		data, _ := argLines(old, key, func(w []string) []string {
			return p.editArgs(w, setRoot && !hasWord(w, "$kernelopts"))
		})
		if key == "kernelopts=" {
			// grubenv is a 1024-byte block padded with '#'.
			data = bytes.TrimRight(data, "#")
			if len(data) > 1024 {
				err = errors.New(path + ": kernelopts would not fit in its 1024 bytes")
				return
			}
			data = append(data, bytes.Repeat([]byte("#"), 1024-len(data))...)
		}
		over[path] = data
		if what != "" && !bytes.Equal(data, old) {
			p.Pre = append(p.Pre, Action{What: what + " " + path, Path: path, Old: old, Data: data})
		}
	}
	glob := func(dir, key string) {
		m, _ := filepath.Glob(filepath.Join(p.root, dir, "*.conf"))
		for _, f := range m {
			p.argFiles = append(p.argFiles, argFile{display(p.root, f), key})
		}
	}
	b := p.Boot
	if b != nil {
		edit("/etc/default/grub", "GRUB_CMDLINE_LINUX=", false, "kernel arguments: GRUB_CMDLINE_LINUX in")
		cfg, _ := p.readHost(b.Config)
		if strings.Contains(string(cfg), "blscfg") || strings.Contains(string(over["/etc/default/grub"]), "GRUB_ENABLE_BLSCFG=true") {
			glob("boot/loader/entries", "options")
			if len(p.argFiles) == 0 {
				return errors.New("GRUB reads BLS entries (blscfg) but /boot/loader/entries has none: GRUB would boot nothing; is a kernel installed?")
			}
			p.Layout = "the BLS entries in /boot/loader/entries"
			p.grubenv = filepath.Dir(b.Config) + "/grubenv"
			edit(p.grubenv, "kernelopts=", true, "kernel arguments: kernelopts in")
		}
	} else if findTool(p.root, "bootctl") {
		for _, d := range []string{"efi/loader/entries", "boot/efi/loader/entries", "boot/loader/entries"} {
			if glob(d, "options"); len(p.argFiles) > 0 {
				p.Layout = "the systemd-boot entries in /" + d
				break
			}
		}
	} else if exists(p.root, "boot/extlinux/extlinux.conf") {
		p.argFiles = []argFile{{"/boot/extlinux/extlinux.conf", "append"}}
		p.Layout = "/boot/extlinux/extlinux.conf"
	}
	edit("/etc/kernel/cmdline", "", false, "kernel arguments: the template of new kernels in")
	// grubby, the distribution's tool, keeps its own bookkeeping in step.
	grubby := p.grubenv != "" && findTool(p.root, "grubby")
	p.removed = nil
	for _, f := range p.argFiles {
		what := "kernel arguments: " + f.key + " in"
		if grubby {
			what = "" // grubby edits it; planned only to be checked
		}
		edit(f.path, f.key, true, what)
	}
	if err != nil {
		return err
	}
	if grubby {
		argv := []string{"grubby", "--update-kernel=ALL", "--args=" + strings.Join(append([]string{"root=" + p.rootArg()}, p.addArgs...), " ")}
		if len(p.removed) > 0 {
			argv = append(argv, "--remove-args="+strings.Join(p.removed, " "))
		}
		p.Pre = append(p.Pre, Action{What: "kernel arguments: every BLS entry: " + strings.Join(argv, " "), Argv: argv})
	}
	if len(p.addArgs) > 0 && len(over) == 0 {
		// No command line of the boot loader to add them to: dracut
		// puts them in the image itself.
		path := "/etc/dracut.conf.d/90-rootswap.conf"
		data := []byte("# rootswap finish: what dracut needs to find the root\nkernel_cmdline=\"" + strings.Join(p.addArgs, " ") + "\"\n")
		old, _ := p.readHost(path)
		if !bytes.Equal(old, data) {
			p.Pre = append(p.Pre, Action{What: "dracut: kernel arguments in " + path, Path: path, Old: old, Data: data})
		}
	}
	if p.Layout != "" {
		if _, err := p.checkBoot(func(path string) ([]byte, error) {
			if d, ok := over[path]; ok {
				return d, nil
			}
			return p.readHost(path)
		}); err != nil {
			return fmt.Errorf("%w; finish cannot fix that (nothing was changed)", err)
		}
	}
	return nil
}

// checkBoot reads the kernel lines of the layout and fails unless every
// one boots the new root. It returns how many there are.
func (p *Plan) checkBoot(read func(string) ([]byte, error)) (int, error) {
	kopts := ""
	if p.grubenv != "" {
		if d, err := read(p.grubenv); err == nil {
			if _, l := argLines(d, "kernelopts=", nil); len(l) > 0 {
				kopts = strings.Join(l[len(l)-1], " ")
			}
		}
	}
	var bad []string
	n := 0
	for _, f := range p.argFiles {
		data, err := read(f.path)
		if err != nil {
			return 0, err
		}
		_, lines := argLines([]byte(strings.ReplaceAll(string(data), "$kernelopts", kopts)), f.key, nil)
		if f.key == "options" {
			// An entry's options lines are one command line.
			var all []string
			for _, w := range lines {
				all = append(all, w...)
			}
			lines = [][]string{all}
		}
		for _, w := range lines {
			n++
			if why := p.bootsNew(w); why != "" {
				bad = append(bad, f.path+": "+why)
			}
		}
	}
	if n == 0 {
		return 0, errors.New(p.Layout + ": no kernel command line: the boot loader would boot nothing")
	}
	if len(bad) > 0 {
		return n, errors.New(p.Layout + " would not boot the new root " + p.New.Path + ": " + strings.Join(bad, "; "))
	}
	return n, nil
}

// doActions prints each action (a file's changed lines too) and, unless
// DryRun, carries it out.
func (p *Plan) doActions(ctx context.Context, run Runner, as []Action) error {
	env := p.cfg.Env
	for _, a := range as {
		env.Printf("==> %s\n", a.What)
		if a.Argv != nil {
			if err := run(ctx, a.Argv); err != nil {
				return err
			}
			continue
		}
		if a.Path == "" {
			continue
		}
		// The new lines (grubenv's padding is none).
		for _, l := range strings.Split(string(a.Data), "\n") {
			if l = strings.TrimRight(l, "#"); !strings.Contains(string(a.Old), l) {
				env.Printf("    + %s\n", l)
			}
		}
		if !p.cfg.DryRun && string(a.Old) != string(a.Data) {
			if err := writeAtomic(filepath.Join(p.root, a.Path), a.Data); err != nil {
				return fmt.Errorf("writing %s: %w", a.Path, err)
			}
		}
	}
	return nil
}

// writeAtomic replaces the file at path (the one a symlink names) by a
// new one with the same mode and owner: written, synced, renamed.
func writeAtomic(path string, data []byte) error {
	if r, err := filepath.EvalSymlinks(path); err == nil {
		path = r
	}
	fi, err := os.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".rootswap.tmp")
	if err := writeSynced(tmp, data, fi, os.O_TRUNC); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
