// Package api holds countd's JSON wire types, header names and error codes,
// shared by the HTTP server, the state machine and the Go client. It is a
// leaf: it imports no other countd package, so the client can use it
// without linking the server. Its only logic is what both ends must agree
// on: the Idempotency-Key rule (CheckIdempotencyKey) and the form of new
// token accessors and secrets (NewAccessor, NewSecret).
package api

import "encoding/json"

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

// Code is a machine-readable error code. This is the one list of codes:
// the state machine refuses commands with them (fsm.Code is this type),
// httpapi maps each to an HTTP status in one table, and clients compare
// them.
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
	// CodeTooManyWatchers is a 503: the node holds as many blocking
	// queries and watches as it allows; retry later or on another node.
	CodeTooManyWatchers Code = "too_many_watchers"
	// CodeUnauthorized is a 401: with ACLs on, the request carried no
	// token, or one the cluster does not know (never created, or deleted).
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden is a 403: the token lacks the permission the request
	// needs (the message names it), or a web page of another origin sent a
	// state-changing request.
	CodeForbidden Code = "forbidden"
	// CodeMethodNotAllowed is a 405: the path exists, but not for that
	// method; the Allow header lists the methods it takes.
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeRequestTimeout is a 408: the request's body did not arrive in
	// time (-body-timeout); the connection is closed.
	CodeRequestTimeout Code = "request_timeout"
	// CodeUnsupportedMediaType is a 415: a body sent as a browser form
	// type (text/plain, multipart/form-data).
	CodeUnsupportedMediaType Code = "unsupported_media_type"
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
	// Cache is the block size of a cached counter; 0 when minting goes
	// through the log one entry per request.
	Cache int64  `json:"cache"`
	Index uint64 `json:"index"`
}

// CounterList is the body of GET /v1/counters.
type CounterList struct {
	Counters []Counter `json:"counters"`
	// Next is the ID to pass as ?after= for the next page; null on the
	// last page.
	Next *string `json:"next"`
}

// DefaultPageSize is the default and largest ?limit= of a list.
const DefaultPageSize = 1000

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
	// Cache makes the counter cached with blocks of this many values
	// (1 to 1,000,000); 0 turns caching off.
	Cache *int64 `json:"cache,omitempty"`
}

// QueueConfig is a queue's counter range.
type QueueConfig struct {
	Min   int64 `json:"min"`
	Max   int64 `json:"max"`
	Reuse bool  `json:"reuse"`
}

// QueueConfigRequest is the body of PUT /v1/queues/{id}; every field is
// optional.
type QueueConfigRequest struct {
	Min   *int64 `json:"min,omitempty"`
	Max   *int64 `json:"max,omitempty"`
	Reuse *bool  `json:"reuse,omitempty"`
}

// Ticket is one queue member.
type Ticket struct {
	// ID is the queue's name.
	ID        string `json:"id"`
	ProcessID string `json:"process_id"`
	// Counter is unique among the queue's members and never changes.
	Counter int64 `json:"counter"`
	// Position is the 0-based rank by counter.
	Position int               `json:"position"`
	Tags     map[string]string `json:"tags"`
	// FencingToken is the queue's token after this member joined (on a
	// join's answer, the queue's current token).
	FencingToken uint64 `json:"fencing_token"`
	// Index is the log index of the join that made this membership.
	Index uint64 `json:"index"`
	// Session is the session of an ephemeral member, which leaves when the
	// session ends; absent for a member that stays until it leaves.
	Session string `json:"session,omitempty"`
}

// Queue is the body of GET /v1/queues/{id} and PUT's answer.
type Queue struct {
	ID           string      `json:"id"`
	FencingToken uint64      `json:"fencing_token"`
	Config       QueueConfig `json:"config"`
	// Members are ordered by counter; never null.
	Members []Ticket `json:"members"`
	// Index is the log index of the queue's last write.
	Index uint64 `json:"index"`
}

// JoinRequest is the body of POST /v1/queues/{id}/join.
type JoinRequest struct {
	ProcessID string            `json:"process_id"`
	Tags      map[string]string `json:"tags,omitempty"`
	// Session makes the member ephemeral: it leaves when the session ends.
	Session string `json:"session,omitempty"`
}

// LeaveRequest is the body of POST /v1/queues/{id}/leave.
type LeaveRequest struct {
	ProcessID string `json:"process_id"`
}

// LeaveResult is the answer to a leave.
type LeaveResult struct {
	ID           string `json:"id"`
	FencingToken uint64 `json:"fencing_token"`
	Index        uint64 `json:"index"`
}

// Item is one element of POST /v1/items.
type Item struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
}

// ItemsResult is the answer to POST /v1/items.
type ItemsResult struct {
	Added      int64  `json:"added"`
	Duplicates int64  `json:"duplicates"`
	Index      uint64 `json:"index"`
}

// TenantCount is the body of GET /v1/items/{tenant}/count.
type TenantCount struct {
	Tenant string `json:"tenant"`
	Count  int64  `json:"count"`
	// Index is the log index of the last batch that added to the tenant.
	Index uint64 `json:"index"`
}

// Document is a versioned JSON document.
type Document struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
	// Value is the JSON object; null in a reset of an absent document.
	Value json.RawMessage `json:"value"`
	Index uint64          `json:"index"`
}

