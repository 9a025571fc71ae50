// Package dd is the dd applet: GNU dd's operands and output, with the
// pipelined copier of internal/copy underneath when both ends are files
// or block devices, and rootswap's extensions: copy only the blocks an
// ext2/3/4 filesystem uses, write a zstd backup of the source while
// copying, verify the target by reading it back, and refuse to write
// onto a mounted device or onto the source itself.
package dd

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rootswap/rootswap/internal/cli"
	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/ddargs"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "GNU dd plus used-blocks copy, zstd backup and verify"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap dd [if=FILE] [of=FILE] [bs=N] [blocks=used|all|auto] [backup=FILE.zst] [verify=yes] [OPERAND]...

GNU dd 9.1 operands, with GNU's results, counts, messages and exit status:
  if=FILE        read FILE instead of stdin; a zstd file (a backup=) is
                 decompressed on the fly; a FILE.zst that is not zstd is
                 refused
  of=FILE        write FILE instead of stdout
  bs=N ibs=N obs=N cbs=N  block sizes (default 512); count=N skip=N seek=N
                 (iseek=, oseek=) in blocks, or bytes when N ends in B
  status=none|noxfer|progress
  conv=noerror,sync,notrunc,sparse,fsync,fdatasync,excl,nocreat
  iflag=, oflag=  append,direct,directory,dsync,noatime,nocache,noctty,
                 nofollow,nonblock,sync,fullblock (iflag only),count_bytes,
                 skip_bytes,seek_bytes
  N may end in c (1), w (2), b (512), kB (1000), K or KiB (1024), MB, M or
  MiB, GB, G, GiB, T, P, E, Z, Y, B alone (bytes), and multiply once:
  bs=2x512. kill -USR1 prints the statistics; SIGINT prints them and
  kills dd by the signal. GNU's ascii, ebcdic, ibm, block, unblock,
  lcase, ucase and swab conversions are refused.

rootswap operands:
  blocks=used    copy only the blocks the ext2/3/4 filesystem on if= uses
                 (anything else is refused); blocks=all copies everything
                 (the default); blocks=auto is used when if= holds ext2/3/4
  backup=FILE.zst  also write a zstd image of if= (zeros where blocks=used
                 skipped), restorable with zstd -d or rootswap dd if=FILE.zst;
                 created mode 0600, never overwritten
  backup-level=N zstd level 1..19 (default 3): 1 fastest, 2-5 default,
                 6-9 better, 10+ best compression
  verify=yes     read the target back (past the page cache) and compare
                 checksums; the first differing offset is reported
  direct=yes|no  O_DIRECT for the engine (default yes; iflag=/oflag=direct
                 also turn it on)
  --allow-rw-source  copy a filesystem that is mounted read-write (the copy
                 will not be consistent)

When if= and of= are files or block devices and 32 MiB or more of whole
blocks are to be copied, those run with a reader and a writer in parallel
on 8 MiB buffers (O_DIRECT by default), the rest the GNU way; a block
device target is fdatasync'ed then. of= is refused, before anything is
written, when it is mounted, when it is or contains or is built on if=,
and (engine copies) when it is smaller than what is copied.
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	return runArgs(ctx, env, args, nil)
}

// invocation tells from the process's own arguments whether dd is the
// process (started as rootswap dd, or through a link named dd) rather
// than run in-process by the rescue shell, and how it names itself.
// Only the process may kill itself by a signal as GNU dd does, and
// through a link named dd the messages start with "dd: " as GNU's.
func invocation(argv []string) (owner bool, prog string) {
	switch {
	case len(argv) > 0 && filepath.Base(argv[0]) == "dd":
		return true, "dd"
	case len(argv) > 1 && argv[1] == "dd":
		return true, "rootswap dd"
	}
	return false, "rootswap dd"
}

// runArgs is Main with a hook that wraps the target, which tests use to
// corrupt a write and see verify catch it. dd prints its own messages
// (GNU's order: an error, then the statistics), so a failure comes back
// as a bare exit status.
func runArgs(ctx context.Context, env *cli.Env, args []string, wrap func(io.WriterAt) io.WriterAt) error {
	owner, prog := invocation(os.Args)
	r := &runner{env: env, wrap: wrap, owner: owner, prog: prog}
	code, err := r.main(ctx, args)
	if err != nil {
		return err
	}
	if code != 0 {
		return cli.ExitCode(code)
	}
	return nil
}

// options reads GNU dd's options, which may come anywhere before "--":
// --help (or any abbreviation of it, or -h), and rootswap's
// --allow-rw-source.
func (r *runner) options(args []string) (operands []string, allowRW bool, err error) {
	for i, a := range args {
		switch {
		case len(operands) > 0 && r.posixlyCorrect():
			// getopt stops at the first operand.
			operands = append(operands, a)
		case a == "--":
			return append(operands, args[i+1:]...), allowRW, nil
		case a == "-h" || len(a) > 2 && strings.HasPrefix("--help", a):
			return nil, false, cli.ErrHelp
		case a == "--allow-rw-source":
			allowRW = true
		case strings.HasPrefix(a, "--"):
			r.err.errorf(nil, "unrecognized option %s", ddargs.Quote(a))
			return nil, false, r.try()
		case len(a) > 1 && a[0] == '-':
			r.err.errorf(nil, "invalid option -- %s", ddargs.Quote(a[1:2]))
			return nil, false, r.try()
		default:
			operands = append(operands, a)
		}
	}
	return operands, allowRW, nil
}

