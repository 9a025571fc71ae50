package swap

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/rootswap/rootswap/internal/cli"
	"github.com/rootswap/rootswap/internal/lifeline"
)

// Defaults of the options plan and run share.
const (
	DefaultConfirmTimeout = 2 * time.Minute
	DefaultReleaseTimeout = 5 * time.Minute
	// RootKeys is where root's keys usually are (sshd -T says).
	RootKeys = "/root/.ssh/authorized_keys"
)

// Lifeline is the engine's own SSH server as the admin asked for it.
type Lifeline struct {
	Off    bool     `json:"off,omitempty"`
	Port   int      `json:"port"`
	Listen []string `json:"listen,omitempty"`
	// KeysFile is --lifeline-keys; empty: root's AuthorizedKeysFile, as
	// sshd -T gives it. The preflight (plan and run's foreground) and the
	// engine, before its first step, resolve it with lifeline.Resolve.
	KeysFile string `json:"keys_file,omitempty"`
	// Client is the admin's SSH connection, for sshd's Match blocks.
	Client *lifeline.Conn `json:"client,omitempty"`
}

// FlagsUsage is the option text of every flag Flags defines; plan and
// run both print it, since both take these flags and mean the same.
const FlagsUsage = `  --to DEV              the new root's block device (must be empty unless --force)
  --backup FILE.zst     also write a zstd image of the old root: an absolute path on a
                        filesystem that stays mounted and writable (not /, not DEV)
  --stop SVC            stop this service for the copy too
  --keep SVC            never stop or restart this service
  --kill                kill writers that belong to no service
  --copy files          copy file by file onto a new filesystem (default: blocks)
  --mkfs TYPE           with --copy files: its type, ext4, xfs or btrfs (default: /'s)
  --max-rounds N        live rounds of changes after the pre-copy's first (3)
  --precopy-rate R      read at most R bytes a second while / is live (0: no cap)
  --no-bpf              scan processes through /proc only (no BPF iterators)
  --force               overwrite a filesystem on DEV (an earlier copy), never a device
                        in use (mounted anywhere, swap, LVM, md, /boot)
  --force-swap-signature, --force-lvm-label, --force-md-superblock
                        overwrite an inactive swap area, LVM PV or md member
  --fsck WHEN           auto: check the copy in the read-only window only where it is
                        needed, else check the old root read-only once released;
                        always: a forced check of the copy before the pivot (auto)
  --confirm-timeout D   after sshd is back, wait D for 'rootswap confirm' from a NEW
                        login, else roll back by itself (120s; 0: confirm at once)
  --release-timeout D   how long to wait for the last holders of the old root before
                        leaving it mounted read-only with the commands to finish (5m)
  --lifeline-port N     the engine's own SSH server for the rescue shell (2222)
  --lifeline-listen A   listen on address A (repeatable; default: the local address of
                        this SSH session, else every address)
  --lifeline-keys FILE  the lifeline's keys (root's file, not writable by others), for
                        admins who log in as a user and sudo (default: root's
                        AuthorizedKeysFile, if sshd's configuration lets root in)
  --no-lifeline         no lifeline SSH server (it needs a key in ` + RootKeys + `)
Durations are seconds (90) or carry a unit (90s, 2m).
`

// Flags are the command-line options plan and run share: both define
// them with AddFlags and read them with Options, so that plan, given
// run's flags, plans exactly what run will do.
type Flags struct {
	to, backup, keys, copy, mkfs *string
	kill, noBPF, force, noLife   *bool
	forceSwap, forceLVM, forceMD *bool
	confirm, release             *time.Duration
	port, rounds                 *int
	rate, check                  *string
	stop, keep, listen           cli.StringList
}

// AddFlags defines the shared flags on fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{
		to:     fs.String("to", "", ""),
		backup: fs.String("backup", "", ""),
		keys:   fs.String("lifeline-keys", "", ""),
		copy:   fs.String("copy", "blocks", ""),
		mkfs:   fs.String("mkfs", "", ""),
		kill:   fs.Bool("kill", false, ""),
		noBPF:  fs.Bool("no-bpf", false, ""),
		force:  fs.Bool("force", false, ""),
		// Each names the signature it lets run overwrite.
		forceSwap: fs.Bool("force-swap-signature", false, ""),
		forceLVM:  fs.Bool("force-lvm-label", false, ""),
		forceMD:   fs.Bool("force-md-superblock", false, ""),
		noLife:    fs.Bool("no-lifeline", false, ""),
		confirm:   cli.DurationFlag(fs, "confirm-timeout", DefaultConfirmTimeout),
		release:   cli.DurationFlag(fs, "release-timeout", DefaultReleaseTimeout),
		port:      fs.Int("lifeline-port", lifeline.DefaultPort, ""),
		rounds:    fs.Int("max-rounds", DefaultMaxRounds, ""),
		rate:      fs.String("precopy-rate", "0", ""),
		check:     fs.String("fsck", CheckAuto, ""),
	}
	// The old name of --release-timeout, kept for scripts.
	fs.Var((*cli.Duration)(f.release), "release-wait", "")
	fs.Var(&f.stop, "stop", "")
	fs.Var(&f.keep, "keep", "")
	fs.Var(&f.listen, "lifeline-listen", "")
	return f
}

