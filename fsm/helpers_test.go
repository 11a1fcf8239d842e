package fsm

import (
	"errors"
	"testing"
	"time"
)

// applier drives a State through the log encoding, as a replica would,
// with increasing indexes and a leader clock the test controls.
type applier struct {
	t     *testing.T
	s     *State
	index uint64
	now   int64
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	return &applier{t: t, s: New(), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()}
}

// do encodes and applies p; validation failures come back as a Result error
// without touching the log, as the HTTP layer would reject them.
func (a *applier) do(p Payload) Result {
	return a.doKey(p, "")
}

func (a *applier) doKey(p Payload, key string) Result {
	a.t.Helper()
	data, err := Encode(Command{Payload: p, IdempotencyKey: key, Time: a.now, KeyWindow: 10 * time.Minute})
	if err != nil {
		return Result{Err: err}
	}
	a.index++
	return a.s.Apply(a.index, data)
}

func (a *applier) get(id string) *Counter {
	a.t.Helper()
	c, _, err := a.s.Counter(id)
	if err != nil {
		a.t.Fatalf("get %s: %v", id, err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// resultOf unwraps a command's result, failing the test when the command
// was refused or returned another type; what names the command.
func resultOf[T any](t *testing.T, what string, r Result) *T {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("%s: %v", what, r.Err)
	}
	v, ok := r.Value.(*T)
	if !ok {
		t.Fatalf("%s returned %T, want %T", what, r.Value, v)
	}
	return v
}

// rfc7386AppendixA is RFC 7386's table of merge patch examples.
var rfc7386AppendixA = []struct{ target, patch, want string }{
	{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
	{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
	{`{"a":"b"}`, `{"a":null}`, `{}`},
	{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
	{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
	{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
	{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
	{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
	{`["a","b"]`, `["c","d"]`, `["c","d"]`},
	{`{"a":"b"}`, `["c"]`, `["c"]`},
	{`{"a":"foo"}`, `null`, `null`},
	{`{"a":"foo"}`, `"bar"`, `"bar"`},
	{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
	{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
	{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
}

// Results of the commands the kinds' tests use most.
func mint(t *testing.T, r Result) *Mint       { t.Helper(); return resultOf[Mint](t, "next", r) }
func qtTicket(t *testing.T, r Result) *Ticket { t.Helper(); return resultOf[Ticket](t, "join", r) }
func dcDoc(t *testing.T, r Result) *Document {
	t.Helper()
	return resultOf[Document](t, "document write", r)
}

func codeOf(err error) Code {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	if err != nil {
		return "non-fsm error: " + Code(err.Error())
	}
	return ""
}
