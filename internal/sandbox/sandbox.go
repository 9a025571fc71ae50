// Package sandbox builds and runs a throwaway "server" for `rootswap demo`
// and for the root-tier tests of the swap engine: a busybox system on an
// ext3 loop image, booted by a real init (Debian's sysvinit, or busybox
// init) as PID 1 of its own PID, mount, UTS, IPC and network namespaces,
// with a few daemons of the kinds a root swap has to deal with.
//
// Layout of Dir (made by Build, removed by Close):
//
//	Dir/stage/       the tree root.img was made from (mkfs.ext3 -d); removed after mkfs
//	Dir/root.img     the server's root filesystem (ext3, sparse), attached to RootDev
//	Dir/target.img   the swap target, empty and larger, attached to TargetDev
//	Dir/root/        where the stage script mounts root.img before pivot_root
//
// Inside the server:
//
//	/            ext3 on RootDev (source "/dev/loopN" in mountinfo)
//	/proc        its own procfs (the PID namespace's)
//	/sys         sysfs
//	/dev         tmpfs with device nodes made at Start (not the host's devtmpfs,
//	             so syslogd and the engine cannot disturb the host's /dev):
//	             null zero full random urandom tty kmsg loop-control, every
//	             /dev/loopN of the host, console (a pty the host side reads),
//	             ptmx -> pts/ptmx, log -> /var/lib/syslogd/log.sock
//	/dev/pts     devpts, newinstance
//	/dev/shm     tmpfs
//	/run         tmpfs; /var/run -> /run
//
// The network namespace has only lo, brought up by rcS: httpd listens on
// 127.0.0.1:HTTPPort and is reached from inside (Exec busybox wget), never
// from the host.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Init systems Options.Init accepts.
const (
	InitAuto     = "auto"     // sysvinit if its package can be had, busybox otherwise
	InitSysvinit = "sysvinit" // Debian's sysvinit-core: /run/initctl, telinit u re-executes
	InitBusybox  = "busybox"  // busybox init: cannot re-execute itself in place
)

// DefaultCacheDir keeps the downloaded Debian packages (sysvinit-core,
// and busybox-static when the host has no busybox) between runs.
const DefaultCacheDir = "/var/cache/rootswap-sandbox"

// Options say what to build. The zero value builds the default server.
type Options struct {
	// Dir is the sandbox's working directory. It must not exist or be
	// empty; empty means a new directory under os.TempDir(). Close
	// removes it.
	Dir string
	// RootfsType is the server's root filesystem type; only "ext3" (the
	// default) is supported for now.
	RootfsType string
	// RootSize is the size of root.img (default 64 MiB), NewRootSize the
	// size of target.img (default twice RootSize).
	RootSize, NewRootSize int64
	// Binary is the rootswap binary installed as /usr/sbin/rootswap;
	// empty means the running executable.
	Binary string
	// Init is InitAuto (default), InitSysvinit or InitBusybox.
	Init string
	// CacheDir holds the downloaded .debs and their unpacked trees
	// (default DefaultCacheDir).
	CacheDir string
	// Shared makes the server's / (and everything under it) shared, as on
	// a systemd host; the default, private, is what sysvinit hosts have.
	Shared bool
	// HostTools are host programs installed into the server's /sbin along
	// with the shared libraries they need; nil means DefaultHostTools().
	HostTools []string
	// HTTPPort is the port httpd listens on inside (default 80).
	HTTPPort int
	// Log receives progress lines and the server's console; nil discards.
	Log io.Writer
	// Variants add what real servers have: a bind mount from /, a swap
	// file, an overlay-backed service, Buildroot's init scripts.
	Variants
}

// DefaultHostTools are the filesystem tools a real server has and the
// swap engine runs while the root they live on is mounted.
func DefaultHostTools() []string {
	return []string{"e2fsck", "resize2fs", "tune2fs", "dumpe2fs"}
}

// Services are the /etc/init.d scripts rcS starts, in order; each keeps
// its pid in /run/NAME.pid.
func Services() []string {
	return []string{"syslogd", "crond", "httpd", "holder"}
}

// GettyCmdline is the inittab respawn entry standing in for agetty (the
// server has no terminals): a direct child of init with no children, so
// "restart the gettys" has a target. It is argv joined by spaces.
const GettyCmdline = "/bin/sleep 2147483647"

// HeldFile is the file the holder service keeps open after deleting it.
const HeldFile = "/var/tmp/held"

// SyslogSocket is where syslogd binds its socket (/dev/log points here),
// so one daemon holds a unix socket bound on the root filesystem.
const SyslogSocket = "/var/lib/syslogd/log.sock"

// Server is a built sandbox; Start boots it.
type Server struct {
	Dir string
	// RootDev and TargetDev are the loop devices of root.img and
	// target.img; the same paths are valid inside the server.
	RootDev, TargetDev string
	// RootImage and TargetImage are the backing files.
	RootImage, TargetImage string
	// Init is the init system actually installed: InitSysvinit or InitBusybox.
	Init string
	// Busybox is the host path of the busybox the server was built from:
	// the one in PATH, else busybox-static's under Options.CacheDir.
	Busybox string
	// HTTPPort is where httpd listens inside the server.
	HTTPPort int
	// Timings records how long Build, Start and Close took.
	Timings Timings

	opts    Options
	log     io.Writer
	console *console
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error

	closeOnce sync.Once
	closeErr  error
}

