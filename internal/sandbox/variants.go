package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// contextGrace bounds a command run inside while the server is closed.
const contextGrace = 30 * time.Second

// Variants are what real servers add to the default one, each a way the
// swap can fail that the root tier must catch without a VM. The zero
// value adds nothing.
type Variants struct {
	// BindMount binds BindSource (a directory of /) on BindPoint at boot,
	// the way fstab binds chroots, containers and NFS exports, and the
	// service "datauser" works in it (its cwd), keeping it in use.
	BindMount bool
	// SwapFile makes SwapFile (SwapFileSize, no holes) at first boot and
	// turns it on, as Ubuntu's /swap.img, with the kernel's own priority
	// (busybox swapon has no -p). Swap is the host kernel's: Close turns
	// it off first.
	SwapFile bool
	// Overlay mounts an overlay on OverlayPoint whose lower, upper and
	// work directories are under OverlayLayers on /, and the service
	// "container" works inside it (its cwd), as a container runtime's.
	Overlay bool
	// Buildroot boots the way Buildroot's busybox systems do: busybox
	// init, and an rcS that runs every /etc/init.d/S??* script in order;
	// the scripts name their pidfiles (/var/run/NAME.pid) by the daemon,
	// not by the script (S01logging keeps syslogd.pid). Implies busybox init.
	Buildroot bool
	// Squashfs mounts SquashfsImage, a squashfs file on /, read-only
	// through a loop device on SquashfsPoint at boot, as snapd mounts
	// snaps, and the service "appuser" works in it (its cwd). Needs the
	// host's mksquashfs to make the image.
	Squashfs bool
}

// The variants' places.
const (
	BindSource    = "/srv/data"
	BindPoint     = "/mnt/data"
	BindFile      = "/srv/data/README"
	SwapFile      = "/swap.img"
	SwapFileSize  = 16 << 20
	OverlayPoint  = "/srv/container"
	OverlayLayers = "/var/lib/ovl"
	SquashfsImage = "/var/lib/images/app.sqfs"
	SquashfsPoint = "/srv/app"
	SquashfsFile  = "/srv/app/VERSION" // a file in the image
)

// buildrootScript are the S??name script of each service: sorted, they
// run in Services() order, variant services last.
func buildrootScript(s string) string {
	switch s {
	case "syslogd":
		return "S01logging"
	case "crond":
		return "S40cron"
	case "httpd":
		return "S50webserver"
	case "holder":
		return "S60holder"
	case "datauser":
		return "S70datauser"
	case "container":
		return "S80container"
	case "appuser":
		return "S85appuser"
	}
	return ""
}

// ServiceNames are the server's services in start order: Services()
// and those of its variants. Each keeps its pid in /run/NAME.pid.
func (s *Server) ServiceNames() []string {
	names := Services()
	if s.opts.BindMount {
		names = append(names, "datauser")
	}
	if s.opts.Overlay {
		names = append(names, "container")
	}
	if s.opts.Squashfs {
		names = append(names, "appuser")
	}
	return names
}

// scriptName is the /etc/init.d script of a service.
func (s *Server) scriptName(name string) string {
	if s.opts.Buildroot {
		return buildrootScript(name)
	}
	return name
}

// variantServices are the services the variants add.
func (s *Server) variantServices() []service {
	var out []service
	if s.opts.BindMount {
		out = append(out, service{"datauser", "works in " + BindPoint + " (bound from " + BindSource + " on /), keeping it in use",
			"cd " + BindPoint + " && exec sleep 2147483647", ""})
	}
	if s.opts.Overlay {
		out = append(out, service{"container", "works inside the overlay on " + OverlayPoint + " (layers under " + OverlayLayers + " on /), as a container would",
			"cd " + OverlayPoint + " && exec sleep 2147483647", ""})
	}
	if s.opts.Squashfs {
		out = append(out, service{"appuser", "works in " + SquashfsPoint + " (a squashfs image of / mounted read-only), as a snap's daemon would",
			"cd " + SquashfsPoint + " && exec sleep 2147483647", ""})
	}
	return out
}