// Options checks the parsed flags and returns the options; a bad value
// is a usage error, found before anything is inspected. env gives the
// lifeline's default address: that of the admin's SSH session.
func (f *Flags) Options(env *cli.Env) (Options, error) {
	if *f.to == "" {
		return Options{}, cli.UsageError("--to DEV is required")
	}
	if *f.backup != "" && !strings.HasSuffix(*f.backup, ".zst") {
		return Options{}, cli.UsageError("--backup %s: the name must end in .zst", *f.backup)
	}
	if *f.port <= 0 || *f.port > 65535 {
		return Options{}, cli.UsageError("--lifeline-port %d: not a TCP port", *f.port)
	}
	if *f.rounds < 0 || *f.rounds > 100 {
		return Options{}, cli.UsageError("--max-rounds %d: from 0 to 100", *f.rounds)
	}
	if err := lifeline.CheckListen(f.listen); err != nil {
		return Options{}, cli.UsageError("--lifeline-listen: %v", err)
	}
	files := *f.copy == "files"
	if !files && *f.copy != "blocks" || *f.mkfs != "" && !files {
		return Options{}, cli.UsageError("--copy %s --mkfs %q: --copy is blocks or files, --mkfs goes with files", *f.copy, *f.mkfs)
	}
	if files && *f.backup != "" {
		return Options{}, cli.UsageError("--backup images blocks: not with --copy files")
	}
	rate, err := humanize.ParseBytes(*f.rate)
	if err != nil || rate > 1<<50 {
		return Options{}, cli.UsageError("--precopy-rate %q: a size a second (50M, 1G; 0 for no cap)", *f.rate)
	}
	if *f.check != CheckAuto && *f.check != CheckAlways {
		return Options{}, cli.UsageError("--fsck %q: auto or always", *f.check)
	}
	o := DefaultOptions(*f.to)
	o.Check = *f.check
	o.MaxRounds, o.PrecopyRate = *f.rounds, int64(rate)
	o.Backup, o.Stop, o.Keep = *f.backup, f.stop, f.keep
	if files {
		o.Mkfs = *f.mkfs
		if o.Mkfs == "" {
			o.Mkfs = "-" // the root's type, found by the preflight
		}
	}
	o.Kill, o.NoBPF, o.Force = *f.kill, *f.noBPF, *f.force
	o.ForceSwap, o.ForceLVM, o.ForceMD = *f.forceSwap, *f.forceLVM, *f.forceMD
	o.ConfirmTimeout, o.ReleaseTimeout = *f.confirm, *f.release
	o.Lifeline = Lifeline{Off: *f.noLife, Port: *f.port, Listen: f.listen, KeysFile: *f.keys}
	o.Lifeline.Client = lifeline.SessionConn(env.ProcRoot, env.Getenv, Ancestors(env.ProcRoot, os.Getpid()))
	if c := o.Lifeline.Client; len(o.Lifeline.Listen) == 0 && c != nil {
		o.Lifeline.Listen = []string{c.LAddr}
	}
	return o, nil
}

// checkLifeline is the preflight of the lifeline: without a usable key
// nobody could log in through it, so the swap is refused unless the
// admin turns it off. It returns the line plan prints about it.
func checkLifeline(ctx context.Context, r *Report, l Lifeline) string {
	if l.Off {
		return "off (--no-lifeline)"
	}
	where := "every address"
	if len(l.Listen) > 0 {
		where = strings.Join(l.Listen, ", ")
	}
	p, err := lifeline.Resolve(ctx, lifeline.KeySource{Keys: l.KeysFile, Client: l.Client})
	if err != nil {
		problem, fix, ok := strings.Cut(err.Error(), "; ")
		if !ok {
			fix = "fix it or pass --no-lifeline"
		}
		r.block("lifeline SSH: "+problem, fix)
		return fmt.Sprintf("SSH port %d on %s: REFUSED (see below)", l.Port, where)
	}
	for _, n := range p.Notes {
		r.warn("lifeline: " + n)
	}
	if len(p.From) > 0 {
		where += ", clients from " + strings.Join(p.From, " ")
	}
	if len(p.NotFrom) > 0 {
		where += ", none from " + strings.Join(p.NotFrom, " ")
	}
	return fmt.Sprintf("SSH port %d on %s, %d key(s) from %s (%s), the rescue shell for each session", l.Port, where, len(p.Keys), strings.Join(p.Files, ", "), p.SSHD)
}
