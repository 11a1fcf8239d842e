package fsm

// The replicated idempotency window. Each command with an Idempotency-Key
// leaves its result here until the leader-stamped time passes
// Time+KeyWindow; a retry inside the window gets that result back. Expiry is
// decided only by times carried in the log, so every replica forgets the
// same keys at the same log index.

import "errors"

// MaxIdempotencyKeys bounds the window's memory: when more keys are
// remembered than this, the oldest are forgotten first, even inside their
// window. A key costs about 245 bytes of heap with its stored result
// (BenchmarkIdempotencyKeyMemory; a document write's result is kept by
// reference, see remembered), so this caps the table near 250 MiB.
const MaxIdempotencyKeys = 1 << 20

type idemEntry struct {
	key     string
	fp      fingerprint
	expires int64 // leader time (Unix ns) after which the key is forgotten
	result  Result
}

// idemTable is a map for lookups plus a FIFO in insertion order for expiry.
// Leader clocks are not perfectly monotonic across elections, so the FIFO is
// only nearly sorted by expiry; get treats an expired entry as absent even
// while it waits in the FIFO.
type idemTable struct {
	byKey map[string]*idemEntry
	fifo  []*idemEntry
	head  int
}

func newIdemTable() idemTable {
	return idemTable{byKey: make(map[string]*idemEntry)}
}

func (t *idemTable) len() int { return len(t.fifo) - t.head }

// expire drops entries from the front of the FIFO that are due at now, or
// beyond the size bound.
func (t *idemTable) expire(now int64) {
	for t.len() > 0 {
		e := t.fifo[t.head]
		if e.expires > now && t.len() <= MaxIdempotencyKeys {
			break
		}
		t.fifo[t.head] = nil
		t.head++
		if t.byKey[e.key] == e {
			delete(t.byKey, e.key)
		}
	}
	// Compact once the dead prefix dominates, so the slice does not grow
	// without bound under steady load.
	if t.head > 1024 && t.head*2 > len(t.fifo) {
		n := copy(t.fifo, t.fifo[t.head:])
		clear(t.fifo[n:])
		t.fifo = t.fifo[:n]
		t.head = 0
	}
}

func (t *idemTable) get(key string, now int64) *idemEntry {
	e := t.byKey[key]
	if e == nil || e.expires <= now {
		return nil
	}
	return e
}

func (t *idemTable) put(e *idemEntry) {
	t.byKey[e.key] = e
	t.fifo = append(t.fifo, e)
}

// entries returns the live entries in FIFO order (for snapshots).
func (t *idemTable) entries() []*idemEntry {
	out := make([]*idemEntry, 0, len(t.byKey))
	for _, e := range t.fifo[t.head:] {
		if t.byKey[e.key] == e {
			out = append(out, e)
		}
	}
	return out
}

// remembered is what the idempotency table keeps of res: the result itself,
// except that a large document value is kept by reference (writtenDoc), and
// a counter with a cache or a ticket or queue with a session under a tag
// whose encoding carries it.
func remembered(res Result) Result {
	switch v := res.Value.(type) {
	case *Document:
		if len(v.Value) > idemInlineDoc {
			res.Value = &writtenDoc{Name: v.Name, Version: v.Version, Index: v.Index}
		}
	case *Counter:
		if v.Cache != 0 {
			res.Value = (*cachedCounter)(v)
		}
	case *Ticket:
		if v.Session != "" {
			res.Value = (*sessionTicket)(v)
		}
	case *Queue:
		if v.hasSessions() {
			res.Value = (*sessionQueue)(v)
		}
	}
	return res
}

// replay is the result a retry gets from what the table kept: the original
// result, a large document value rebuilt from the document and its change
// history. Past the history's reach the value is nil (JSON null): the
// name, version and index still say what the write did.
func (s *State) replay(res Result) Result {
	switch v := res.Value.(type) {
	case *writtenDoc:
		res.Value = &Document{Name: v.Name, Version: v.Version, Index: v.Index, Value: s.valueAt(v.Name, v.Version)}
	case *cachedCounter:
		res.Value = (*Counter)(v)
	case *sessionTicket:
		res.Value = (*Ticket)(v)
	case *sessionQueue:
		res.Value = (*Queue)(v)
	}
	return res
}

// recIdem tags a remembered key's snapshot record. Persisted; do not
// renumber.
const recIdem byte = 3

func init() {
	registerSection(section{name: "idempotency key", tag: recIdem, copy: copyIdem, read: readIdem})
	registerRestorer(restoreIdem)
}

// copyIdem is the remembered keys' part of a snapshot, in FIFO order so a
// restored table expires them in the same order. Stored results are never
// mutated after they are made, so they are shared.
func copyIdem(s *State) func(*recordWriter) error {
	return eachRecord(recIdem, s.idem.entries(), encodeIdem)
}

func readIdem(d *decoder) func(*State) error {
	e := decodeIdem(d)
	return func(st *State) error {
		st.idem.put(e)
		return nil
	}
}

func encodeIdem(e *encoder, en *idemEntry) {
	e.string(en.key)
	e.raw(en.fp[:])
	e.varint(en.expires)
	e.uvarint(en.result.Index)
	encodeValue(e, en.result.Value)
	var fe *Error
	if errors.As(en.result.Err, &fe) {
		e.bool(true)
		e.string(string(fe.Code))
		e.string(fe.Message)
		encodeValue(e, fe.Current)
	} else {
		e.bool(false)
	}
}

func decodeIdem(d *decoder) *idemEntry {
	en := &idemEntry{key: d.string()}
	for i := range en.fp {
		en.fp[i] = d.byte()
	}
	en.expires = d.varint()
	en.result.Index = d.uvarint()
	en.result.Value = decodeValue(d)
	if d.bool() {
		en.result.Err = &Error{Code: Code(d.string()), Message: d.string(), Current: decodeValue(d)}
	}
	return en
}

// restoreIdem adds a user backup's remembered results for keys this state
// does not hold, skipping those already expired at the restore's time; the
// current result wins for a key both hold. Stored results are facts about
// commands in this log, not user state: a retry of a write acknowledged
// after the backup must replay, not apply again, whether the rest is
// merged or forced.
func restoreIdem(s, b *State, _ bool, _ uint64) {
	for _, e := range b.idem.entries() {
		if e.expires <= s.now || s.idem.get(e.key, s.now) != nil {
			continue
		}
		s.idem.put(e)
	}
}
