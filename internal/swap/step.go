// Package swap is the root swap as data: a list of named steps, each with
// its undo, run by an engine that journals every step and walks the
// completed ones back when a fatal step fails. plan prints the same list
// that run executes.
package swap

import (
	"context"
	"fmt"
	"strings"
)

// Step is one named action of the swap.
type Step interface {
	// Name is the short name the journal and status use ("remount-ro").
	Name() string
	// Describe says what the step will do, in the admin's words.
	Describe(s *State) string
	// Do performs the step. It must leave nothing half-done that its own
	// Undo cannot take back.
	Do(ctx context.Context, s *State) error
	// Undo takes back a completed Do; rollback calls it in reverse order.
	Undo(ctx context.Context, s *State) error
	// Fatal says whether a failure of Do stops the swap and rolls back
	// (true), or is reported and the swap goes on (false).
	Fatal() bool
}

// Describe renders the numbered list that plan prints and run shows
// before it asks for confirmation.
func Describe(steps []Step, s *State) string {
	var b strings.Builder
	for i, st := range steps {
		fatal := ""
		if !st.Fatal() {
			fatal = " (failure reported, not fatal)"
		}
		fmt.Fprintf(&b, "%2d. %-16s %s%s\n", i+1, st.Name(), st.Describe(s), fatal)
	}
	return b.String()
}
