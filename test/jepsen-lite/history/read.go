package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Outcome is what became of an operation.
type Outcome string

// Outcomes. Unknown is an "info" completion or an invoke without one.
const (
	OK      Outcome = "ok"
	Failed  Outcome = "fail"
	Unknown Outcome = "unknown"
)

// Op is one operation: its invocation paired with its completion.
type Op struct {
	// Process is the client that ran it; ID is its history-wide number.
	Process int
	ID      int64
	F       F
	Key     string
	// In is what it asked; Out what it was told (zero unless ok, or a
	// refusal that said something).
	In      Input
	Out     Output
	Outcome Outcome
	// Error is why it failed or is unknown.
	Error string
	// Invoke and Complete are history times. Complete of an operation
	// that never completed is the history's end; a checker treats every
	// Unknown operation as completing at +∞ whatever Complete says.
	Invoke   int64
	Complete int64
}

// Code is the error code of a failed operation: the text of Error up to
// its first ":" (the workload writes "code: message").
func (op Op) Code() string {
	code, _, _ := strings.Cut(op.Error, ":")
	return code
}

// FaultSpan is one fault from injection to heal.
type FaultSpan struct {
	Fault
	// Start is when the fault was injected.
	Start int64
	// End is the history's end for a fault never healed.
	End int64
	// Error says what went wrong injecting or healing it, if anything.
	Error string
}

// History is a campaign's record.
type History struct {
	// Ops are sorted by invocation time.
	Ops    []Op
	Faults []FaultSpan
	// End is the time of the last event.
	End int64
}

// Read parses a history file's lines.
func Read(r io.Reader) (*History, error) {
	h := &History{}
	open := map[int64]int{}   // op → index in h.Ops, while awaiting completion
	faults := map[int64]int{} // op → index in h.Faults
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
		h.End = max(h.End, e.Time)
		if err := h.add(e, open, faults); err != nil {
			return nil, fmt.Errorf("history line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	for _, i := range open {
		h.Ops[i].Outcome, h.Ops[i].Complete = Unknown, h.End
	}
	for i := range h.Faults {
		if h.Faults[i].End < 0 {
			h.Faults[i].End = h.End
		}
	}
	sort.SliceStable(h.Ops, func(i, j int) bool { return h.Ops[i].Invoke < h.Ops[j].Invoke })
	return h, nil
}

func (h *History) add(e Event, open, faults map[int64]int) error {
	switch e.Type {
	case TypeInvoke:
		if _, dup := open[e.Op]; dup {
			return fmt.Errorf("op %d invoked twice", e.Op)
		}
		op := Op{Process: e.Process, ID: e.Op, F: e.F, Key: e.Key, Invoke: e.Time, Complete: -1}
		if e.In != nil {
			op.In = *e.In
		}
		open[e.Op] = len(h.Ops)
		h.Ops = append(h.Ops, op)
	case TypeOK, TypeFail, TypeInfo:
		i, ok := open[e.Op]
		if !ok {
			return fmt.Errorf("%s of op %d, which is not open", e.Type, e.Op)
		}
		delete(open, e.Op)
		op := &h.Ops[i]
		op.Complete, op.Error = e.Time, e.Error
		op.Outcome = map[Type]Outcome{TypeOK: OK, TypeFail: Failed, TypeInfo: Unknown}[e.Type]
		if e.Out != nil {
			op.Out = *e.Out
		}
	case TypeFaultStart:
		if e.Fault == nil {
			return fmt.Errorf("fault-start without a fault")
		}
		faults[e.Op] = len(h.Faults)
		h.Faults = append(h.Faults, FaultSpan{Fault: *e.Fault, Start: e.Time, End: -1})
	case TypeFaultEnd:
		i, ok := faults[e.Op]
		if !ok {
			return fmt.Errorf("fault-end of op %d, which never started", e.Op)
		}
		f := &h.Faults[i]
		f.End, f.Error = e.Time, e.Error
		if e.Fault != nil {
			f.Unsupported = e.Fault.Unsupported
		}
	default:
		return fmt.Errorf("unknown event type %q", e.Type)
	}
	return nil
}

// ReadFile reads the history at path.
func ReadFile(path string) (*History, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open history: %w", err)
	}
	defer f.Close()
	return Read(f)
}
