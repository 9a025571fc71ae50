package finish

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/fstools"
	"github.com/rootswap/rootswap/internal/journal"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/swap"
	"golang.org/x/sys/unix"

	"github.com/rootswap/rootswap/internal/testutil"
)

// The story's identities: the old root is a block copy's source, so the
// new root carries the same label; the UUIDs differ here so that the
// tests can tell which one a root= names (TestSameUUID covers equal ones).
const (
	oldUUID = "2f6c1a4e-8d3b-4c2a-9e7f-1b5d0a3c6e94"
	newUUID = "0d3b1c8e-4f5a-4a27-9a1b-3f0c2d1e5a6b"
	// relabelledUUID is the one the fake relabel gives.
	relabelledUUID = "6a0e7d4b-93c1-4f8e-b2a5-0c9d8e7f6a51"
)

// The fixture's mount table: / on the LVM volume, /boot on sda1.
const mountsAfterSwap = `22 29 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
23 29 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
29 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/sys-root rw,errors=remount-ro
40 29 8:1 / /boot rw,relatime shared:17 - ext2 /dev/sda1 rw
`

// materialize builds the sysfs tree of testdata/sysfs.txt.
func materialize(t *testing.T) string { return testutil.TreeFromText(t, "testdata/sysfs.txt") }