// variantSetup is what rcS does for the variants before it starts the
// services, as fstab and the boot scripts of such servers would.
func (s *Server) variantSetup() string {
	var b strings.Builder
	if s.opts.BindMount {
		fmt.Fprintf(&b, "mount --bind %s %s\n", BindSource, BindPoint)
	}
	if s.opts.SwapFile {
		// dd writes every block: a swap file must have no holes.
		fmt.Fprintf(&b, "[ -s %[1]s ] || { dd if=/dev/zero of=%[1]s bs=1048576 count=%[2]d 2>/dev/null && chmod 600 %[1]s && mkswap %[1]s >/dev/null; }\nswapon %[1]s\n",
			SwapFile, SwapFileSize>>20)
	}
	if s.opts.Overlay {
		fmt.Fprintf(&b, "mount -t overlay overlay -o lowerdir=%[1]s/lower,upperdir=%[1]s/upper,workdir=%[1]s/work %[2]s\n", OverlayLayers, OverlayPoint)
	}
	if s.opts.Squashfs {
		fmt.Fprintf(&b, "mount -t squashfs -o loop,ro %s %s\n", SquashfsImage, SquashfsPoint)
	}
	return b.String()
}

// variantDirs are the directories the variants need on /.
func (s *Server) variantDirs() []string {
	var d []string
	if s.opts.BindMount {
		d = append(d, BindSource, BindPoint)
	}
	if s.opts.Overlay {
		d = append(d, OverlayLayers+"/lower", OverlayLayers+"/upper", OverlayLayers+"/work", OverlayPoint)
	}
	if s.opts.Squashfs {
		d = append(d, filepath.Dir(SquashfsImage), SquashfsPoint)
	}
	return d
}

// variantFiles are the files the variants need on /.
func (s *Server) variantFiles() []stagedFile {
	var f []stagedFile
	if s.opts.BindMount {
		f = append(f, stagedFile{strings.TrimPrefix(BindFile, "/"), 0o644, "data shared through the bind mount on " + BindPoint + "\n"})
	}
	if s.opts.Overlay {
		f = append(f, stagedFile{strings.TrimPrefix(OverlayLayers, "/") + "/lower/image", 0o644, "the container image's lower layer\n"})
	}
	return f
}

// rcSBuildroot is Buildroot's rcS: every S??* script in order, with start.
const rcSBuildroot = `#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
hostname -F /etc/hostname
ip link set lo up
: >/run/utmp
%s
for i in /etc/init.d/S??* ; do
	[ ! -f "$i" ] && continue
	case "$i" in
	*.sh) ( trap - INT QUIT TSTP; set start; . $i ) ;;
	*) $i start ;;
	esac
done
`

// rcK is Buildroot's shutdown counterpart: the scripts in reverse, with stop.
const rcK = `#!/bin/sh
for i in $(ls -r /etc/init.d/S??*) ; do
	[ ! -f "$i" ] && continue
	$i stop
done
`

// buildrootScriptList is the S??* scripts in the order rcS runs them.
func (s *Server) buildrootScriptList() []string {
	var l []string
	for _, n := range s.ServiceNames() {
		l = append(l, buildrootScript(n))
	}
	sort.Strings(l)
	return l
}

// swapOffInside turns off the swap file of a SwapFile server before it
// is killed: swap is the host kernel's, and an active swap file would
// keep its filesystem (and loop device) busy for ever.
func (s *Server) swapOffInside() {
	if !s.opts.SwapFile || s.PID1() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), contextGrace)
	defer cancel()
	if err := s.Exec(ctx, nil, nil, nil, "/bin/busybox", "swapoff", SwapFile); err != nil {
		s.logf("sandbox: swapoff %s inside: %v", SwapFile, err)
	}
}

// stageSquashfs makes the Squashfs variant's image in the staged root dir
// with the host's mksquashfs.
func (s *Server) stageSquashfs(ctx context.Context, dir string) error {
	if !s.opts.Squashfs {
		return nil
	}
	mk, err := exec.LookPath("mksquashfs")
	if err != nil {
		return fmt.Errorf("sandbox: the squashfs variant needs mksquashfs: apt-get install squashfs-tools")
	}
	src, err := os.MkdirTemp("", "sandbox-sqfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, filepath.Base(SquashfsFile)), []byte("app 1.0, from a squashfs image on /\n"), 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, mk, src, filepath.Join(dir, SquashfsImage), "-quiet", "-noappend", "-all-root").CombinedOutput()
	if err != nil {
		return fmt.Errorf("sandbox: mksquashfs: %w\n%s", err, out)
	}
	return nil
}