func (r *runner) try() error {
	r.err.write("Try '" + r.prog + " --help' for more information.\n")
	return &exit{code: 1}
}

func (r *runner) main(ctx context.Context, args []string) (int, error) {
	w := r.env.Stderr
	if r.owner && closedAtStart(2) {
		w = badFD{}
	}
	r.err = &stderr{w: w, prefix: r.prog + ": "}
	code := r.dd(ctx, args)
	if code == helpCode {
		return 0, cli.ErrHelp
	}
	if r.err.failed && code == 0 {
		code = 1 // stderr could not be written: GNU dd exits 1 then too
	}
	return code, nil
}

// helpCode is what dd returns when --help was asked for.
const helpCode = -1

func (r *runner) dd(ctx context.Context, args []string) int {
	operands, allowRW, err := r.options(args)
	if errors.Is(err, cli.ErrHelp) {
		return helpCode
	}
	if err != nil {
		return 1
	}
	cfg, err := ddargs.Parse(operands)
	for _, w := range cfg.Warnings {
		r.err.errorf(nil, "%s", w)
	}
	if err != nil {
		r.err.errorf(nil, "%v", err)
		var pe *ddargs.Error
		if errors.As(err, &pe) && pe.Try {
			r.try()
		}
		return 1
	}
	cfg.AllowRWSource = cfg.AllowRWSource || allowRW
	r.cfg = cfg

	var inInfo file
	zst := false
	if cfg.If != "" {
		inInfo, _ = statFile(cfg.If)
		if inInfo.isReg() {
			if f, err := os.Open(cfg.If); err == nil {
				zst = blockcopy.IsZstd(f)
				f.Close()
				if !zst && strings.HasSuffix(cfg.If, ".zst") {
					r.err.errorf(nil, "%s: not zstd: it does not start with a zstd frame (magic number 28 b5 2f fd); refusing to copy it as raw bytes (rename it to do that)", quoteaf(cfg.If))
					return 1
				}
			}
		}
	}
	var outInfo file
	if cfg.Of != "" {
		outInfo, _ = statFile(cfg.Of)
	}
	files := cfg.If != "" && (inInfo.isReg() || inInfo.isBlk()) && cfg.Of != "" && (outInfo.isReg() || outInfo.isBlk())
	if cfg.Extensions() || (zst && files && !cfg.Conv.Sparse) {
		if !files || cfg.Conv.Sparse {
			r.err.errorf(nil, "blocks=, backup= and verify= need if= and of= naming files or block devices, and no conv=sparse")
			return 1
		}
		return r.extended(ctx)
	}
	j := &job{r: r, cfg: &r.cfg, ctx: ctx, err: r.err, inInfo: inInfo, t: newTally(r)}
	if zst {
		f, err := os.Open(cfg.If)
		if err != nil {
			r.err.errorf(unwrap(err), "failed to open %s", quoteaf(cfg.If))
			return 1
		}
		defer f.Close()
		dec, err := blockcopy.NewDecompressor(f)
		if err != nil {
			r.err.errorf(nil, "%s: %v", cfg.If, err)
			return 1
		}
		defer dec.Close()
		j.in = &end{fd: -1, r: dec, name: cfg.If}
		j.zstd = true
	}
	stop := watch(r.owner, r.posixlyCorrect(), j.t.print, j.t.lastWords)
	defer stop()
	var code int
	onQuietThread(func() { code = j.run() })
	return code
}

// posixlyCorrect is GNU's getenv("POSIXLY_CORRECT") != NULL: set, even
// empty.
func (r *runner) posixlyCorrect() bool {
	if r.owner {
		_, ok := os.LookupEnv("POSIXLY_CORRECT")
		return ok
	}
	return r.env.Getenv != nil && r.env.Getenv("POSIXLY_CORRECT") != ""
}

// stdin and stdout are the standard streams as ends: descriptors when
// they are files, else (in-process) the reader and writer themselves.
func (r *runner) stdin() *end {
	e := &end{fd: -1, r: r.env.Stdin, name: "standard input"}
	if f, ok := r.env.Stdin.(*os.File); ok {
		e.fd, e.r = int(f.Fd()), nil
		e.own = r.owner && e.fd == 0
		e.bad = r.owner && e.fd == 0 && closedAtStart(0)
	}
	return e
}

func (r *runner) stdout() *end {
	e := &end{fd: -1, w: r.env.Stdout, name: "standard output"}
	if f, ok := r.env.Stdout.(*os.File); ok {
		e.fd, e.w = int(f.Fd()), nil
		e.own = r.owner && e.fd == 1
		e.bad = r.owner && e.fd == 1 && closedAtStart(1)
	}
	return e
}