// fixture is a host after a swap: a file tree (Root), /proc and /sys
// trees, fake devices, a recording runner and a recording relabel applet.
type fixture struct {
	t               *testing.T
	root, proc, sys string
	fs              map[string]fstools.FS // what each device shows
	rdev            map[string]uint64
	busy            map[string]bool
	tools           map[string]bool // in PATH
	ran             [][]string      // commands, in order
	relabelled      [][]string      // tune2fs-relabel calls
	grubCfg         string          // what the fake update-grub writes
	stdout, stderr  bytes.Buffer
	stdin           string
	cfg             Config
	failCommand     string
	outputs         map[string]string // what Output returns, by argv
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	x := &fixture{
		t:    t,
		root: t.TempDir(),
		proc: t.TempDir(),
		sys:  materialize(t),
		fs: map[string]fstools.FS{
			"/dev/mapper/sys-root": {Type: "ext4", Label: "root", UUID: newUUID, Size: 3 << 30},
			"/dev/sda2":            {Type: "ext3", Label: "root", UUID: oldUUID, Size: 2 << 30},
		},
		rdev: map[string]uint64{
			"/dev/sda":             unix.Mkdev(8, 0),
			"/dev/sda2":            unix.Mkdev(8, 2),
			"/dev/sda3":            unix.Mkdev(8, 3),
			"/dev/mapper/sys-root": unix.Mkdev(253, 0),
			"/dev/sys/root":        unix.Mkdev(253, 0),
			"/dev/dm-0":            unix.Mkdev(253, 0),
		},
		busy:    map[string]bool{},
		tools:   map[string]bool{},
		grubCfg: grubCfgFor("root=/dev/mapper/sys-root"),
	}
	x.writeProc(mountsAfterSwap)
	// A Debian host with initramfs-tools, lvm2 and grub-pc.
	x.file("etc/fstab", readTestdata(t, "fstab/debian-label.fstab"), 0o644)
	x.exe("usr/sbin/update-initramfs")
	x.dir("etc/initramfs-tools")
	x.file("usr/share/initramfs-tools/hooks/lvm2", "#!/bin/sh\n", 0o755)
	x.exe("usr/sbin/update-grub")
	x.exe("usr/sbin/grub-install")
	x.file("boot/grub/grub.cfg", grubCfgFor("root=LABEL=root"), 0o444)
	x.journal(succeeded(8, 2))
	return x
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (x *fixture) file(rel, content string, mode os.FileMode) {
	x.t.Helper()
	p := filepath.Join(x.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		x.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		x.t.Fatal(err)
	}
	os.Chmod(p, mode)
}

func (x *fixture) exe(rel string) {
	x.file(rel, "#!/bin/sh\nexit 99 # never run: the runner is faked\n", 0o755)
}

func (x *fixture) dir(rel string) {
	x.t.Helper()
	if err := os.MkdirAll(filepath.Join(x.root, rel), 0o755); err != nil {
		x.t.Fatal(err)
	}
}

func (x *fixture) writeProc(mountinfo string) {
	x.t.Helper()
	if err := os.MkdirAll(filepath.Join(x.proc, "self"), 0o755); err != nil {
		x.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(x.proc, "self", "mountinfo"), []byte(mountinfo), 0o644); err != nil {
		x.t.Fatal(err)
	}
}

// journal writes the archived journal of a swap with the given records.
func (x *fixture) journal(recs []journal.Record) {
	x.t.Helper()
	dir := filepath.Join(x.root, swap.ArchiveDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		x.t.Fatal(err)
	}
	p := filepath.Join(dir, "last.journal")
	os.Remove(p)
	j, err := journal.Create(p, func() time.Time { return time.Date(2024, 1, 2, 3, 0, 0, 0, time.UTC) })
	if err != nil {
		x.t.Fatal(err)
	}
	defer j.Close()
	for _, r := range recs {
		if err := j.Add(r); err != nil {
			x.t.Fatal(err)
		}
	}
}

// succeeded is the journal of a swap that ended well, from the root on
// maj:min.
func succeeded(maj, min uint32) []journal.Record {
	st := &swap.State{OldRoot: mountinfo.Mount{ID: 29, Parent: 1, Major: maj, Minor: min, Root: "/", Point: "/", FSType: "ext3", Source: "/dev/sda2"}}
	return []journal.Record{
		{Kind: journal.KindStart, PID: 4242, Data: map[string]string{"state": st.Marshal()}},
		{Kind: journal.KindBegin, Step: swap.StepPivot},
		{Kind: journal.KindEnd, Step: swap.StepPivot, Data: map[string]string{"state": st.Marshal()}},
		{Kind: journal.KindDone, Result: string(journal.Succeeded)},
	}
}

func grubCfgFor(root string) string {
	return `### BEGIN /etc/grub.d/10_linux ###
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple' {
	load_video
	insmod ext2
	echo	'Loading Linux 6.1.0-18-amd64 ...'
	linux	/vmlinuz-6.1.0-18-amd64 ` + root + ` ro  quiet
	echo	'Loading initial ramdisk ...'
	initrd	/initrd.img-6.1.0-18-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-18-amd64 (recovery mode)' --class debian {
		linux	/vmlinuz-6.1.0-18-amd64 ` + root + ` ro single
		initrd	/initrd.img-6.1.0-18-amd64
	}
}
### END /etc/grub.d/10_linux ###
`
}

// config is the Config of a finish run on the fixture.
func (x *fixture) config() *Config {
	env := &cli.Env{
		Stdin:    strings.NewReader(x.stdin),
		Stdout:   &x.stdout,
		Stderr:   &x.stderr,
		ProcRoot: x.proc,
		SysRoot:  x.sys,
		Now:      func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) },
		Getenv:   func(string) string { return "" },
	}
	c := x.cfg
	c.Env, c.Root = env, x.root
	c.Run = func(ctx context.Context, argv []string) error {
		x.ran = append(x.ran, argv)
		if argv[0] == x.failCommand {
			return fmt.Errorf("%s: exit status 1", argv[0])
		}
		switch argv[0] {
		case "update-grub":
			x.file("boot/grub/grub.cfg", x.grubCfg, 0o444)
		case "grub2-mkconfig":
			x.file(argv[2][1:], x.grubCfg, 0o600)
		case "wipefs":
			x.fs[argv[len(argv)-1]] = fstools.FS{}
		}
		return nil
	}
	c.Output = func(ctx context.Context, argv []string) ([]byte, error) {
		x.ran = append(x.ran, argv)
		return []byte(x.outputs[strings.Join(argv, " ")]), nil
	}
	c.Devices = Devices{
		Rdev: func(p string) (uint64, error) {
			if d, ok := x.rdev[p]; ok {
				return d, nil
			}
			return 0, &os.PathError{Op: "stat", Path: p, Err: unix.ENOENT}
		},
		Detect: func(p string) (fstools.FS, error) {
			if fs, ok := x.fs[p]; ok {
				return fs, nil
			}
			return fstools.FS{}, &os.PathError{Op: "open", Path: p, Err: unix.ENOENT}
		},
		InUse:   func(p string) (bool, error) { return x.busy[p], nil },
		Size:    func(string) (int64, error) { return 2 << 30, nil },
		HasTool: func(tool string) bool { return x.tools[tool] },
		Relabel: func(ctx context.Context, _ io.Writer, _ func(string) string, _, _, path string) (string, error) {
			x.relabelled = append(x.relabelled, []string{path, "--label", OldLabel})
			fs := x.fs[path]
			fs.Label = OldLabel
			fs.UUID = relabelledUUID
			x.fs[path] = fs
			return fs.UUID, nil
		},
	}
	return &c
}

func (x *fixture) run() error {
	x.t.Helper()
	return Run(context.Background(), x.config())
}

// snapshot is every file of the tree with its mode and content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffSnapshots(before, after map[string]string) []string {
	var d []string
	for k, v := range before {
		if w, ok := after[k]; !ok {
			d = append(d, "removed "+k)
		} else if w != v {
			d = append(d, "changed "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, "added "+k)
		}
	}
	sort.Strings(d)
	return d
}

func argvs(cmds [][]string) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, strings.Join(c, " "))
	}
	return out
}
