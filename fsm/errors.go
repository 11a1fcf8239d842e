package fsm

import (
	"errors"
	"fmt"
)

// Code is the machine-readable reason a command or read was refused. The
// HTTP layer maps each code to a status in one table; the strings match the
// wire codes so logs and responses agree.
type Code string

// The codes the state machine can produce. A command refused with any of
// them changed nothing.
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
)

// Error is a rule the state machine enforced. Message is a sentence meant for
// people; Current, when set, is the object's state at the time of the refusal
// (a compare-and-set conflict carries the counter it compared against).
type Error struct {
	Code    Code
	Message string
	Current any
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, fsm.ErrConflict) match any *Error with the same
// code, whatever its message.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// Sentinels for errors.Is; the errors the FSM returns carry specific messages.
var (
	ErrBadRequest          = &Error{Code: CodeBadRequest, Message: "bad request"}
	ErrInvalidName         = &Error{Code: CodeInvalidName, Message: "invalid name"}
	ErrNotFound            = &Error{Code: CodeNotFound, Message: "not found"}
	ErrWrongType           = &Error{Code: CodeWrongType, Message: "wrong type"}
	ErrConflict            = &Error{Code: CodeConflict, Message: "conflict"}
	ErrOverflow            = &Error{Code: CodeOverflow, Message: "overflow"}
	ErrNotMonotonic        = &Error{Code: CodeNotMonotonic, Message: "not monotonic"}
	ErrQueueFull           = &Error{Code: CodeQueueFull, Message: "queue full"}
	ErrPreconditionFailed  = &Error{Code: CodePreconditionFailed, Message: "precondition failed"}
	ErrTooLarge            = &Error{Code: CodeTooLarge, Message: "too large"}
	ErrIdempotencyMismatch = &Error{Code: CodeIdempotencyMismatch, Message: "idempotency key reused for a different request"}
)

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