// Change types in a document change event.
const (
	ChangeAdded    = "added"
	ChangeModified = "modified"
	ChangeRemoved  = "removed"
)

// KeyChange is what one version did to one top-level key: added has New,
// removed has Old, modified has both.
type KeyChange struct {
	Type string          `json:"type"`
	Key  string          `json:"key"`
	Old  json.RawMessage `json:"old,omitempty"`
	New  json.RawMessage `json:"new,omitempty"`
}

// DocChange is the data of an SSE "change" event: one version.
type DocChange struct {
	Version uint64      `json:"version"`
	Index   uint64      `json:"index"`
	Changes []KeyChange `json:"changes"`
}

// DocReset is the data of an SSE "reset" event: the whole document, after
// which changes continue from its version.
type DocReset struct {
	Version uint64          `json:"version"`
	Index   uint64          `json:"index"`
	Value   json.RawMessage `json:"value"`
}

// SSE event names of a document watch.
const (
	EventChange = "change"
	EventReset  = "reset"
)

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
	// LastContactMS is milliseconds since this member last heard from the
	// leader, as it last reported it (0 for the leader; -1 when unknown).
	LastContactMS int64 `json:"last_contact_ms"`
	// Health is the leader's verdict: "healthy" (caught up and in touch)
	// or "unhealthy". Only the leader's answer carries it.
	Health string `json:"health,omitempty"`
}

// ClusterLeave is the answer to POST /v1/cluster/leave.
type ClusterLeave struct {
	NodeID string `json:"node_id"`
	// TransferredLeadership is true when the node led and handed over
	// leadership first.
	TransferredLeadership bool `json:"transferred_leadership"`
	// Removed is true when the node knew itself out of the Raft
	// configuration before answering; false means the leader had not
	// removed it yet (it will, since the node has left gossip).
	Removed bool `json:"removed"`
	// Confirmed is true when the leader told the node, after committing
	// the change, that it removed it; Removed without Confirmed rests on
	// the node's own latest configuration, which may not have committed.
	Confirmed bool `json:"confirmed"`
}

// TransferLeaderRequest is the optional body of POST
// /v1/cluster/transfer-leader; without To the leader picks the most
// up-to-date voter.
type TransferLeaderRequest struct {
	To string `json:"to,omitempty"`
}

// TransferLeaderResult names the new leader.
type TransferLeaderResult struct {
	Leader     string `json:"leader"`
	LeaderHTTP string `json:"leader_http"`
}

// MemberRemoved is the answer to DELETE /v1/cluster/members/{id}.
type MemberRemoved struct {
	ID      string `json:"id"`
	Removed bool   `json:"removed"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// ACLRule grants read or write (write implies read) on the names of a
// resource that start with Prefix.
type ACLRule struct {
	// Resource is counters, queues, items, docs, sessions, cluster or *.
	Resource string `json:"resource"`
	// Prefix matches object names; "" matches all.
	Prefix string `json:"prefix"`
	// Access is read or write.
	Access string `json:"access"`
}

// ACLTokenRequest is the body of POST /v1/acl/tokens (and, with only
// Description and Secret, of POST /v1/acl/bootstrap).
type ACLTokenRequest struct {
	Description string    `json:"description"`
	Management  bool      `json:"management,omitempty"`
	Rules       []ACLRule `json:"rules,omitempty"`
	// Accessor and Secret, when set, are the token's public ID (1 to 64
	// letters, digits and dashes) and its secret (16 to 128 printable
	// characters); otherwise the node makes them. A client that chooses
	// both sends the same request when it retries a create whose answer
	// was lost (so the Idempotency-Key replays it), and knows the secret.
	Accessor string `json:"accessor,omitempty"`
	Secret   string `json:"secret,omitempty"`
}

// ACLToken is a token. Secret is set only in the answer that created it:
// the cluster keeps only a hash of it.
type ACLToken struct {
	Accessor    string    `json:"accessor"`
	Secret      string    `json:"secret,omitempty"`
	Description string    `json:"description"`
	Management  bool      `json:"management"`
	Rules       []ACLRule `json:"rules"`
	// Index is the log index that created the token.
	Index uint64 `json:"index"`
}

// ACLTokenList is the body of GET /v1/acl/tokens.
type ACLTokenList struct {
	Tokens []ACLToken `json:"tokens"`
	// Next is the accessor to pass as ?after= for the next page; null on
	// the last page.
	Next *string `json:"next"`
}

// SessionRequest is the body of POST /v1/sessions.
type SessionRequest struct {
	// TTL is a Go duration from 1s to 24h: the session ends when the
	// leader has not seen a renew for this long.
	TTL  string `json:"ttl"`
	Name string `json:"name,omitempty"`
}

// Session is a session as the API shows it.
type Session struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	TTL  string `json:"ttl"`
	// ExpiresInMs is how long the session has left unless renewed, as the
	// answering node sees it (the leader, unless the read was stale).
	ExpiresInMs int64  `json:"expires_in_ms"`
	Index       uint64 `json:"index"`
}

// SessionList is the body of GET /v1/sessions.
type SessionList struct {
	Sessions []Session `json:"sessions"`
	// Next is the ID to pass as ?after= for the next page; null on the
	// last page.
	Next *string `json:"next"`
}
