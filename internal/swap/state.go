package swap

import (
	"encoding/json"
	"github.com/rootswap/rootswap/internal/blockdev"
	"time"

	blockcopy "github.com/rootswap/rootswap/internal/copy"
	"github.com/rootswap/rootswap/internal/mountinfo"
	"github.com/rootswap/rootswap/internal/mountops"
)

// Options are what the admin asked for.
type Options struct {
	Target         string        `json:"target"`           // the new root's block device
	Backup         string        `json:"backup,omitempty"` // zstd image of the old root, written during the copy
	Stop           []string      `json:"stop,omitempty"`   // extra services to stop for the copy
	Keep           []string      `json:"keep,omitempty"`   // services never to stop or restart
	Kill           bool          `json:"kill,omitempty"`   // kill writers that belong to no service
	ConfirmTimeout time.Duration `json:"confirm_timeout"`  // 0: confirm automatically
	NewRoot        string        `json:"new_root"`         // where the new root is mounted: /mnt/newroot
	PutOld         string        `json:"put_old"`          // where the old root goes, relative to the new root: mnt/oldroot
	EngineDir      string        `json:"engine_dir"`       // the engine's tmpfs: /run/rootswap
	NoBPF          bool          `json:"no_bpf,omitempty"` // scan processes through /proc only
	Force          bool          `json:"force,omitempty"`  // overwrite a target that carries a filesystem's signature
	// Overwrite a target that carries an inactive swap signature, LVM
	// label or md superblock (--force is not enough for those).
	ForceSwap bool `json:"force_swap,omitempty"`
	ForceLVM  bool `json:"force_lvm,omitempty"`
	ForceMD   bool `json:"force_md,omitempty"`
	// ReleaseTimeout bounds the wait for the last holders of the old
	// root; after it, the old root stays mounted read-only.
	ReleaseTimeout time.Duration `json:"release_timeout"`
	Lifeline       Lifeline      `json:"lifeline"`
	MaxRounds      int           `json:"max_rounds"`             // live rounds of the pre-copy after the first
	PrecopyRate    int64         `json:"precopy_rate,omitempty"` // bytes a second the live pre-copy may read; 0: no cap
	// Check says when the forced check of the copy runs inside the
	// read-only window: CheckAuto only where the copy needs it.
	Check string `json:"check,omitempty"`
	// Mkfs, set, makes the swap file by file (--copy files) onto a new
	// filesystem of this type (--mkfs; the root's own by default).
	Mkfs string `json:"mkfs,omitempty"`
}

// When the copy is checked (--fsck).
const (
	CheckAuto   = "auto"   // in the window only where needed, else the old root after its release
	CheckAlways = "always" // always in the window, before the pivot
)

// State is everything the steps learn and change, saved in the journal
// after each step so that rollback from a new session can rebuild it.
type State struct {
	Opts Options `json:"opts"`

	OldRoot     mountinfo.Mount     `json:"old_root"`  // the / mount before the swap
	InitKind    string              `json:"init_kind"` // systemd, sysvinit, ...
	Stopped     []string            `json:"stopped,omitempty"`
	Killed      []Killed            `json:"killed,omitempty"`     // writers with no service, killed with --kill
	Containers  []DockerContainer   `json:"containers,omitempty"` // stopped before their live-restore dockerd, docker ps order (newest first)
	Unmounted   mountinfo.Table     `json:"unmounted,omitempty"`
	MadeNewRoot bool                `json:"made_new_root,omitempty"` // prepare created NewRoot
	ReadOnly    bool                `json:"read_only,omitempty"`     // / was remounted read-only by us
	Copied      int64               `json:"copied,omitempty"`
	Rounds      []blockcopy.Round   `json:"rounds,omitempty"`   // the pre-copy's rounds, the frozen one last
	NewUUID     string              `json:"new_uuid,omitempty"` // the UUID new-uuid gave the copy (xfs, btrfs), or mkfs
	View        string              `json:"view,omitempty"`     // file mode: where / is bind-mounted for the copy
	Since       time.Time           `json:"since,omitempty"`    // file mode: when the live pass began
	Mounted     bool                `json:"mounted,omitempty"`  // new root mounted at NewRoot
	Pivoted     bool                `json:"pivoted,omitempty"`
	Moved       []string            `json:"moved,omitempty"`     // mount points moved back under /
	Remounted   []string            `json:"remounted,omitempty"` // same-filesystem submounts mounted again from the new device
	Rebound     []mountops.Bind     `json:"rebound,omitempty"`   // bind mounts re-made from the new root
	Rebacked    []blockdev.LoopInfo `json:"rebacked,omitempty"`  // loop devices moved onto the new root's files
	SwapOff     []SwapArea          `json:"swap_off,omitempty"`  // swap files turned off before the remount
	SwapOn      []string            `json:"swap_on,omitempty"`   // and turned on again from the new root
	Shared      []string            `json:"shared,omitempty"`    // mount points that had shared propagation
	Restarted   []string            `json:"restarted,omitempty"`
	Holders     []string            `json:"holders,omitempty"` // what still held the old root at the end
	Finish      []string            `json:"finish,omitempty"`  // the commands that finish the release by hand
	// OldRelabelled is the UUID relabel-old gave the old root (labelled
	// oldroot): finish finds it done.
	OldRelabelled string `json:"old_relabelled,omitempty"`

	// PastNoReturn is set once the old root is released: from then on a
	// failure is reported, not rolled back.
	PastNoReturn bool `json:"past_no_return,omitempty"`
}

// Marshal is the state as JSON for the journal.
func (s *State) Marshal() string {
	b, err := json.Marshal(s)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// Unmarshal rebuilds a state from the journal.
func Unmarshal(data string) (*State, error) {
	var s State
	if err := json.Unmarshal([]byte(data), &s); err != nil {
		return nil, err
	}
	return &s, nil
}
