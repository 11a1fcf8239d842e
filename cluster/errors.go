package cluster

import (
	"errors"
	"fmt"
)

// NotLeaderError means this node is not the leader, so the command was never
// appended to the log: it is always safe to retry elsewhere. LeaderHTTP is
// the leader's HTTP address (host:port) when known, empty during an election.
type NotLeaderError struct {
	LeaderID   string
	LeaderHTTP string
	// LeaderRESP is the leader's Redis-protocol address, empty when it
	// serves none or is not known.
	LeaderRESP string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderHTTP == "" {
		return "not the leader, and no leader is known"
	}
	return fmt.Sprintf("not the leader; the leader is %s at %s", e.LeaderID, e.LeaderHTTP)
}

// Is makes errors.Is(err, ErrNotLeader) match any NotLeaderError.
func (e *NotLeaderError) Is(target error) bool {
	_, ok := target.(*NotLeaderError)
	return ok
}

var (
	// ErrNotLeader matches every *NotLeaderError with errors.Is.
	ErrNotLeader = &NotLeaderError{}
	// ErrUnknownResult means the command may or may not have been applied:
	// leadership was lost or the wait timed out after it reached the log.
	// Never report it as a failure; retry with the same idempotency key.
	ErrUnknownResult = errors.New("outcome unknown: the write may or may not have been applied")
	// ErrUnavailable means the command was not appended (the node is busy,
	// shutting down, or handing over leadership); retrying is safe.
	ErrUnavailable = errors.New("temporarily unavailable")
)
