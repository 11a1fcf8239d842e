// Package api holds countd's JSON wire types, header names and error codes,
// shared by the HTTP server and the Go client. It has no logic.
package api

// Header names.
const (
	// HeaderIndex is the Raft index a response reflects: the write's index,
	// or the applied index a read was served at.
	HeaderIndex = "X-Countd-Index"
	// HeaderLeader is the leader's HTTP base URL, on redirects.
	HeaderLeader = "X-Countd-Leader"
	// HeaderLastContact is milliseconds since this node last heard from the
	// leader (0 on the leader), on stale reads.
	HeaderLastContact = "X-Countd-Last-Contact"
	// HeaderCluster is the cluster name, on every response.
	HeaderCluster = "X-Countd-Cluster"
	// HeaderIdempotencyKey makes a write exactly-once within the window.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderReplayed is "true" on a response replayed for a reused key.
	HeaderReplayed = "Idempotent-Replayed"
)

// Code is a machine-readable error code.
type Code string

// Error codes, as in the SPEC's table.
const (
	CodeBadRequest          Code = "bad_request"
	CodeInvalidName         Code = "invalid_name"
	CodeNotFound            Code = "not_found"
	CodeWrongType           Code = "wrong_type"
	CodeConflict            Code = "conflict"
	CodeOverflow            Code = "overflow"
	CodeNotMonotonic        Code = "not_monotonic"
	CodeQueueFull           Code = "queue_full"
	CodePreconditionFailed  Code = "precondition_failed"
	CodeTooLarge            Code = "too_large"
	CodeIdempotencyMismatch Code = "idempotency_mismatch"
	CodeNotLeader           Code = "not_leader"
	CodeNoLeader            Code = "no_leader"
	CodeInternal            Code = "internal"
)

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
	Code  Code   `json:"code"`
	// Leader is the leader's HTTP URL on a not_leader redirect.
	Leader string `json:"leader,omitempty"`
	// Current is the object's current state on a conflict.
	Current *Counter `json:"current,omitempty"`
}

// Counter is a counter object.
type Counter struct {
	ID        string `json:"id"`
	Value     int64  `json:"value"`
	Increment int64  `json:"increment"`
	Offset    int64  `json:"offset"`
	Monotonic bool   `json:"monotonic"`
	Index     uint64 `json:"index"`
}

// CounterList is the body of GET /v1/counters.
type CounterList struct {
	Counters []Counter `json:"counters"`
}

// Mint is the result of POST /v1/counters/{id}/next: Count IDs First,
// First+Step, …, Value.
type Mint struct {
	ID    string `json:"id"`
	Value int64  `json:"value"`
	First int64  `json:"first"`
	Count int64  `json:"count"`
	Step  int64  `json:"step"`
	Index uint64 `json:"index"`
}

// AddRequest is the body of POST /v1/counters/{id}/add. Delta is required.
type AddRequest struct {
	Delta   *int64 `json:"delta"`
	Default *int64 `json:"default,omitempty"`
}

// AddResult is the result of an add.
type AddResult struct {
	ID    string `json:"id"`
	Value int64  `json:"value"`
	Index uint64 `json:"index"`
}

// SetRequest is the body of PUT /v1/counters/{id}; every field is optional.
type SetRequest struct {
	Value     *int64 `json:"value,omitempty"`
	Increment *int64 `json:"increment,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	Monotonic *bool  `json:"monotonic,omitempty"`
	IfValue   *int64 `json:"if_value,omitempty"`
}

// Cluster is the body of GET /v1/cluster.
type Cluster struct {
	Name         string   `json:"name"`
	NodeID       string   `json:"node_id"`
	State        string   `json:"state"`
	Leader       string   `json:"leader"`
	LeaderHTTP   string   `json:"leader_http"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Members      []Member `json:"members"`
}

// Member is one node as gossip and Raft see it.
type Member struct {
	ID         string `json:"id"`
	HTTPAddr   string `json:"http_addr"`
	RaftAddr   string `json:"raft_addr"`
	GossipAddr string `json:"gossip_addr"`
	// Status is the gossip status: alive, suspect, dead, left, or unknown
	// for a Raft server gossip has not seen.
	Status string `json:"status"`
	// Suffrage is voter, nonvoter, or none when not in the Raft configuration.
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
	// LastContactMS is milliseconds since the leader last heard from this
	// member (leader's view; -1 when unknown).
	LastContactMS int64 `json:"last_contact_ms"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}
