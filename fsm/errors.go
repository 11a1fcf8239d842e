package fsm

import (
	"errors"
	"fmt"

	"github.com/countd/countd/api"
)

// Code is the machine-readable reason a command or read was refused. It is
// api.Code itself, not a copy: the wire codes are the one list, so httpapi's
// status table and clients read an fsm refusal's code without conversion.
type Code = api.Code

// The codes the state machine produces, by the names this package's rules
// use. They are api's values, not a second list. A command refused with any
// of them changed nothing.
const (
	CodeBadRequest          = api.CodeBadRequest
	CodeInvalidName         = api.CodeInvalidName
	CodeNotFound            = api.CodeNotFound
	CodeWrongType           = api.CodeWrongType
	CodeConflict            = api.CodeConflict
	CodeOverflow            = api.CodeOverflow
	CodeNotMonotonic        = api.CodeNotMonotonic
	CodeQueueFull           = api.CodeQueueFull
	CodePreconditionFailed  = api.CodePreconditionFailed
	CodeTooLarge            = api.CodeTooLarge
	CodeIdempotencyMismatch = api.CodeIdempotencyMismatch
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
