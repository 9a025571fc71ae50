// Package demo is the demo applet: a live root swap inside a throwaway
// busybox server, so anyone can watch rootswap do the whole job on any
// Linux with loop devices.
package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/sandbox"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "a live swap inside a throwaway busybox server (needs root, loop devices)"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap demo [--keep] [--init auto|sysvinit|busybox] [--with VARIANTS] [-v]

Builds a small server in a temporary directory (busybox on an ext3 loop
image as its root, its own PID and mount namespaces, sysvinit as PID 1,
syslogd, crond, httpd, a holder of a deleted file, a getty stand-in),
runs the real 'rootswap run' inside it to move its root onto a larger
ext4-capable loop image, and prints the timeline and a before/after table.
  --keep   leave the sandbox running (its directory and pid are printed)
  --init   which init the server runs (default auto: sysvinit when its
           Debian package can be had, busybox init otherwise)
  --with   shapes of real servers to add, comma-separated:
             bind       /srv/data bound on /mnt/data, a service working in it
             swapfile   an active swap file /swap.img on /
             overlay    a service working inside an overlay whose layers are on /
             squashfs   a squashfs image of / mounted through a loop device, in use
             buildroot  busybox init running /etc/init.d/S??name scripts
                        (its PID 1 cannot re-execute: the old root is left
                        detached, read-only, until the reboot)
             all        every one of them
  -v       show the sandbox's own log and console
