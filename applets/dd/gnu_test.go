package dd

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gnuDD is GNU dd, which the differential tests compare with.
const gnuDD = "/usr/bin/dd"

// pair is GNU dd and rootswap dd side by side, both run as "dd" (argv[0])
// so that their messages start the same way.
type pair struct {
	gnu, ours string // executables; ours is a link named dd to rootswap
	dir       string // scratch directory
}

// newPair builds rootswap (or takes $ROOTSWAP_BIN) and skips without
// GNU dd.
func newPair(t *testing.T) *pair {
	t.Helper()
	if _, err := os.Stat(gnuDD); err != nil {
		t.Skipf("%s not installed: nothing to compare with", gnuDD)
	}
	dir := t.TempDir()
	bin := os.Getenv("ROOTSWAP_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "rootswap")
		cmd := exec.Command("go", "build", "-o", bin, "../..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	linkDir := filepath.Join(dir, "bin")
	os.Mkdir(linkDir, 0o755)
	link := filepath.Join(linkDir, "dd")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	return &pair{gnu: gnuDD, ours: link, dir: dir}
}

// result is what one dd run left: its stderr and how it ended.
type result struct {
	stderr string
	status int            // exit status, -1 when killed
	signal syscall.Signal // the signal that killed it
}

func (r result) String() string {
	if r.signal != 0 {
		return fmt.Sprintf("killed by %v, stderr:\n%s", r.signal, r.stderr)
	}
	return fmt.Sprintf("exit %d, stderr:\n%s", r.status, r.stderr)
}

func ended(cmd *exec.Cmd, err error, stderr string) result {
	r := result{stderr: stderr}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errorsAs(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			r.status, r.signal = -1, ws.Signal()
		} else {
			r.status = ws.ExitStatus()
		}
	default:
		r.status = -2
		r.stderr += err.Error()
	}
	return r
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// command is dd (exe) with args, as "dd", in dir, in the C locale.
func command(exe, dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(exe, args...)
	cmd.Args[0] = "dd"
	cmd.Dir = dir
	cmd.Env = append(environ(), "LC_ALL=C")
	return cmd
}

// environ is the test's environment without POSIXLY_CORRECT, which
// changes what GNU dd does with options and SIGUSR1.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSIXLY_CORRECT=") {
			env = append(env, kv)
		}
	}
	return env
}

// shell runs script in dir with exe first in PATH as dd.
func shell(exe, dir, script string) *exec.Cmd {
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(environ(), "LC_ALL=C", "PATH="+filepath.Dir(exe)+":"+os.Getenv("PATH"))
	return cmd
}

// runTimeout bounds every run: a dd that waits for ever fails its test.
const runTimeout = time.Minute

func run(cmd *exec.Cmd, stdin []byte) result {
	timer := time.AfterFunc(runTimeout, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = &bytes.Buffer{}
	}
	err := cmd.Run()
	return ended(cmd, err, errb.String())
}

// rateRE is the part of a statistics line that differs between runs.
var rateRE = regexp.MustCompile(`copied, [^,\r\n]* s, [^\r\n]*?B/s`)

// normal replaces times and rates; a progress line drawn with \r keeps
// its \r but loses the padding that depends on the previous one's length.
func normal(s string) string {
	s = rateRE.ReplaceAllString(s, "copied, T")
	return regexp.MustCompile(` +(\r|\n)`).ReplaceAllString(s, "$1")
}

// same compares two results: stderr (normalized), status, signal.
func same(t *testing.T, what string, gnu, ours result) {
	t.Helper()
	if got, want := normal(ours.stderr), normal(gnu.stderr); got != want {
		t.Errorf("%s: stderr differs:\n--- rootswap dd\n%s\n--- GNU dd\n%s", what, got, want)
	}
	if ours.status != gnu.status || ours.signal != gnu.signal {
		t.Errorf("%s: rootswap dd %s\nGNU dd %s", what, ours, gnu)
	}
}

