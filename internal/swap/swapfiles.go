package swap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unsafe"

	"github.com/rootswap/rootswap/internal/blockdev"
	"golang.org/x/sys/unix"
)

// SwapArea is one line of /proc/swaps.
type SwapArea = blockdev.SwapArea

// ParseSwaps reads /proc/swaps (blockdev.ParseSwaps).
func ParseSwaps(r io.Reader) ([]SwapArea, error) { return blockdev.ParseSwaps(r) }

// ReadSwaps reads procRoot/swaps.
func ReadSwaps(procRoot string) ([]SwapArea, error) { return blockdev.ReadSwaps(procRoot) }

// swapFilesOn lists the active swap files (not partitions, not swap on
// other devices) that live on the filesystem dev: the kernel holds them
// open for writing, so / cannot be remounted read-only while they are on.
func swapFilesOn(procRoot string, dev uint64) ([]SwapArea, error) {
	all, err := ReadSwaps(procRoot)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // no swap support in this kernel
		}
		return nil, err
	}
	var out []SwapArea
	for _, a := range all {
		if a.Type != "file" {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(a.Path, &st) != nil || st.Dev != dev {
			continue // elsewhere, or named from another root
		}
		out = append(out, a)
	}
	return out, nil
}

// swapMargin is what memory must keep free beyond the pages swapoff
// brings back: a tenth of them, at least 64 MiB.
func swapMargin(used int64) int64 { return max(used/10, 64<<20) }

// Swapper turns swap areas on and off: swapon(2) and swapoff(2), or a
// recording fake in tests.
type Swapper interface {
	Swapon(path string, flags int) error
	Swapoff(path string) error
}

// SystemSwapper is the running kernel's.
type SystemSwapper struct{}

// The swapon(2) flags of <sys/swap.h>.
const (
	swapFlagPrefer   = 0x8000
	swapFlagPrioMask = 0x7fff
)

// Swapon is swapon(2).
func (SystemSwapper) Swapon(path string, flags int) error {
	return swapCall(unix.SYS_SWAPON, "swapon", path, flags)
}

// Swapoff is swapoff(2).
func (SystemSwapper) Swapoff(path string) error {
	return swapCall(unix.SYS_SWAPOFF, "swapoff", path, 0)
}

func swapCall(nr uintptr, op, path string, flags int) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	if _, _, e := unix.Syscall(nr, uintptr(unsafe.Pointer(p)), uintptr(flags), 0); e != 0 {
		return &os.PathError{Op: op, Path: path, Err: e}
	}
	return nil
}

// swapFlags asks for the area's priority again: a priority the admin
// set (0 or more) is passed with SWAP_FLAG_PREFER; a negative one is the
// kernel's own numbering, which it assigns again by itself.
func swapFlags(prio int) int {
	if prio < 0 {
		return 0
	}
	return swapFlagPrefer | (prio & swapFlagPrioMask)
}

func (rt *Runtime) swapper() Swapper {
	if rt.Swap != nil {
		return rt.Swap
	}
	return SystemSwapper{}
}

func swapPaths(as []SwapArea) string {
	var p []string
	for _, a := range as {
		p = append(p, fmt.Sprintf("%s (%s used, priority %d)", a.Path, human(a.Used), a.Priority))
	}
	return strings.Join(p, ", ")
}

// ---- swapoff --------------------------------------------------------------

type swapOff struct{ rt *Runtime }

func (*swapOff) Name() string { return "swapoff" }
func (*swapOff) Fatal() bool  { return true }
func (st *swapOff) Describe(*State) string {
	if len(st.rt.Report.SwapFiles) == 0 {
		return "no swap file on /: nothing to turn off"
	}
	return "swapoff " + swapPaths(st.rt.Report.SwapFiles) + ": the kernel holds a swap file open for writing, which keeps / from going read-only; turned on again from the new root after the pivot"
}
func (st *swapOff) Do(ctx context.Context, s *State) error {
	for _, a := range st.rt.Report.SwapFiles {
		st.rt.logf("    swapoff %s (%s to bring back into memory)", a.Path, human(a.Used))
		if err := st.rt.swapper().Swapoff(a.Path); err != nil {
			return fmt.Errorf("turning off swap file %s before the read-only remount: %w", a.Path, err)
		}
		s.SwapOff = append(s.SwapOff, a)
	}
	return nil
}

// Undo turns them on again, on the old root: rollback runs it after the
// pivot back.
func (st *swapOff) Undo(ctx context.Context, s *State) error {
	var errs []error
	for i := len(s.SwapOff) - 1; i >= 0; i-- {
		a := s.SwapOff[i]
		if err := st.rt.swapper().Swapon(a.Path, swapFlags(a.Priority)); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, err) // EBUSY: it is on already
			continue
		}
		s.SwapOff = s.SwapOff[:i]
	}
	return errors.Join(errs...)
}

// ---- swapon ---------------------------------------------------------------

type swapOn struct{ rt *Runtime }

func (*swapOn) Name() string { return "swapon" }

// The swap is sound without its swap file; a failure is reported.
func (*swapOn) Fatal() bool { return false }
func (st *swapOn) Describe(*State) string {
	if len(st.rt.Report.SwapFiles) == 0 {
		return "no swap file was turned off: nothing to turn on"
	}
	var p []string
	for _, a := range st.rt.Report.SwapFiles {
		p = append(p, fmt.Sprintf("%s (priority %d)", a.Path, a.Priority))
	}
	return "swapon " + strings.Join(p, ", ") + " from the new root"
}
func (st *swapOn) Do(ctx context.Context, s *State) error {
	var errs []error
	for _, a := range s.SwapOff {
		st.rt.logf("    swapon %s from the new root", a.Path)
		if err := st.rt.swapper().Swapon(a.Path, swapFlags(a.Priority)); err != nil {
			errs = append(errs, fmt.Errorf("turning swap file %s on again from the new root: %w", a.Path, err))
			continue
		}
		s.SwapOn = append(s.SwapOn, a.Path)
	}
	return errors.Join(errs...)
}

// Undo turns off the new root's swap files, so that the pivot back can
// let go of the new root and swapoff's undo turn the old ones on.
func (st *swapOn) Undo(ctx context.Context, s *State) error {
	var errs []error
	for i := len(s.SwapOn) - 1; i >= 0; i-- {
		if err := st.rt.swapper().Swapoff(s.SwapOn[i]); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, err) // EINVAL: it is not on
			continue
		}
		s.SwapOn = s.SwapOn[:i]
	}
	return errors.Join(errs...)
}
