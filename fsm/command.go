package fsm

// Commands and their log encoding. An entry is
//
//	[format version][op][leader time][key window][idempotency key][payload]
//
// or, in format 2 (a document write stamped with the leader's size limit),
//
//	[2][op][leader time][key window][max doc size][idempotency key][payload]
//
// with a one-byte op and a dispatch table of decoders, so adding a command
// kind touches one place (its file registers itself). The format is part of
// the on-disk log: never renumber an op, only add new ones.

import (
	"fmt"
	"hash/fnv"
	"time"
)

// Op identifies a command kind in the log.
type Op uint8

// Command kinds. Values are persisted; do not renumber.
const (
	opInvalid       Op = 0
	OpCounterNext   Op = 1
	OpCounterAdd    Op = 2
	OpCounterSet    Op = 3
	OpCounterDelete Op = 4

	OpQueueJoin      Op = 5
	OpQueueLeave     Op = 6
	OpQueueConfigure Op = 7
	OpQueueDelete    Op = 8

	OpItemsAdd Op = 9

	OpDocPut    Op = 10
	OpDocPatch  Op = 11
	OpDocDelete Op = 12

	OpRestore Op = 13

	OpACLBootstrap   Op = 14
	OpACLTokenCreate Op = 15
	OpACLTokenDelete Op = 16

	OpSessionCreate Op = 17
	OpSessionRenew  Op = 18
	OpSessionDelete Op = 19
	OpSessionExpire Op = 20
)

// opIgnorable marks an op that a node which does not know it may skip. Every
// other unknown op stops the node: replicas silently diverging is worse
// than a replica that refuses to run.
const opIgnorable Op = 0x80

// Entry format versions. A command is written in the oldest format that
// can carry it, so a node that does not know format 2 keeps following a
// leader that writes it for everything but document writes.
const (
	formatVersion       = 1
	formatVersionLimits = 2
)

// Payload is the op-specific part of a command: what to change. Each payload
// type validates its own input and knows how to apply itself to the state.
type Payload interface {
	// Op is the command kind this payload encodes as.
	Op() Op
	// Validate checks the input without looking at state. Encode calls it
	// once before a command reaches the log (cluster.Node.Apply encodes on
	// whichever node takes the request); Apply calls it again on every
	// replica, because the log, not the encoder, is what replicas trust.
	Validate() error
	encode(e *encoder)
	apply(s *State, index uint64) (any, error)
}

type opSpec struct {
	name   string
	decode func(d *decoder) Payload
}

var opTable [256]*opSpec

// register adds a command kind to the dispatch table; called from init in the
// file that owns the kind.
func register(op Op, name string, decode func(d *decoder) Payload) {
	if opTable[op] != nil {
		panic(fmt.Sprintf("fsm: op %d registered twice (%s, %s)", op, opTable[op].name, name))
	}
	opTable[op] = &opSpec{name: name, decode: decode}
}

// String names the op for logs and metrics.
func (op Op) String() string {
	if s := opTable[op]; s != nil {
		return s.name
	}
	return fmt.Sprintf("op(%d)", uint8(op))
}

// Command is one state change as it travels through the log.
type Command struct {
	// Payload says what to change.
	Payload Payload
	// IdempotencyKey, when set, makes the command exactly-once within
	// KeyWindow: a later command with the same key gets this command's result
	// back instead of being applied again.
	IdempotencyKey string
	// Time is the leader's wall clock (Unix nanoseconds) when it appended the
	// command. It is the only clock the state machine ever sees, so every
	// replica expires idempotency keys at the same point in the log.
	Time int64
	// KeyWindow is how long IdempotencyKey is remembered after Time.
	KeyWindow time.Duration
	// MaxDocSize, when not 0, is the largest a document written by this
	// command may become, in bytes of its canonical JSON; larger is
	// refused with too_large. The leader stamps it, like Time, so that a
	// patch is judged by one limit on every replica whatever their flags
	// say. It is carried only by document puts and patches; entries
	// written before the limit existed carry 0 and are applied as they
	// were.
	MaxDocSize int64
}

// Validate checks the command's input without looking at state.
func (c Command) Validate() error {
	if c.Payload == nil {
		return errorf(CodeBadRequest, "command has no payload")
	}
	if c.IdempotencyKey != "" {
		if err := CheckIdempotencyKey(c.IdempotencyKey); err != nil {
			return err
		}
	}
	if c.MaxDocSize < 0 {
		return errorf(CodeBadRequest, "the document size limit must not be negative, got %d", c.MaxDocSize)
	}
	return c.Payload.Validate()
}

// Encode validates c and returns its log encoding. It is the only check
// of a command's input before the log; callers do not validate first.
func Encode(c Command) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c.encode(), nil
}

// encode writes c without validating it (Encode validates first).
func (c Command) encode() []byte {
	e := encoder{buf: make([]byte, 0, 48+len(c.IdempotencyKey))}
	op := c.Payload.Op()
	limited := c.MaxDocSize != 0 && (op == OpDocPut || op == OpDocPatch)
	if limited {
		e.byte(formatVersionLimits)
	} else {
		e.byte(formatVersion)
	}
	e.byte(byte(op))
	e.varint(c.Time)
	e.varint(int64(c.KeyWindow))
	if limited {
		e.varint(c.MaxDocSize)
	}
	e.string(c.IdempotencyKey)
	c.Payload.encode(&e)
	return e.buf
}

// decoded is a command read back from the log, with the fingerprint that
// decides whether a reused idempotency key names the same request.
type decoded struct {
	Command
	fingerprint fingerprint
}

// fingerprint identifies a request's content: the op and its payload bytes,
// not the leader-stamped fields, so a retry of the same request matches.
type fingerprint [16]byte

// errUnknownOp is returned for an op this build does not know. Apply turns it
// into a panic unless the op is marked ignorable.
type errUnknownOp struct{ op Op }

func (e errUnknownOp) Error() string { return fmt.Sprintf("unknown command op %d", uint8(e.op)) }

func decode(data []byte) (decoded, error) {
	d := decoder{buf: data}
	version := d.byte()
	if d.err == nil && version != formatVersion && version != formatVersionLimits {
		return decoded{}, fmt.Errorf("unknown command format version %d", version)
	}
	op := Op(d.byte())
	var out decoded
	out.Time = d.varint()
	out.KeyWindow = time.Duration(d.varint())
	if version == formatVersionLimits {
		out.MaxDocSize = d.varint()
	}
	out.IdempotencyKey = d.string()
	if d.err != nil {
		return decoded{}, fmt.Errorf("decode command header: %w", d.err)
	}
	spec := opTable[op]
	if spec == nil {
		return decoded{}, errUnknownOp{op}
	}
	payload := d.buf
	out.Payload = spec.decode(&d)
	if err := d.done(); err != nil {
		return decoded{}, fmt.Errorf("decode %s: %w", spec.name, err)
	}
	if out.IdempotencyKey != "" {
		h := fnv.New128a()
		h.Write([]byte{byte(op)})
		h.Write(payload)
		h.Sum(out.fingerprint[:0])
	}
	return out, nil
}