func sameFile(t *testing.T, what, gnu, ours string) {
	t.Helper()
	a, errA := os.ReadFile(gnu)
	b, errB := os.ReadFile(ours)
	if (errA == nil) != (errB == nil) {
		t.Errorf("%s: GNU's output %v, ours %v", what, errA, errB)
		return
	}
	if !bytes.Equal(a, b) {
		i := 0
		for i < min(len(a), len(b)) && a[i] == b[i] {
			i++
		}
		t.Errorf("%s: output files differ from byte %d: GNU %d bytes, ours %d", what, i, len(a), len(b))
	}
	var sa, sb unix.Stat_t
	if unix.Stat(gnu, &sa) == nil && unix.Stat(ours, &sb) == nil && sa.Blocks != sb.Blocks && what != "" {
		// conv=sparse: the holes must be where GNU leaves them.
		t.Logf("%s: %d blocks allocated by GNU, %d by ours", what, sa.Blocks, sb.Blocks)
	}
}

// TestDifferentialFiles runs both dd's on the same files with the same
// operands and compares the output files, stderr and exit status.
func TestDifferentialFiles(t *testing.T) {
	p := newPair(t)
	src := filepath.Join(p.dir, "src")
	writeRandom(t, src, 3<<20+777, 1)
	big := filepath.Join(p.dir, "big") // past the engine's threshold
	writeRandom(t, big, 40<<20+12345, 4)
	small := filepath.Join(p.dir, "small")
	writeRandom(t, small, 5000, 5)
	for _, tc := range []struct {
		in  string
		ops []string
		// fresh: the output does not exist beforehand.
		fresh bool
	}{
		{src, nil, false},
		{src, []string{"bs=1M"}, false},
		{src, []string{"bs=4096", "count=100"}, false},
		{src, []string{"bs=1000", "skip=3", "count=7"}, false},
		{src, []string{"ibs=1000", "obs=300"}, false},
		{src, []string{"ibs=4K", "obs=1M", "count=10"}, false},
		{src, []string{"bs=2x512", "count=1KB"}, false},
		{src, []string{"bs=1M", "seek=3", "count=2"}, false},
		{src, []string{"bs=64K", "skip=100KB", "count=5"}, false},
		{src, []string{"bs=1M", "count=0"}, false},
		{src, []string{"bs=1M", "skip=100"}, false},
		{src, []string{"bs=1M", "skip=3"}, false},
		{src, []string{"bs=64K", "conv=sparse"}, false},
		{src, []string{"bs=1M", "conv=notrunc,fdatasync", "seek=1"}, false},
		{src, []string{"bs=1M", "conv=fsync", "status=noxfer"}, false},
		{src, []string{"bs=1M", "status=none"}, false},
		{src, []string{"status=progress", "bs=1M"}, false},
		// Partial blocks with the byte flags.
		{src, []string{"bs=3", "count=5", "iflag=count_bytes,skip_bytes", "skip=7", "oflag=seek_bytes", "seek=11"}, false},
		{src, []string{"ibs=1000", "obs=777", "count=2500B", "skip=1234B", "seek=99B"}, false},
		{src, []string{"bs=4096", "count=10000", "iflag=count_bytes"}, false},
		{src, []string{"bs=4096", "skip=5000", "iflag=skip_bytes", "count=3"}, false},
		{src, []string{"bs=4096", "seek=5000", "oflag=seek_bytes", "count=3", "conv=notrunc"}, false},
		{src, []string{"bs=4096", "seek=5000", "oflag=seek_bytes", "count=3"}, false},
		{small, []string{"bs=3000", "conv=sync"}, false},
		{small, []string{"ibs=3000", "obs=1000", "conv=sync,noerror"}, false},
		{small, []string{"bs=1000", "skip=4", "count=3", "conv=sync"}, false},
		{small, []string{"bs=1M", "iflag=fullblock", "count=1"}, false},
		{small, []string{"bs=100", "oflag=append", "conv=notrunc", "count=3"}, false},
		{small, []string{"conv=excl"}, false},
		{small, []string{"conv=excl"}, true},
		{small, []string{"conv=nocreat"}, true},
		{small, []string{"conv=nocreat"}, false},
		{small, []string{"bs=1000", "skip=10"}, false},
		{small, []string{"bs=1000", "seek=1", "skip=1", "iflag=nocache", "oflag=nocache"}, false},
		{small, []string{"bs=4096", "iflag=direct", "oflag=direct"}, false},
		{small, []string{"bs=4096", "oflag=direct,dsync", "iflag=noatime"}, false},
		{small, []string{"oflag=sync", "iflag=nofollow"}, false},
		{"/proc/self/mountinfo", []string{"bs=100"}, false},
		{"/dev/null", nil, false},
		{"/nonexistent", nil, false},
		// The engine's run of whole blocks, then GNU's loop.
		{big, []string{"bs=1M"}, false},
		{big, []string{"bs=1000"}, false},
		{big, []string{"ibs=4096", "obs=1536", "skip=7", "seek=3"}, false},
		{big, []string{"bs=1M", "count=39", "seek=2", "conv=notrunc"}, false},
		{big, []string{"bs=1M", "count=35000000", "iflag=count_bytes", "skip=1000001B"}, false},
	} {
		name := strings.Join(append([]string{filepath.Base(tc.in)}, tc.ops...), " ")
		if tc.fresh {
			name += " (new output)"
		}
		t.Run(name, func(t *testing.T) {
			var res [2]result
			var outs [2]string
			for i, exe := range []string{p.gnu, p.ours} {
				// The same relative name in two directories: the
				// messages name it the same way.
				dir := filepath.Join(p.dir, fmt.Sprintf("run%d", i))
				os.MkdirAll(dir, 0o755)
				outs[i] = filepath.Join(dir, "out")
				os.Remove(outs[i])
				if !tc.fresh {
					writeRandom(t, outs[i], 1<<20, 2) // something to truncate or keep
				}
				res[i] = run(command(exe, dir, append([]string{"if=" + tc.in, "of=out"}, tc.ops...)...), nil)
			}
			same(t, name, res[0], res[1])
			sameFile(t, name, outs[0], outs[1])
		})
	}
}

