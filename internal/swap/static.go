package swap

import (
	"fmt"

	"github.com/rootswap/rootswap/internal/elfdeps"
)

// CheckStatic refuses a dynamically linked rootswap: its copy in the
// tmpfs would map the C library from the old root, which then can never
// be released.
func CheckStatic(path string) error {
	info, err := elfdeps.Read(path)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if info.Interp != "" {
		return fmt.Errorf("%s is dynamically linked: its tmpfs copy would keep the old root's C library mapped", path)
	}
	return nil
}
