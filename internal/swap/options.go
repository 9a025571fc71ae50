package swap

import (
	"flag"
	"fmt"
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
	// RootKeys are the keys the lifeline accepts.
	RootKeys = "/root/.ssh/authorized_keys"
)

// Lifeline is the engine's own SSH server as the admin asked for it.
type Lifeline struct {
	Off    bool     `json:"off,omitempty"`
	Port   int      `json:"port"`
	Listen []string `json:"listen,omitempty"`
	// KeysFile is read by the preflight (plan and run's foreground); the
	// engine reads it again before its first step.
	KeysFile string `json:"keys_file"`
}

// FlagsUsage is the option text of every flag Flags defines; plan and
// run both print it, since both take these flags and mean the same.
const FlagsUsage = `  --to DEV              the new root's block device (must be empty unless --force)
  --backup FILE.zst     also write a zstd image of the old root: an absolute path on a
                        filesystem that stays mounted and writable (not /, not DEV)
  --stop SVC            stop this service for the copy too
  --keep SVC            never stop or restart this service
  --kill                kill writers that belong to no service
  --max-rounds N        live rounds of changes after the pre-copy's first (3)
  --precopy-rate R      read at most R bytes a second while / is live (0: no cap)
  --no-bpf              scan processes through /proc only (no BPF iterators)
  --force               overwrite a filesystem on DEV (an earlier copy), never a device
                        in use (mounted anywhere, swap, LVM, md, /boot)
  --force-swap-signature, --force-lvm-label, --force-md-superblock
                        overwrite an inactive swap area, LVM PV or md member
  --confirm-timeout D   after sshd is back, wait D for 'rootswap confirm' from a NEW
                        login, else roll back by itself (120s; 0: confirm at once)
  --release-timeout D   how long to wait for the last holders of the old root before
                        leaving it mounted read-only with the commands to finish (5m)
  --lifeline-port N     the engine's own SSH server for the rescue shell (2222)
  --lifeline-listen A   listen on address A only (repeatable; default every address)
  --no-lifeline         no lifeline SSH server (it needs a key in ` + RootKeys + `)
Durations are seconds (90) or carry a unit (90s, 2m).
`

// Flags are the command-line options plan and run share: both define
// them with AddFlags and read them with Options, so that plan, given
// run's flags, plans exactly what run will do.
type Flags struct {
	to, backup                   *string
	kill, noBPF, force, noLife   *bool
	forceSwap, forceLVM, forceMD *bool
	confirm, release             *time.Duration
	port, rounds                 *int
	rate                         *string
	stop, keep, listen           cli.StringList
}

// AddFlags defines the shared flags on fs.
func AddFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{
		to:     fs.String("to", "", ""),
		backup: fs.String("backup", "", ""),
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
	}
	// The old name of --release-timeout, kept for scripts.
	fs.Var((*cli.Duration)(f.release), "release-wait", "")
	fs.Var(&f.stop, "stop", "")
	fs.Var(&f.keep, "keep", "")
	fs.Var(&f.listen, "lifeline-listen", "")
	return f
}

// Options checks the parsed flags and returns the options; a bad value
// is a usage error, found before anything is inspected.
func (f *Flags) Options() (Options, error) {
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
	rate, err := humanize.ParseBytes(*f.rate)
	if err != nil || rate > 1<<50 {
		return Options{}, cli.UsageError("--precopy-rate %q: a size a second (50M, 1G; 0 for no cap)", *f.rate)
	}
	o := DefaultOptions(*f.to)
	o.MaxRounds, o.PrecopyRate = *f.rounds, int64(rate)
	o.Backup, o.Stop, o.Keep = *f.backup, f.stop, f.keep
	o.Kill, o.NoBPF, o.Force = *f.kill, *f.noBPF, *f.force
	o.ForceSwap, o.ForceLVM, o.ForceMD = *f.forceSwap, *f.forceLVM, *f.forceMD
	o.ConfirmTimeout, o.ReleaseTimeout = *f.confirm, *f.release
	o.Lifeline = Lifeline{Off: *f.noLife, Port: *f.port, Listen: f.listen, KeysFile: RootKeys}
	return o, nil
}

// checkLifeline is the preflight of the lifeline: without a usable key
// nobody could log in through it, so the swap is refused unless the
// admin turns it off. It returns the line plan prints about it.
func checkLifeline(r *Report, l Lifeline) string {
	if l.Off {
		return "off (--no-lifeline)"
	}
	where := "every address"
	if len(l.Listen) > 0 {
		where = strings.Join(l.Listen, ", ")
	}
	keys, err := lifeline.LoadAuthorizedKeys(l.KeysFile)
	if len(keys) == 0 {
		if err == nil {
			err = fmt.Errorf("%s holds no usable key", l.KeysFile)
		}
		r.block("lifeline SSH: "+err.Error(), "add your key to "+l.KeysFile+" or pass --no-lifeline")
		return fmt.Sprintf("SSH port %d on %s: NO USABLE KEY (see below)", l.Port, where)
	}
	if err != nil {
		r.warn("lifeline: " + err.Error())
	}
	return fmt.Sprintf("SSH port %d on %s, %d key(s) from %s, the rescue shell for each session", l.Port, where, len(keys), l.KeysFile)
}