// TestDifferentialStreams covers pipes (short reads from a writer that
// writes in pieces), standard output, /dev/full, closed and full stderr,
// ulimit -f and /proc input, through a shell.
func TestDifferentialStreams(t *testing.T) {
	p := newPair(t)
	writeRandom(t, filepath.Join(p.dir, "src"), 3<<20+777, 1)
	for _, script := range []string{
		// Partial reads: 3, then 4 of 5 available, 1, then 2 bytes.
		`(printf abc; sleep 0.2; printf defgh; sleep 0.2; printf ij) | dd bs=4 of=out`,
		`(printf abc; sleep 0.2; printf defgh; sleep 0.2; printf ij) | dd bs=4 count=2 of=out`,
		`(printf abc; sleep 0.2; printf defgh; sleep 0.2; printf ij) | dd bs=4 count=3 iflag=fullblock of=out`,
		`(printf abc; sleep 0.2; printf defgh; sleep 0.2; printf ij) | dd ibs=4 obs=3 conv=sync of=out`,
		`(printf abc; sleep 0.2; printf defgh; sleep 0.2; printf ij) | dd bs=4 skip=1 of=out`,
		`(printf abc; sleep 0.2; printf defgh) | dd bs=4 count=5 iflag=count_bytes of=out`,
		`(printf abc; sleep 0.2; printf defgh) | dd bs=2 skip=3 iflag=skip_bytes of=out`,
		`dd if=src bs=1000 count=5 | od -c | tail -1`,
		`dd if=src bs=1000 count=5 status=none | dd of=out bs=333 seek=2 iflag=fullblock`,
		`dd if=src bs=1000 count=1 status=none | dd bs=100 skip=20 of=out`,
		`dd if=src bs=1000 count=1 status=none | dd bs=100 seek=2 2>&1 >/dev/null | head -2`,
		`dd if=src bs=1000 count=1 status=none | POSIXLY_CORRECT=1 dd bs=100 -z`,
		// Death by SIGPIPE, silently, when the reader is gone.
		`dd if=/dev/zero bs=1000 | head -c 1`,
		`dd if=/dev/zero bs=1000 | (exec 0<&-; sleep 0.1); echo status $?`,
		`dd if=src bs=1000 count=1 status=none | dd bs=100 -z`,
		`dd if=src of=out bs=100 count=3 seek=1 < /dev/null > /dev/null`,
		// Write errors: the message, then the statistics.
		`dd if=src of=/dev/full bs=1M`,
		`dd if=/dev/zero of=/dev/full count=3`,
		`dd if=src of=/dev/full bs=1000 count=3 conv=fsync`,
		`ulimit -f 2048; trap '' XFSZ; dd if=src of=out bs=1M`,
		`ulimit -f 2048; trap '' XFSZ; dd if=src of=out bs=300K`,
		`ulimit -f 2048; trap '' XFSZ; dd if=src of=out ibs=1M obs=300K`,
		// stderr that cannot be written.
		`dd if=src of=out count=1 2>&-`,
		`dd if=src of=out count=1 status=none 2>&-`,
		`dd if=src of=out count=1 2>/dev/full`,
		`dd if=src of=out count=1 status=none 2>/dev/full`,
		`dd if=src count=1 >&-`,
		`dd of=out count=1 <&-`,
		// Read errors: the first pages of a process's memory are not
		// mapped, and reading them fails with EIO.
		`dd if=/proc/self/mem of=out bs=4096 count=3 conv=noerror,sync`,
		`dd if=/proc/self/mem of=out ibs=4096 obs=1000 count=2 conv=noerror,sync`,
		`dd if=/proc/self/mem of=out bs=4096 count=2 conv=noerror,sync status=none`,
		`dd if=/proc/self/mem of=out bs=4096 count=2`,
		`dd if=/proc/self/mem of=out bs=4096 count=2 skip=1 conv=noerror,sync status=noxfer`,
		`dd if=/tmp of=out bs=512 count=2 conv=noerror,sync`,
		// Reported sizes are not trusted.
		`dd if=/proc/self/status of=out bs=64; head -c 5 out`,
		`dd if=/proc/self/status of=out bs=64 skip=2`,
		`dd if=/proc/self/status bs=1M count=1 | head -c 6`,
		// /dev/zero, the character device.
		`dd if=/dev/zero of=out bs=1M count=20 skip=3`,
		`dd if=/dev/zero of=out bs=1M count=20 iflag=fullblock status=noxfer`,
	} {
		t.Run(script, func(t *testing.T) {
			var res [2]result
			var outs [2][]byte
			for i, exe := range []string{p.gnu, p.ours} {
				os.Remove(filepath.Join(p.dir, "out"))
				cmd := shell(exe, p.dir, script)
				var stdout bytes.Buffer
				cmd.Stdout = &stdout
				res[i] = run(cmd, nil)
				out, _ := os.ReadFile(filepath.Join(p.dir, "out"))
				outs[i] = append(stdout.Bytes(), out...)
			}
			// /proc/self/status names the process: compare its shape.
			if strings.Contains(script, "status of=") || strings.Contains(script, "status bs=") {
				if len(outs[1]) < 5 || !bytes.HasPrefix(outs[1], []byte("Name:")) && !strings.Contains(script, "skip") {
					t.Errorf("rootswap dd copied %q from /proc/self/status", outs[1])
				}
				re := regexp.MustCompile(`\d+ bytes \(.*?\)|\d+ bytes|\d+\+\d+`)
				res[0].stderr = re.ReplaceAllString(res[0].stderr, "N")
				res[1].stderr = re.ReplaceAllString(res[1].stderr, "N")
				if len(outs[1]) < 1000 && !strings.Contains(script, "skip") && !strings.Contains(script, "head") {
					t.Errorf("rootswap dd copied %d bytes of /proc/self/status", len(outs[1]))
				}
			} else if !bytes.Equal(outs[0], outs[1]) {
				t.Errorf("output differs: GNU %d bytes, ours %d bytes", len(outs[0]), len(outs[1]))
			}
			same(t, script, res[0], res[1])
		})
	}
}

