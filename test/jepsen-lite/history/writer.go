package history

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Writer appends events to a history file. It is safe for concurrent use;
// every line is written whole, at once, so a campaign that dies leaves a
// history that still reads (its open invocations become unknown).
type Writer struct {
	start time.Time
	ops   atomic.Int64

	mu  sync.Mutex
	w   io.Writer
	err error
}

// NewWriter starts a history at the current instant: event times are
// measured from it with the monotonic clock.
func NewWriter(w io.Writer) *Writer {
	return &Writer{start: time.Now(), w: w}
}

// Now is the history time of the current instant.
func (w *Writer) Now() int64 { return int64(time.Since(w.start)) }

// Start is the wall-clock instant history time 0 stands for.
func (w *Writer) Start() time.Time { return w.start }

// Pending is an invoked operation waiting for its outcome.
type Pending struct {
	w       *Writer
	process int
	op      int64
	f       F
	key     string
}

// Invoke records that process is about to run f on key with in, and
// returns the handle to record its outcome with.
func (w *Writer) Invoke(process int, f F, key string, in Input) *Pending {
	p := &Pending{w: w, process: process, op: w.ops.Add(1), f: f, key: key}
	w.write(Event{Type: TypeInvoke, Process: process, Op: p.op, F: f, Key: key, In: &in})
	return p
}

// OK records that the operation succeeded with out.
func (p *Pending) OK(out Output) { p.complete(TypeOK, &out, nil) }

// Fail records that the operation certainly did not take effect. out may
// carry what the refusal said (a conflict's current value).
func (p *Pending) Fail(out *Output, err error) { p.complete(TypeFail, out, err) }

// Info records that the outcome is unknown: the operation may or may not
// have taken effect.
func (p *Pending) Info(err error) { p.complete(TypeInfo, nil, err) }

func (p *Pending) complete(t Type, out *Output, err error) {
	e := Event{Type: t, Process: p.process, Op: p.op, F: p.f, Key: p.key, Out: out}
	if err != nil {
		e.Error = err.Error()
	}
	p.w.write(e)
}

// FaultStart records that the nemesis starts injecting f and returns the
// handle to record its end with.
func (w *Writer) FaultStart(f Fault) *PendingFault {
	op := w.ops.Add(1)
	w.write(Event{Type: TypeFaultStart, Process: NemesisProcess, Op: op, Fault: &f})
	return &PendingFault{w: w, op: op, fault: f}
}

// PendingFault is a fault in progress.
type PendingFault struct {
	w     *Writer
	op    int64
	fault Fault
}

// End records that the fault is healed; err says why it could not be
// injected or healed cleanly, if it could not.
func (p *PendingFault) End(err error) {
	e := Event{Type: TypeFaultEnd, Process: NemesisProcess, Op: p.op, Fault: &p.fault}
	if err != nil {
		e.Error = err.Error()
	}
	p.w.write(e)
}

// Unsupported records that the fault could not be injected because the
// cluster does not offer it, ending it at once.
func (p *PendingFault) Unsupported(err error) {
	p.fault.Unsupported = true
	p.End(err)
}

func (w *Writer) write(e Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// The time is taken under the lock so the file's lines are in time
	// order, which Read relies on.
	e.Time = w.Now()
	b, err := json.Marshal(e)
	if err != nil {
		w.err = fmt.Errorf("encode history event: %w", err)
		return
	}
	if _, err := w.w.Write(append(b, '\n')); err != nil && w.err == nil {
		w.err = fmt.Errorf("write history: %w", err)
	}
}

// Err is the first error writing the history hit, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