// Timings are wall-clock durations of the sandbox's phases.
type Timings struct {
	Build, Start, Close time.Duration
}

// PID1 is the host-side pid of the server's init (0 before Start).
func (s *Server) PID1() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// HostPath is where a path inside the running server is reachable from
// the host: through /proc/PID1/root, which follows the server's root even
// after the engine pivots it.
func (s *Server) HostPath(p string) string {
	return filepath.Join(fmt.Sprintf("/proc/%d/root", s.PID1()), p)
}

func (o Options) withDefaults() (Options, error) {
	if o.RootfsType == "" {
		o.RootfsType = "ext3"
	}
	if o.RootfsType != "ext3" {
		return o, fmt.Errorf("sandbox: root filesystem type %q not supported (only ext3)", o.RootfsType)
	}
	if o.RootSize == 0 {
		o.RootSize = 64 << 20
	}
	if o.RootSize < 16<<20 {
		return o, fmt.Errorf("sandbox: root size %d too small (at least 16 MiB)", o.RootSize)
	}
	if o.NewRootSize == 0 {
		o.NewRootSize = 2 * o.RootSize
	}
	// A target smaller than the root is allowed: tests use it to prove
	// that run refuses it.
	if o.Buildroot {
		if o.Init == InitSysvinit {
			return o, fmt.Errorf("sandbox: the Buildroot variant boots busybox init, not %s", o.Init)
		}
		o.Init = InitBusybox
	}
	switch o.Init {
	case "":
		o.Init = InitAuto
	case InitAuto, InitSysvinit, InitBusybox:
	default:
		return o, fmt.Errorf("sandbox: init %q: want %s, %s or %s", o.Init, InitAuto, InitSysvinit, InitBusybox)
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if o.HostTools == nil {
		o.HostTools = DefaultHostTools()
	}
	if o.HTTPPort == 0 {
		o.HTTPPort = 80
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("sandbox: finding the rootswap binary to install: %w", err)
		}
		o.Binary = self
	}
	return o, nil
}

// Build stages the server's tree, makes root.img from it with mkfs.ext3 -d
// and an empty target.img, and attaches both to loop devices. On error
// everything made so far is removed.
func Build(ctx context.Context, o Options) (_ *Server, err error) {
	t0 := time.Now()
	o, err = o.withDefaults()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("sandbox: needs root (loop devices, mounts, namespaces)")
	}
	if err := o.checkHost(); err != nil {
		return nil, err
	}
	bb, err := findBusybox(ctx, o.CacheDir, o.logf)
	if err != nil {
		return nil, err
	}
	dir, err := makeDir(o.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Dir:         dir,
		RootImage:   filepath.Join(dir, "root.img"),
		TargetImage: filepath.Join(dir, "target.img"),
		Busybox:     bb,
		HTTPPort:    o.HTTPPort,
		opts:        o,
		log:         o.Log,
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	s.Init, err = chooseInit(ctx, o, s.logf)
	if err != nil {
		return nil, err
	}
	stage := filepath.Join(dir, "stage")
	if err := s.stageTree(ctx, stage); err != nil {
		return nil, err
	}
	if err := makeImage(s.RootImage, o.RootSize); err != nil {
		return nil, err
	}
	if _, err := run(ctx, "mkfs.ext3", "-q", "-F", "-b", "4096", "-L", "sandbox-root", "-d", stage, s.RootImage); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(stage); err != nil {
		return nil, err
	}
	if err := makeImage(s.TargetImage, o.NewRootSize); err != nil {
		return nil, err
	}
	if s.RootDev, err = attachLoop(ctx, s.RootImage); err != nil {
		return nil, err
	}
	if s.TargetDev, err = attachLoop(ctx, s.TargetImage); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "root"), 0o755); err != nil {
		return nil, err
	}
	s.Timings.Build = time.Since(t0)
	s.logf("sandbox: built in %s: root %s on %s (%s), target %s on %s, init %s, busybox %s",
		s.Timings.Build.Round(time.Millisecond), s.RootImage, s.RootDev, o.RootfsType, s.TargetImage, s.TargetDev, s.Init, s.Busybox)
	return s, nil
}

func makeDir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "rootswap-sandbox-")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if !errors.Is(err, os.ErrExist) {
			return "", err
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			return "", err
		}
		if len(ents) > 0 {
			return "", fmt.Errorf("sandbox: %s is not empty (Close removes the whole directory, so it must be the sandbox's own)", dir)
		}
	}
	return filepath.Abs(dir)
}

func makeImage(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func attachLoop(ctx context.Context, file string) (string, error) {
	out, err := run(ctx, "losetup", "--find", "--show", file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// run runs a host command and returns its stdout; the error carries stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A killed command's children (dpkg-deb's tar) may hold the pipes.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (s *Server) logf(format string, args ...any) {
	s.opts.logf(format, args...)
}

// logf writes a progress line to Log; Build uses it before there is a
// Server.
func (o Options) logf(format string, args ...any) {
	fmt.Fprintf(o.Log, format+"\n", args...)
}