// TestDifferentialOperands compares the refusals of bad operands and
// options: GNU's text, exit status 1, "Try 'dd --help'" where GNU
// prints it.
func TestDifferentialOperands(t *testing.T) {
	p := newPair(t)
	for _, args := range [][]string{
		{"xyz"}, {"bs=xyz"}, {"bs=0"}, {"bs="}, {"count=-1"}, {"skip=1Q"}, {"seek=1R"},
		{"bs=99999999999999999999"}, {"count=1Y"}, {"bs=8E"}, {"ibs=2x3x4"}, {"obs=1x2B"},
		{"conv=bogus,notrunc"}, {"conv="}, {"conv=notrunc,,sync"}, {"iflag=fullblock,x"},
		{"oflag=fullblock"}, {"iflag=binary"}, {"oflag=text"}, {"status=loud"}, {"status=none,loud"},
		{"conv=excl,nocreat"}, {"iflag=direct,nocache"}, {"oflag=nocache,direct"},
		{"-z"}, {"--foo"}, {"-"}, {"if"}, {"foo=0x5"}, {"count=0x5"},
		{"bs=100G", "count=1"}, {"ibs=1", "obs=100G", "count=1"}, {"bs=100G", "count=0"},
		{"cbs=0"}, {"cbs=5", "count=0"}, {"count=1", "seek=9223372036854775807", "bs=2"},
		{"skip=9223372036854775807", "bs=2", "count=1"},
	} {
		name := strings.Join(args, " ")
		t.Run(name, func(t *testing.T) {
			var res [2]result
			for i, exe := range []string{p.gnu, p.ours} {
				// /dev/null: an operand taken by mistake cannot make
				// the run last.
				res[i] = run(command(exe, p.dir, append([]string{"if=/dev/null", "of=/dev/null"}, args...)...), nil)
			}
			same(t, name, res[0], res[1])
		})
	}
}

