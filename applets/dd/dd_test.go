package dd

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rootswap/rootswap/internal/cli"
	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/ext"
	"github.com/rootswap/rootswap/internal/testutil"
)

func testEnv(stdin io.Reader) (*cli.Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	env := &cli.Env{Stdin: stdin, Stdout: &out, Stderr: &errb, ProcRoot: "/proc", SysRoot: "/sys", Now: time.Now, Getenv: os.Getenv}
	return env, &out, &errb
}

func ddRun(t *testing.T, stdin io.Reader, args ...string) (string, string, error) {
	t.Helper()
	env, out, errb := testEnv(stdin)
	err := runArgs(context.Background(), env, args, nil)
	return out.String(), errb.String(), err
}

func writeRandom(t *testing.T, p string, n int, seed uint64) []byte {
	t.Helper()
	var key [32]byte
	key[0] = byte(seed)
	b := make([]byte, n)
	rand.NewChaCha8(key).Read(b)
	// Some zero runs, for conv=sparse.
	if n > 200000 {
		clear(b[100000:200000])
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// stripTime keeps the records lines and the byte figures of a summary:
// time and rate differ between two runs.
var timeRE = regexp.MustCompile(`copied, .*`)

func stripTime(s string) string {
	return strings.ReplaceAll(timeRE.ReplaceAllString(s, "copied"), "rootswap dd: ", "dd: ")
}

// TestLikeGNU runs GNU dd and ours on the same files with the same
// operands: same output file, same summary figures.
func TestLikeGNU(t *testing.T) {
	testutil.RequireTool(t, "dd")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeRandom(t, src, 3<<20+777, 1)
	for _, ops := range [][]string{
		{},
		{"bs=1M"},
		{"bs=8M"},
		{"bs=4096", "count=100"},
		{"bs=1000", "skip=3", "count=7"},
		{"ibs=1000", "obs=300"},
		{"ibs=4K", "obs=1M", "count=10"},
		{"bs=2x512", "count=1KB"},
		{"bs=1M", "seek=3", "count=2"},
		{"bs=64K", "skip=100KB", "count=5"},
		{"bs=1M", "count=0"},
		{"bs=1M", "skip=100"},
		{"bs=64K", "conv=sparse"},
		{"bs=1M", "conv=notrunc,fdatasync", "seek=1"},
		{"bs=1M", "status=noxfer"},
		{"bs=1M", "status=none"},
		{"bs=3", "count=5", "iflag=count_bytes,skip_bytes", "skip=7", "oflag=seek_bytes", "seek=11"},
	} {
		name := strings.Join(ops, " ")
		t.Run(name, func(t *testing.T) {
			gnuOut, ourOut := filepath.Join(dir, "gnu"), filepath.Join(dir, "ours")
			for _, p := range []string{gnuOut, ourOut} {
				writeRandom(t, p, 1<<20, 2) // something to truncate or keep
			}
			cmd := exec.Command("dd", append([]string{"if=" + src, "of=" + gnuOut}, ops...)...)
			cmd.Env = append(cmd.Environ(), "LC_ALL=C")
			gnu, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("GNU dd: %v\n%s", err, gnu)
			}
			_, ours, err := ddRun(t, nil, append([]string{"if=" + src, "of=" + ourOut}, ops...)...)
			if err != nil {
				t.Fatalf("rootswap dd: %v\n%s", err, ours)
			}
			if got, want := stripTime(ours), stripTime(string(gnu)); got != want {
				t.Errorf("summary:\n%s\nGNU dd:\n%s", got, want)
			}
			a, _ := os.ReadFile(gnuOut)
			b, _ := os.ReadFile(ourOut)
			if !bytes.Equal(a, b) {
				t.Errorf("output files differ: GNU %d bytes, ours %d bytes", len(a), len(b))
			}
		})
	}
}

// TestStdinStdout covers the stream path against GNU dd reading a pipe.
func TestStdinStdout(t *testing.T) {
	testutil.RequireTool(t, "dd")
	data := bytes.Repeat([]byte("0123456789abcdef"), 70000)
	// GNU dd reads a file, not a pipe, so that its reads are full and
	// the record counts do not depend on scheduling.
	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, data, 0o644)
	for _, ops := range [][]string{{"bs=1K"}, {"bs=1K", "count=10"}, {"ibs=100", "obs=7000"}, {"bs=4096", "iflag=fullblock", "skip=3"}} {
		cmd := exec.Command("dd", ops...)
		cmd.Env = append(cmd.Environ(), "LC_ALL=C")
		f, err := os.Open(in)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
		var gnuOut, gnuErr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &gnuOut, &gnuErr
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		// bytes.Reader returns full reads, as a file does for GNU dd.
		out, errs, err := ddRun(t, bytes.NewReader(data), ops...)
		if err != nil {
			t.Fatal(err)
		}
		if out != gnuOut.String() || stripTime(errs) != stripTime(gnuErr.String()) {
			t.Errorf("%v: %d bytes out, %q; GNU %d bytes, %q", ops, len(out), stripTime(errs), gnuOut.Len(), stripTime(gnuErr.String()))
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"foo"}, "rootswap dd: unrecognized operand 'foo'\nTry 'rootswap dd --help' for more information.\n"},
		{[]string{"bs=0"}, "rootswap dd: invalid number: '0'\n"},
		{[]string{"blocks=used", "count=1"}, "rootswap dd: blocks=used copies a whole filesystem: skip=, seek= and count= do not apply\n"},
		{[]string{"conv=ucase"}, "rootswap dd: conv=ucase is not supported: rootswap dd has none of GNU dd's character conversions (ascii, ebcdic, ibm, block, unblock, lcase, ucase, swab)\n"},
		// Extensions need files at both ends.
		{[]string{"verify=yes"}, "rootswap dd: blocks=, backup= and verify= need if= and of= naming files or block devices, and no conv=sparse\n"},
	} {
		_, errs, err := ddRun(t, strings.NewReader("x"), tc.args...)
		if got, want := err, error(cli.ExitCode(1)); got != want {
			t.Errorf("%v: err = %v, want %v", tc.args, got, want)
		}
		if got, want := errs, tc.want; got != want {
			t.Errorf("%v: stderr = %q, want %q", tc.args, got, want)
		}
	}
}