The server's busybox is the host's, or else Debian's busybox-static; like
sysvinit-core it is fetched once with apt-get download and kept in
/var/cache/rootswap-sandbox.
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	fs := cli.FlagSet(env, "demo")
	keep := fs.Bool("keep", false, "")
	initKind := fs.String("init", sandbox.InitAuto, "")
	verbose := fs.Bool("v", false, "")
	with := fs.String("with", "", "")
	rest, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	variants, err := parseVariants(*with)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return cli.UsageError("unexpected argument %q", rest[0])
	}
	if os.Geteuid() != 0 {
		return errors.New("the demo needs root (loop devices, namespaces, mounts)")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var sblog io.Writer = io.Discard
	if *verbose {
		sblog = env.Stderr
	}
	start := time.Now()
	fmt.Fprintf(env.Stdout, "building the sandbox server (busybox, %s init, ext3 root on a loop device)...\n", *initKind)
	srv, err := sandbox.Build(ctx, sandbox.Options{Binary: self, Init: *initKind, Log: sblog, Variants: variants})
	if err != nil {
		return err
	}
	if !*keep {
		defer srv.Close()
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "server up in %s: init %s, busybox %s, root %s, target %s (empty)\n\n",
		time.Since(start).Round(time.Millisecond), srv.Init, srv.Busybox, srv.RootDev, srv.TargetDev)
	before, err := srv.Snapshot(ctx)
	if err != nil {
		return err
	}

	fmt.Fprintf(env.Stdout, "$ rootswap run --to %s --yes --no-lifeline --confirm-timeout 60s     (inside the server)\n", srv.TargetDev)
	out := prefixWriter{w: env.Stdout, prefix: "  | "}
	if err := srv.Exec(ctx, nil, &out, &out, "/usr/sbin/rootswap", "run", "--to", srv.TargetDev, "--yes", "--no-lifeline", "--confirm-timeout", "60s", "--release-timeout", "20s"); err != nil {
		fmt.Fprintf(env.Stdout, "run: %v\n", err)
	}
	// As the admin would: a new login, then confirm. Until then the engine
	// keeps the old root and would roll back by itself.
	for i := 0; i < 100; i++ {
		var st bytes.Buffer
		srv.Exec(ctx, nil, &st, &st, "/usr/sbin/rootswap", "status")
		if strings.HasPrefix(st.String(), "waiting-confirm") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(env.Stdout, "\n$ rootswap confirm     (a new login inside the server)\n")
	if err := srv.Exec(ctx, nil, &out, &out, "/usr/sbin/rootswap", "confirm"); err != nil {
		fmt.Fprintf(env.Stdout, "confirm: %v\n", err)
	}
	// The foreground returns once the pivot is done; the engine goes on
	// releasing the old root. Follow status until it ends.
	var status bytes.Buffer
	deadline := time.Now().Add(2 * time.Minute)
	for {
		status.Reset()
		err := srv.Exec(ctx, nil, &status, &status, "/usr/sbin/rootswap", "status")
		if err == nil || !strings.HasPrefix(status.String(), "running") && !strings.HasPrefix(status.String(), "waiting") {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	fmt.Fprintf(env.Stdout, "\n$ rootswap status\n")
	(&prefixWriter{w: env.Stdout, prefix: "  | "}).Write(status.Bytes())
	after, err := srv.Snapshot(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout)
	printTable(env.Stdout, srv, before, after)
	fmt.Fprintf(env.Stdout, "\ndemo took %s\n", time.Since(start).Round(time.Millisecond))
	if *keep {
		fmt.Fprintf(env.Stdout, "sandbox kept: %s, init pid %d (enter: nsenter -t %d -m -p -u -i -n -r -w sh)\n", srv.Dir, srv.PID1(), srv.PID1())
	}
	if after.Root.Device != srv.TargetDev {
		return fmt.Errorf("the swap did not complete: / is %s, not %s", after.Root.Device, srv.TargetDev)
	}
	return nil
}

func printTable(w io.Writer, srv *sandbox.Server, before, after sandbox.State) {
	row := func(what, b, a string) { fmt.Fprintf(w, "  %-22s %-34s %s\n", what, b, a) }
	row("", "BEFORE", "AFTER")
	dev := func(s sandbox.State) string {
		return fmt.Sprintf("%s %s %s", s.Root.Device, s.Root.FSType, humanize.IBytes(s.Root.Size))
	}
	row("/", dev(before), dev(after))
	row("/ read-only", fmt.Sprint(before.Root.ReadOnly), fmt.Sprint(after.Root.ReadOnly))
	byName := map[string]sandbox.Process{}
	for _, p := range after.Daemons {
		byName[p.Name] = p
	}
	runs := func(p sandbox.Process) string {
		if p.Err != "" {
			return "DOWN: " + p.Err
		}
		return fmt.Sprintf("pid %d from %s", p.PID, p.RunsFrom)
	}
	row("init", runs(before.Init), runs(after.Init))
	for _, p := range before.Daemons {
		row(p.Name, runs(p), runs(byName[p.Name]))
	}
	page := func(s sandbox.State) string {
		if s.PageErr != "" {
			return "NOT SERVED"
		}
		return fmt.Sprintf("served (%d bytes)", len(s.Page))
	}
	row("http page", page(before), page(after))
	row("/var/log/messages", fmt.Sprintf("%d lines", before.LogLines), fmt.Sprintf("%d lines", after.LogLines))
	old := "mounted"
	if _, ok := after.Mounts.Containing("/mnt/oldroot"); ok {
		if m, _ := after.Mounts.Containing("/mnt/oldroot"); m.Point != "/mnt/oldroot" {
			old = "released"
		}
	}
	if old == "released" && superblockAlive(srv.RootDev) {
		// Unmounted, but a holder (busybox init's own mapping) keeps
		// the filesystem alive, read-only, until it goes.
		old = "detached; fs alive until reboot"
	}
	row("/mnt/oldroot", "-", old)
}

// superblockAlive reports whether the kernel still has the ext
// filesystem of dev (ext2/3 are served by the ext4 driver).
func superblockAlive(dev string) bool {
	_, err := os.Stat("/sys/fs/ext4/" + filepath.Base(dev))
	return err == nil
}

type prefixWriter struct {
	w      io.Writer
	prefix string
	mid    bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !p.mid {
			io.WriteString(p.w, p.prefix)
		}
		p.w.Write(line)
		p.mid = line[len(line)-1] != '\n'
	}
	return len(b), nil
}

// parseVariants reads --with: bind, swapfile, overlay, buildroot, all.
func parseVariants(list string) (sandbox.Variants, error) {
	var v sandbox.Variants
	if list == "" {
		return v, nil
	}
	for _, w := range strings.Split(list, ",") {
		switch strings.TrimSpace(w) {
		case "bind":
			v.BindMount = true
		case "swapfile":
			v.SwapFile = true
		case "overlay":
			v.Overlay = true
		case "buildroot":
			v.Buildroot = true
		case "squashfs":
			v.Squashfs = true
		case "all":
			v = sandbox.Variants{BindMount: true, SwapFile: true, Overlay: true, Buildroot: true, Squashfs: true}
		default:
			return v, cli.UsageError("--with: unknown variant %q (bind, swapfile, overlay, squashfs, buildroot, all)", w)
		}
	}
	return v, nil
}
