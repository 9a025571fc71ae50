package journal

import "time"

// Phase is the first word of `rootswap status`.
type Phase string

// Phases.
const (
	Running        Phase = "running"
	WaitingConfirm Phase = "waiting-confirm"
	Succeeded      Phase = "succeeded"
	Failed         Phase = "failed"
	RolledBack     Phase = "rolled-back"
	RollingBack    Phase = "rolling-back"
)

// StepTiming is one step as the journal saw it.
type StepTiming struct {
	// Not comparable: no equality function in the binary (issue 10).
	_ [0]func()

	Name, Describe string
	Start, End     time.Time
	Err            string
	Done           bool // finished without error
	Undone         bool
	UndoErr        string
}

// Summary is what status prints, derived from the records alone.
type Summary struct {
	Phase     Phase
	Step      string // the current (running) or failing step
	Err       string
	EnginePID int
	Started   time.Time
	Ended     time.Time
	Deadline  time.Time // confirm deadline while waiting
	Steps     []StepTiming
	Notes     []string
	Data      map[string]string // the start record's data
}

// Summarize folds records into a Summary. A journal without a done record
// whose engine is gone is "failed" with the step it was in; callers tell
// that by EnginePID, which they check against /proc.
func Summarize(recs []Record) Summary {
	s := Summary{Phase: Running}
	idx := map[string]int{}
	for _, r := range recs {
		switch r.Kind {
		case KindStart:
			s.Started, s.EnginePID, s.Data = r.Time, r.PID, r.Data
		case KindBegin:
			idx[r.Step] = len(s.Steps)
			s.Steps = append(s.Steps, StepTiming{Name: r.Step, Describe: r.Describe, Start: r.Time})
			s.Step = r.Step
			if s.Phase == WaitingConfirm {
				s.Phase = Running
			}
		case KindEnd, KindFail:
			if i, ok := idx[r.Step]; ok {
				s.Steps[i].End = r.Time
				s.Steps[i].Err = r.Err
				s.Steps[i].Done = r.Kind == KindEnd
			}
			if r.Kind == KindFail {
				s.Step, s.Err = r.Step, r.Err
			}
		case KindUndo:
			s.Phase = RollingBack
		case KindUndone, KindUndoFail:
			if i, ok := idx[r.Step]; ok {
				s.Steps[i].Undone = r.Kind == KindUndone
				s.Steps[i].UndoErr = r.Err
			}
		case KindRollback:
			s.Phase = RollingBack
			if r.Err != "" && s.Err == "" {
				s.Err = r.Err
			}
		case KindWait:
			s.Phase = WaitingConfirm
			if d, err := time.Parse(time.RFC3339Nano, r.Data["deadline"]); err == nil {
				s.Deadline = d
			}
		case KindConfirm:
			s.Phase = Running
			s.Deadline = time.Time{}
		case KindNote:
			s.Notes = append(s.Notes, r.Describe)
		case KindDone:
			s.Ended = r.Time
			s.Phase = Phase(r.Result)
			if r.Err != "" {
				s.Err = r.Err
			}
			if r.Step != "" {
				s.Step = r.Step
			}
		}
	}
	return s
}

// Window is the time between the start of one step and the end of
// another: the read-only window runs from remount-ro's start to the end of
// the step that brings services back.
func (s Summary) Window(fromStep, toStep string) (time.Duration, bool) {
	var from, to time.Time
	for _, st := range s.Steps {
		if st.Name == fromStep {
			from = st.Start
		}
		if st.Name == toStep && !st.End.IsZero() {
			to = st.End
		}
	}
	if from.IsZero() || to.IsZero() {
		return 0, false
	}
	return to.Sub(from), true
}