// mkfsImage makes an ext filesystem image from a directory tree with
// files of every size class.
func mkfsImage(t *testing.T, dir, kind string, size string) (img, tree string) {
	t.Helper()
	testutil.RequireTool(t, "mkfs."+kind, "e2fsck", "debugfs")
	tree = filepath.Join(dir, "tree-"+kind)
	os.MkdirAll(filepath.Join(tree, "sub", "deeper"), 0o755)
	for i, n := range []int{0, 1, 1023, 4096, 70000, 1 << 20, 5<<20 + 3} {
		writeRandom(t, filepath.Join(tree, "sub", "f"+string(rune('a'+i))), n, uint64(i))
	}
	os.WriteFile(filepath.Join(tree, "sub", "deeper", "text"), bytes.Repeat([]byte("rootswap\n"), 10000), 0o644)
	os.Symlink("sub/fa", filepath.Join(tree, "link"))
	img = filepath.Join(dir, kind+".img")
	testutil.Run(t, "mkfs."+kind, "-F", "-q", "-d", tree, img, size)
	return img, tree
}

func sameTree(t *testing.T, a, b string) {
	t.Helper()
	dir := t.TempDir()
	for i, img := range []string{a, b} {
		out := filepath.Join(dir, string(rune('a'+i)))
		os.Mkdir(out, 0o755)
		testutil.Run(t, "debugfs", "-R", "rdump / "+out, img)
	}
	if out, err := exec.Command("diff", "-r", "--no-dereference", filepath.Join(dir, "a"), filepath.Join(dir, "b")).CombinedOutput(); err != nil {
		t.Errorf("files differ between %s and its copy:\n%s", a, out)
	}
}

