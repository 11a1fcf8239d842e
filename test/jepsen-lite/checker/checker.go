// Package checker decides whether a jepsen-lite history shows countd
// keeping its promises: counters and documents linearizable (porcupine),
// no ID minted twice, every acknowledged write visible in the final reads,
// queue invariants, exact item counts, and one lock holder at a time. Each check is a function of the
// history alone, so hand-made histories can show that it fails when it
// should.
package checker

import (
	"fmt"
	"time"

	"github.com/countd/countd/test/jepsen-lite/history"
)

// Names of the checks besides CheckLinearizable.
const (
	CheckUniqueIDs    = "unique-ids"
	CheckAckedVisible = "acked-visible"
	CheckQueue        = "queue"
	CheckItems        = "items"
)

// Options tune Check.
type Options struct {
	// Dir receives porcupine's HTML visualisation of every key that is
	// not linearizable; empty writes none.
	Dir string
	// Timeout bounds porcupine's search per key (default 60s); a key it
	// cannot decide in time is reported as a violation, since it was not
	// shown linearizable.
	Timeout time.Duration
}

// Violation is one broken promise.
type Violation struct {
	// Check is the name of the check that failed.
	Check string `json:"check"`
	// Key is the counter, queue, tenant or document concerned.
	Key string `json:"key"`
	// Message says what was seen, naming the operations involved.
	Message string `json:"message"`
}

func (v Violation) String() string { return fmt.Sprintf("%s [%s]: %s", v.Check, v.Key, v.Message) }

// KeyResult is porcupine's verdict on one key.
type KeyResult struct {
	// Kind is "counter", "cached-counter" or "doc".
	Kind string `json:"kind"`
	Key  string `json:"key"`
	// Ops is the number of operations checked.
	Ops int `json:"ops"`
	// Result is porcupine's: Ok, Illegal or Unknown (timed out).
	Result string `json:"result"`
}

// Result is the checker's verdict.
type Result struct {
	// Valid is true when no check found a violation.
	Valid      bool        `json:"valid"`
	Violations []Violation `json:"violations"`
	// Keys are porcupine's verdicts per key.
	Keys []KeyResult `json:"keys"`
	// Visualizations are the HTML files written for illegal keys.
	Visualizations []string `json:"visualizations,omitempty"`
}

// maxPerCheck caps the violations one check reports per key: the first few
// say what is wrong, thousands more only bury it.
const maxPerCheck = 20

func (r *Result) add(check, key, format string, args ...any) {
	n := 0
	for _, v := range r.Violations {
		if v.Check == check && v.Key == key {
			n++
		}
	}
	if n == maxPerCheck {
		r.Violations = append(r.Violations, Violation{check, key, "… more violations of this check on this key are not listed"})
	}
	if n >= maxPerCheck {
		return
	}
	r.Violations = append(r.Violations, Violation{Check: check, Key: key, Message: fmt.Sprintf(format, args...)})
}

// Failed reports whether any violation of check was found.
func (r *Result) Failed(check string) bool {
	for _, v := range r.Violations {
		if v.Check == check {
			return true
		}
	}
	return false
}

// Check runs every check on h.
func Check(h *history.History, opts Options) *Result {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	res := &Result{Violations: []Violation{}, Keys: []KeyResult{}}
	linearizability(h, opts.Dir, opts.Timeout, res)
	uniqueIDs(h, res)
	ackedVisible(h, res)
	queues(h, res)
	items(h, res)
	locks(h, res)
	res.Valid = len(res.Violations) == 0
	return res
}
