package blockdev

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// loopChangeFD is LOOP_CHANGE_FD (linux/loop.h), which x/sys lacks: it
// swaps the file behind a read-only loop device for another of the same
// size while the device stays in use, the way live systems move a mounted
// squashfs from the boot medium to a copy in RAM.
const loopChangeFD = 0x4C06

// LoopInfo is what the kernel says of an attached loop device.
type LoopInfo struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	Dev      string // /dev/loopN
	File     string // the backing file, as the kernel named it when attached
	FileDev  uint64 // st_dev of the backing file's filesystem
	ReadOnly bool   // attached read-only: LOOP_CHANGE_FD works only then
	Point    string `json:",omitempty"` // where it is mounted, when the caller looked
}

// Loop reads the status of the loop device at node.
func Loop(sysRoot, node string) (LoopInfo, error) {
	f, err := os.Open(node)
	if err != nil {
		return LoopInfo{}, err
	}
	defer f.Close()
	st, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	if err != nil {
		return LoopInfo{}, fmt.Errorf("%s: LOOP_GET_STATUS64: %w", node, err)
	}
	li := LoopInfo{Dev: node, FileDev: st.Device, ReadOnly: st.Flags&unix.LO_FLAGS_READ_ONLY != 0}
	// The full name is in sysfs; lo_file_name is cut at 64 bytes.
	b, err := os.ReadFile(filepath.Join(sysRoot, "block", filepath.Base(node), "loop", "backing_file"))
	if err != nil {
		return LoopInfo{}, fmt.Errorf("%s: backing file: %w", node, err)
	}
	li.File = strings.TrimSpace(string(b))
	return li, nil
}

// ChangeLoopBacking points the read-only loop device at node at file,
// which must be the same size as the file behind it now (a copy of it):
// what is mounted from the device stays mounted and in use throughout.
func ChangeLoopBacking(node, file string) error {
	dev, err := os.Open(node)
	if err != nil {
		return err
	}
	defer dev.Close()
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(dev.Fd()), loopChangeFD, int(f.Fd())); err != nil {
		return fmt.Errorf("%s: LOOP_CHANGE_FD to %s: %w (the device must be read-only and the file the same size)", node, file, err)
	}
	return nil
}