func TestBlocksUsed(t *testing.T) {
	for _, kind := range []string{"ext2", "ext3", "ext4"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			img, _ := mkfsImage(t, dir, kind, "48M")
			target := filepath.Join(dir, "target")
			writeRandom(t, target, 48<<20, 3) // garbage where blocks are not copied
			_, errs, err := ddRun(t, nil, "if="+img, "of="+target, "blocks=used", "conv=notrunc", "verify=yes")
			if err != nil {
				t.Fatalf("%v\n%s", err, errs)
			}
			if out, err := exec.Command("e2fsck", "-fn", target).CombinedOutput(); err != nil {
				t.Fatalf("e2fsck -fn on the copy: %v\n%s", err, out)
			}
			sameTree(t, img, target)
			// Only the used blocks were written: fewer bytes than the
			// filesystem, and the summary says so.
			f, _ := os.Open(img)
			used, err := ext.UsedExtents(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, e := range used {
				total += e.Len
			}
			m := regexp.MustCompile(`(?m)^(\d+) bytes .*copied`).FindStringSubmatch(errs)
			if m == nil || total >= 48<<20 {
				t.Fatalf("summary %q; used %d of %d", errs, total, 48<<20)
			}
			if !strings.Contains(errs, "verified") {
				t.Errorf("no verify line in %q", errs)
			}
		})
	}
}

func TestBlocksUsedRefusesOtherFilesystems(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "notext")
	writeRandom(t, src, 4<<20, 5)
	target := filepath.Join(dir, "target")
	writeRandom(t, target, 4<<20, 6)
	before, _ := os.ReadFile(target)
	_, errs, err := ddRun(t, nil, "if="+src, "of="+target, "blocks=used", "conv=notrunc")
	if err == nil || !strings.Contains(errs, "only ext2/3/4") {
		t.Fatalf("blocks=used on random data: err = %v, stderr %q", err, errs)
	}
	if after, _ := os.ReadFile(target); !bytes.Equal(before, after) {
		t.Errorf("the target changed although the copy was refused")
	}
	// auto falls back to a full copy.
	if _, errs, err := ddRun(t, nil, "if="+src, "of="+target, "blocks=auto"); err != nil || !strings.Contains(errs, "copying all blocks") {
		t.Fatalf("blocks=auto: %v %q", err, errs)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(target)
	if !bytes.Equal(a, b) {
		t.Errorf("blocks=auto on a non-ext source did not copy it whole")
	}
}

