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

	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/ddargs"
)

// Summary is the one-line description shown by rootswap --help.
const Summary = "GNU dd plus used-blocks copy, zstd backup and verify"

// Usage is printed by -h and, first line only, after a usage error.
const Usage = `usage: rootswap dd [if=FILE] [of=FILE] [bs=N] [blocks=used|all|auto] [backup=FILE.zst] [verify=yes] [OPERAND]...

GNU dd operands:
  if=FILE        read FILE instead of stdin; a zstd file (a backup=) is
                 decompressed on the fly
  of=FILE        write FILE instead of stdout
  bs=N ibs=N obs=N  block sizes (default 512); count=N skip=N seek=N
                 (iseek=, oseek=) in blocks, or bytes when N ends in B
  status=none|noxfer|progress
  conv=notrunc,fsync,fdatasync,sparse,excl,nocreat
  iflag=direct,fullblock,skip_bytes,count_bytes
  oflag=direct,sync,dsync,seek_bytes
  N may end in c (1), w (2), b (512), kB (1000), K or KiB (1024), MB, M or
  MiB, GB, G, GiB, T, P, E, and multiply: bs=2x512.

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

When if= and of= are files or block devices the copy runs with a reader
and a writer in parallel on 8 MiB buffers (O_DIRECT on block devices) and
the target is fdatasync'ed at the end when it is a block device. of= is
refused, before anything is written, when it is mounted, when it is or
contains or is built on if=, and when it is smaller than what is copied.
`

// Main runs the applet.
func Main(ctx context.Context, env *cli.Env, args []string) error {
	return runArgs(ctx, env, args, nil)
}

// runArgs is Main with a hook that wraps the target, which tests use to
// corrupt a write and see verify catch it.
func runArgs(ctx context.Context, env *cli.Env, args []string, wrap func(io.WriterAt) io.WriterAt) error {
	fs := cli.FlagSet(env, "dd")
	allowRW := fs.Bool("allow-rw-source", false, "copy a filesystem mounted read-write")
	operands, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	cfg, err := ddargs.Parse(operands)
	if errors.Is(err, ddargs.ErrInvalid) {
		return cli.UsageError("%v", err)
	}
	if err != nil {
		return err
	}
	cfg.AllowRWSource = cfg.AllowRWSource || *allowRW
	r := &runner{env: env, cfg: cfg, wrap: wrap}
	return r.run(ctx)
}
