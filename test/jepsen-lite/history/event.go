// Package history is the record of a jepsen-lite campaign: one JSON line
// per event, Jepsen style. A client writes an "invoke" line before it asks
// and an "ok", "fail" or "info" line when it knows the outcome; the nemesis
// writes a line when a fault starts and when it is healed. Read pairs the
// lines back into operations, and an invoke that never completed (the
// campaign died) is an operation of unknown outcome, as "info" is.
package history

// Type is the kind of a history line.
type Type string

// Line types. Info is Jepsen's name for an indeterminate outcome: the
// operation may or may not have taken effect.
const (
	TypeInvoke     Type = "invoke"
	TypeOK         Type = "ok"
	TypeFail       Type = "fail"
	TypeInfo       Type = "info"
	TypeFaultStart Type = "fault-start"
	TypeFaultEnd   Type = "fault-end"
)

// F names what an operation does.
type F string

// Operations the workload performs.
const (
	// FNext mints In.Count IDs from counter Key.
	FNext F = "next"
	// FAdd adds In.Delta to counter Key.
	FAdd F = "add"
	// FGet reads counter Key.
	FGet F = "get"
	// FCAS sets counter Key to In.Value if it holds In.IfValue.
	FCAS F = "cas"
	// FJoin puts In.Process into queue Key.
	FJoin F = "join"
	// FLeave takes In.Process out of queue Key.
	FLeave F = "leave"
	// FQueueGet reads queue Key.
	FQueueGet F = "queue-get"
	// FItemsAdd adds In.Items to tenant Key.
	FItemsAdd F = "items-add"
	// FItemsCount reads tenant Key's item count.
	FItemsCount F = "items-count"
	// FDocGet reads document Key.
	FDocGet F = "doc-get"
	// FDocCAS writes document Key if it is at version In.IfVersion (0:
	// absent).
	FDocCAS F = "doc-cas"
	// FHold takes lock Key with a session, holds it a moment and gives it
	// up; ok says when the client believed it held it (Out.HeldFrom to
	// Out.HeldUntil) and with which fencing token (Out.Token).
	FHold F = "hold"
)

// IsWrite reports whether f changes state.
func (f F) IsWrite() bool {
	switch f {
	case FNext, FAdd, FCAS, FJoin, FLeave, FItemsAdd, FDocCAS:
		return true
	}
	return false
}

// Event is one line of a history file.
type Event struct {
	Type Type `json:"type"`
	// Process is the client that ran the operation (0-based); faults use
	// NemesisProcess.
	Process int `json:"process"`
	// Op pairs an invoke with its completion; unique within a history.
	Op int64 `json:"op"`
	// F is what a client operation does (empty on fault lines).
	F F `json:"f,omitempty"`
	// Key is the counter, queue, tenant or document operated on.
	Key string `json:"key,omitempty"`
	// Time is nanoseconds since the history started, from a monotonic
	// clock, so wall-clock jumps cannot reorder events.
	Time int64 `json:"time"`
	// In is on invoke lines, Out on ok lines and on fail lines that
	// carry what the refusal said.
	In  *Input  `json:"in,omitempty"`
	Out *Output `json:"out,omitempty"`
	// Error is why an operation failed or is unknown: "code: message"
	// for a refusal from countd.
	Error string `json:"error,omitempty"`
	// Fault is on fault lines.
	Fault *Fault `json:"fault,omitempty"`
}

// NemesisProcess is the Process of fault lines.
const NemesisProcess = -1

// Input is what an operation asked for. Zero fields are omitted in the
// file and read back as zero.
type Input struct {
	Count     int64    `json:"count,omitempty"`
	Delta     int64    `json:"delta,omitempty"`
	IfValue   int64    `json:"if_value,omitempty"`
	Value     int64    `json:"value,omitempty"`
	Process   string   `json:"process,omitempty"`
	Items     []string `json:"items,omitempty"`
	IfVersion uint64   `json:"if_version,omitempty"`
	// Doc is the token a document write stores (its "w" field).
	Doc string `json:"doc,omitempty"`
	// Stale reads may be served by any node from its local state.
	Stale bool `json:"stale,omitempty"`
	// Node is the node a request was pinned to, if any.
	Node string `json:"node,omitempty"`
	// Final marks the reads taken after every fault was healed.
	Final bool `json:"final,omitempty"`
}

// Output is what an operation was told.
type Output struct {
	// First and Last are the range a next minted.
	First int64 `json:"first,omitempty"`
	Last  int64 `json:"last,omitempty"`
	// Value is a counter's value after the operation (for a CAS that
	// failed with a conflict: the value it found).
	Value int64 `json:"value,omitempty"`
	// Token is a queue's fencing token.
	Token uint64 `json:"token,omitempty"`
	// Counter and Position are a join's ticket.
	Counter  int64 `json:"counter,omitempty"`
	Position int   `json:"position,omitempty"`
	// Members are a queue read's members, in the order returned.
	Members []Member `json:"members,omitempty"`
	// Count is a tenant's item count.
	Count int64 `json:"count,omitempty"`
	// Version and Doc are a document's version (0: absent) and token.
	Version uint64 `json:"version,omitempty"`
	Doc     string `json:"doc,omitempty"`
	// HeldFrom and HeldUntil are the history times between which a hold's
	// client believed it held the lock: from when the lock was granted to
	// when it began to give it up, or learnt its session was lost.
	HeldFrom  int64 `json:"held_from,omitempty"`
	HeldUntil int64 `json:"held_until,omitempty"`
}

// Member is one queue member as a read returned it.
type Member struct {
	Process  string `json:"process"`
	Counter  int64  `json:"counter"`
	Position int    `json:"position"`
}

// Fault describes a fault the nemesis injected.
type Fault struct {
	// Kind is kill, pause, partition or leave.
	Kind string `json:"kind"`
	// Nodes are the node IDs the fault acted on (for a partition: the
	// minority side).
	Nodes []string `json:"nodes,omitempty"`
	// Leader is true when the fault hit the node that was leader.
	Leader bool `json:"leader,omitempty"`
	// Detail is a human description.
	Detail string `json:"detail,omitempty"`
	// Unsupported is set on a fault the cluster does not offer yet (the
	// end line says why in Event.Error); nothing was injected.
	Unsupported bool `json:"unsupported,omitempty"`
}
