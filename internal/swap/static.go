package swap

import (
	"debug/elf"
	"fmt"
)

// CheckStatic refuses a dynamically linked rootswap: its copy in the
// tmpfs would map the C library from the old root, which then can never
// be released.
func CheckStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: its tmpfs copy would keep the old root's C library mapped", path)
		}
	}
	return nil
}
