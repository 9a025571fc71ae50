package swap

import (
	"context"
	"io"
	"os/exec"
)

// Runtime is what the steps use to touch the machine. It is not saved in
// the journal; a new session builds a fresh one.
type Runtime struct {
	ProcRoot string
	SysRoot  string
	Out      io.Writer // progress for the admin (the engine's log)
	// Command runs a program and returns its combined output.
	Command func(ctx context.Context, name string, args ...string) ([]byte, error)
}

// RealCommand runs programs for real.
func RealCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}