// startBlocked starts dd reading a pipe that the test writes blocks
// into; it returns the command, the pipe's write end and its stderr.
func startBlocked(t *testing.T, exe, dir string, env []string, args ...string) (*exec.Cmd, *os.File, *lockedBuffer) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := command(exe, dir, args...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = r
	errb := &lockedBuffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	return cmd, w, errb
}

// lockedBuffer is a stderr the test may read while the command writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitSize waits until path holds n bytes: dd has copied what was
// written and waits in read(2) for more.
func waitSize(t *testing.T, path string, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if fi, err := os.Stat(path); err == nil && fi.Size() == n {
			time.Sleep(50 * time.Millisecond) // and sits in read(2)
			return
		}
	}
	t.Fatalf("%s never reached %d bytes", path, n)
}

// TestDifferentialSignals: SIGUSR1 prints the statistics and the copy
// goes on; SIGINT prints them and kills dd by SIGINT.
func TestDifferentialSignals(t *testing.T) {
	p := newPair(t)
	for _, tc := range []struct {
		sig   syscall.Signal
		name  string
		extra []string
		env   []string
	}{
		{unix.SIGUSR1, "SIGUSR1", nil, nil},
		{unix.SIGUSR1, "SIGUSR1 POSIXLY_CORRECT", nil, []string{"POSIXLY_CORRECT="}},
		{unix.SIGINT, "SIGINT", nil, nil},
		{unix.SIGUSR1, "SIGUSR1 progress", []string{"status=progress"}, nil},
		{unix.SIGTERM, "SIGTERM", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var res [2]result
			for i, exe := range []string{p.gnu, p.ours} {
				out := filepath.Join(p.dir, fmt.Sprintf("sig%d", i))
				cmd, w, errb := startBlocked(t, exe, p.dir, tc.env, append([]string{"of=" + out, "bs=512", "iflag=fullblock"}, tc.extra...)...)
				w.Write(bytes.Repeat([]byte("x"), 1536))
				waitSize(t, out, 1536)
				cmd.Process.Signal(tc.sig)
				if tc.sig == unix.SIGUSR1 {
					// The statistics must be out before more input comes:
					// a fixed sleep lost that race on a loaded machine.
					for deadline := time.Now().Add(10 * time.Second); !strings.Contains(errb.String(), "records out") && time.Now().Before(deadline); {
						time.Sleep(10 * time.Millisecond)
					}
				} else {
					time.Sleep(200 * time.Millisecond)
				}
				w.Write(bytes.Repeat([]byte("y"), 1000))
				w.Close()
				err := cmd.Wait()
				res[i] = ended(cmd, err, errb.String())
			}
			same(t, tc.name, res[0], res[1])
		})
	}
}

// TestCountsExact: a read of a character device is never cut short by
// rootswap dd itself (the Go runtime's signals), so count= copies N full
// blocks every time, progress line and all.
func TestCountsExact(t *testing.T) {
	p := newPair(t)
	runs := 100
	if testing.Short() {
		runs = 10
	}
	out := filepath.Join(p.dir, "F")
	for _, dev := range []string{"/dev/zero", "/dev/urandom"} {
		bad := 0
		for i := range runs {
			r := run(command(p.ours, p.dir, "if="+dev, "of="+out, "bs=1M", "count=50", "status=progress"), nil)
			if r.status != 0 || !strings.Contains(r.stderr, "50+0 records in\n50+0 records out\n52428800 bytes") {
				bad++
				if bad <= 3 {
					t.Errorf("%s run %d: %s", dev, i, r)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d runs did not copy 50+0 records", dev, bad, runs)
		}
	}
}
