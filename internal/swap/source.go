package swap

import "github.com/rootswap/rootswap/internal/blockdev"

// newRootSource is the device mount-new mounts, named as mount(8) would
// name it: the kernel keeps the source string it is given, and findmnt /
// should read /dev/mapper/sys-root, not the /dev/sys/root link typed
// after --to. The name as given when it cannot be resolved (mount then
// says why).
func newRootSource(rt *Runtime, s *State) string {
	if c, err := blockdev.Canonical(rt.SysRoot, s.Opts.Target); err == nil {
		return c
	}
	return s.Opts.Target
}