func TestBackupAndRestore(t *testing.T) {
	testutil.RequireTool(t, "zstd")
	dir := t.TempDir()
	img, _ := mkfsImage(t, dir, "ext4", "40M")
	// Garbage in the free blocks of the source, which blocks=used must
	// not carry into the backup: fill the free space, then delete.
	src, _ := os.ReadFile(img)
	target := filepath.Join(dir, "target")
	writeRandom(t, target, 40<<20, 7)
	backup := filepath.Join(dir, "b.zst")
	if _, errs, err := ddRun(t, nil, "if="+img, "of="+target, "blocks=used", "conv=notrunc", "backup="+backup, "backup-level=3"); err != nil {
		t.Fatalf("%v\n%s", err, errs)
	}
	fi, err := os.Stat(backup)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup: %v, mode %v; want 0600", err, fi.Mode())
	}
	out, err := exec.Command("zstd", "-d", "-c", backup).Output()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(src) {
		t.Fatalf("zstd -d gives %d bytes, the source has %d", len(out), len(src))
	}
	f, _ := os.Open(img)
	used, _ := ext.UsedExtents(f)
	f.Close()
	// Used ranges are the source's; elsewhere zeros (or, where O_DIRECT
	// widened a range to 4 KiB, the source's bytes).
	for _, e := range used {
		if !bytes.Equal(out[e.Off:e.End()], src[e.Off:e.End()]) {
			t.Fatalf("backup differs from the source in used range %+v", e)
		}
	}
	for i := range out {
		if out[i] != 0 && out[i] != src[i] {
			t.Fatalf("backup byte %d is %#x: neither zero nor the source's %#x", i, out[i], src[i])
		}
	}
	// A backup is never overwritten.
	if _, errs, err := ddRun(t, nil, "if="+img, "of="+target, "conv=notrunc", "backup="+backup); err == nil || !strings.Contains(errs, blockcopy.ErrBackupExists.Error()) {
		t.Errorf("second backup to the same file: err = %v, stderr %q, want %v", err, errs, blockcopy.ErrBackupExists)
	}
	// Restore: if=X.zst is recognised and decompressed.
	restored := filepath.Join(dir, "restored")
	if _, errs, err := ddRun(t, nil, "if="+backup, "of="+restored, "bs=1M", "verify=yes"); err != nil {
		t.Fatalf("restore: %v\n%s", err, errs)
	}
	if got, _ := os.ReadFile(restored); !bytes.Equal(got, out) {
		t.Errorf("restored image differs from zstd -d output")
	}
	if out, err := exec.Command("e2fsck", "-fn", restored).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn on the restored image: %v\n%s", err, out)
	}
	// Through the stream path (stdout) too.
	stdout, _, err := ddRun(t, nil, "if="+backup, "bs=1M")
	if err != nil || stdout != string(out) {
		t.Errorf("restore to stdout: %v, %d bytes", err, len(stdout))
	}
}

// corruptAt flips one bit of what is written at target offset at.
type corruptAt struct {
	*os.File
	at int64
}

func (c corruptAt) WriteAt(p []byte, off int64) (int, error) {
	if c.at >= off && c.at < off+int64(len(p)) {
		p = bytes.Clone(p)
		p[c.at-off] ^= 1
	}
	return c.File.WriteAt(p, off)
}

func TestVerifyReportsFirstBadOffset(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeRandom(t, src, 9<<20, 8)
	target := filepath.Join(dir, "target")
	const bad = 5<<20 + 12345
	env, _, errb := testEnv(nil)
	err := runArgs(context.Background(), env, []string{"if=" + src, "of=" + target, "bs=1M", "verify=yes"},
		func(w io.WriterAt) io.WriterAt { return corruptAt{w.(*os.File), bad} })
	if err == nil || !strings.Contains(errb.String(), "verify: target differs at offset 5255225 ") {
		t.Fatalf("err = %v, want a mismatch at %d reported\n%s", err, bad, errb)
	}
	// GNU's order: the error, then the statistics.
	if i, j := strings.Index(errb.String(), "differs"), strings.Index(errb.String(), "records in"); i < 0 || j < i {
		t.Errorf("the statistics do not follow the error:\n%s", errb)
	}
}

// A FILE.zst that is not zstd is refused before anything is written:
// by its content, not its name.
func TestNotZstdRefused(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.zst")
	writeRandom(t, garbage, 100000, 9)
	target := filepath.Join(dir, "target")
	for _, args := range [][]string{{"if=" + garbage, "of=" + target}, {"if=" + garbage}} {
		out, errs, err := ddRun(t, nil, args...)
		if got, want := err, error(cli.ExitCode(1)); got != want {
			t.Errorf("%v: err = %v, want %v", args, got, want)
		}
		if !strings.Contains(errs, "not zstd") || out != "" {
			t.Errorf("%v: stderr %q, %d bytes out; want a 'not zstd' refusal and nothing written", args, errs, len(out))
		}
		if _, err := os.Stat(target); err == nil {
			t.Errorf("%v: %s was created", args, target)
		}
	}
	// The same bytes under another name are copied as they are.
	raw := filepath.Join(dir, "garbage.bin")
	os.Rename(garbage, raw)
	if _, errs, err := ddRun(t, nil, "if="+raw, "of="+target); err != nil {
		t.Errorf("copy of %s: %v\n%s", raw, err, errs)
	}
}
