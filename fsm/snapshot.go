package fsm

// Snapshots: a consistent copy of the whole state taken under the lock
// (cheap: values are copied, nothing is encoded), then written outside it
// while Apply goes on. The stream is
//
//	magic "CNTDSNAP" [version] ([record tag][uvarint length][record])* [end tag]
//
// Restore decodes into a fresh State and swaps it in whole.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
)

const (
	snapshotMagic   = "CNTDSNAP"
	snapshotVersion = 1
)

// Snapshot record tags. Persisted; do not renumber.
const (
	recEnd     byte = 0
	recHeader  byte = 1
	recCounter byte = 2
	recIdem    byte = 3
	recQueue   byte = 4
	recTenant  byte = 5
	recDoc     byte = 6
)

// maxRestoredCount bounds versions and fencing tokens in a snapshot: no
// real history reaches it, and a larger one (a corrupt or hand-made
// snapshot) could wrap around and repeat values that must never repeat.
const maxRestoredCount = 1 << 62

// tenantChunk is how many item IDs one tenant record holds at most, so a
// tenant with millions of items does not make one huge record.
const tenantChunk = 4096

// Result value tags inside idempotency records. Persisted; do not renumber.
const (
	valNone    byte = 0
	valCounter byte = 1
	valMint    byte = 2
	valTicket  byte = 3
	valLeave   byte = 4
	valQueue   byte = 5
	valItems   byte = 6
	valDoc     byte = 7
	valRestore byte = 8
)

// Snapshot is a point-in-time copy of a State.
type Snapshot struct {
	applied  uint64
	counters []Counter
	queues   []queueCopy
	tenants  []tenantCopy
	docs     []docCopy
	idem     []*idemEntry
}

type queueCopy struct {
	name string
	q    queue // members slice copied; members themselves never change
}

type tenantCopy struct {
	name  string
	index uint64
	items []string // sorted when written, outside the lock
}

type docCopy struct {
	name string
	d    document // fields map shared: writes replace it, never mutate it
}

// Snapshot copies the state under the read lock, keeping the copy cheap:
// stored results, queue members and document fields are never mutated
// after they are made, so they are shared, and item IDs are collected but
// sorted only when written.
func (s *State) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &Snapshot{applied: s.applied, idem: s.idem.entries()}
	for _, name := range s.sortedNames(KindCounter, "") {
		snap.counters = append(snap.counters, *s.objects[name].(*counter).view(name))
	}
	for _, name := range s.sortedNames(KindQueue, "") {
		q := *s.objects[name].(*queue)
		q.members = slices.Clone(q.members)
		q.byProc = nil
		snap.queues = append(snap.queues, queueCopy{name: name, q: q})
	}
	for _, name := range sortedKeys(s.tenants) {
		t := s.tenants[name]
		items := make([]string, 0, len(t.items))
		for id := range t.items {
			items = append(items, id)
		}
		snap.tenants = append(snap.tenants, tenantCopy{name: name, index: t.index, items: items})
	}
	for _, name := range sortedKeys(s.docs) {
		d := *s.docs[name]
		d.history = nil
		snap.docs = append(snap.docs, docCopy{name: name, d: d})
	}
	return snap
}

// AppliedIndex is the index of the last entry the snapshot includes.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// WriteTo encodes the snapshot to w.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw}
	var rec encoder
	put := func(tag byte) error {
		var hdr [1 + binary.MaxVarintLen64]byte
		hdr[0] = tag
		n := binary.PutUvarint(hdr[1:], uint64(len(rec.buf)))
		if _, err := cw.Write(hdr[:1+n]); err != nil {
			return err
		}
		_, err := cw.Write(rec.buf)
		rec.buf = rec.buf[:0]
		return err
	}
	if _, err := io.WriteString(cw, snapshotMagic); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	rec.byte(snapshotVersion)
	rec.uvarint(sn.applied)
	if err := put(recHeader); err != nil {
		return cw.n, fmt.Errorf("write snapshot header: %w", err)
	}
	for i := range sn.counters {
		encodeCounter(&rec, &sn.counters[i])
		if err := put(recCounter); err != nil {
			return cw.n, fmt.Errorf("write snapshot counter: %w", err)
		}
	}
	for i := range sn.queues {
		encodeQueue(&rec, &sn.queues[i])
		if err := put(recQueue); err != nil {
			return cw.n, fmt.Errorf("write snapshot queue: %w", err)
		}
	}
	for _, t := range sn.tenants {
		sort.Strings(t.items)
		for first := 0; first == 0 || first < len(t.items); first += tenantChunk {
			chunk := t.items[first:min(first+tenantChunk, len(t.items))]
			rec.string(t.name)
			rec.uvarint(t.index)
			rec.uvarint(uint64(len(chunk)))
			for _, id := range chunk {
				rec.string(id)
			}
			if err := put(recTenant); err != nil {
				return cw.n, fmt.Errorf("write snapshot tenant: %w", err)
			}
		}
	}
	for i := range sn.docs {
		encodeDoc(&rec, &sn.docs[i])
		if err := put(recDoc); err != nil {
			return cw.n, fmt.Errorf("write snapshot document: %w", err)
		}
	}
	for _, e := range sn.idem {
		encodeIdem(&rec, e)
		if err := put(recIdem); err != nil {
			return cw.n, fmt.Errorf("write snapshot idempotency key: %w", err)
		}
	}
	if err := put(recEnd); err != nil {
		return cw.n, fmt.Errorf("write snapshot end: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("flush snapshot: %w", err)
	}
	return cw.n, nil
}

// Restore replaces the whole state with the snapshot read from r. On error
// the state is left as it was.
func (s *State) Restore(r io.Reader) error {
	fresh, err := readSnapshot(r)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	s.mu.Lock()
	s.applied, s.objects, s.idem = fresh.applied, fresh.objects, fresh.idem
	s.tenants, s.docs = fresh.tenants, fresh.docs
	s.touched = nil
	s.mu.Unlock()
	if s.onChange != nil {
		s.onChange(nil) // anything may have changed: wake every watcher
	}
	return nil
}

func readSnapshot(r io.Reader) (*State, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, magic); err != nil {
		return nil, fmt.Errorf("read magic: %w", err)
	}
	if string(magic) != snapshotMagic {
		return nil, errors.New("not a countd snapshot (bad magic)")
	}
	st := empty()
	var buf bytes.Buffer
	for n := 0; ; n++ {
		tag, err := br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", n, io.ErrUnexpectedEOF)
		}
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("record %d length: %w", n, err)
		}
		if size > 1<<30 {
			return nil, fmt.Errorf("record %d claims %d bytes", n, size)
		}
		// Grow with the data that actually arrives, so a corrupt length
		// cannot make a tiny stream allocate a gigabyte.
		buf.Reset()
		if _, err := io.CopyN(&buf, br, int64(size)); err != nil {
			return nil, fmt.Errorf("record %d: %w", n, io.ErrUnexpectedEOF)
		}
		d := decoder{buf: buf.Bytes()}
		if n == 0 && tag != recHeader {
			return nil, fmt.Errorf("first record has tag %d, want header", tag)
		}
		switch tag {
		case recEnd:
			return st, nil
		case recHeader:
			if v := d.byte(); d.err == nil && v != snapshotVersion {
				return nil, fmt.Errorf("unsupported snapshot version %d", v)
			}
			st.applied = d.uvarint()
		case recCounter:
			c := decodeCounter(&d)
			if d.err == nil {
				if err := checkRestoredCounter(st, c); err != nil {
					return nil, fmt.Errorf("record %d: %w", n, err)
				}
				st.objects[c.ID] = &counter{value: c.Value, increment: c.Increment, offset: c.Offset, monotonic: c.Monotonic, index: c.Index}
			}
		case recQueue:
			name, q := decodeQueue(&d)
			if d.err == nil {
				if err := checkRestoredQueue(st, name, q); err != nil {
					return nil, fmt.Errorf("record %d: %w", n, err)
				}
				st.objects[name] = q
			}
		case recTenant:
			if err := decodeTenant(&d, st); err != nil {
				return nil, fmt.Errorf("record %d: %w", n, err)
			}
		case recDoc:
			name, doc := decodeDoc(&d)
			if d.err == nil {
				if err := checkRestoredDoc(st, name, doc); err != nil {
					return nil, fmt.Errorf("record %d: %w", n, err)
				}
				st.docs[name] = doc
			}
		case recIdem:
			e := decodeIdem(&d)
			if d.err == nil {
				st.idem.put(e)
			}
		default:
			return nil, fmt.Errorf("record %d has unknown tag %d", n, tag)
		}
		if err := d.done(); err != nil {
			return nil, fmt.Errorf("record %d (tag %d): %w", n, tag, err)
		}
	}
}

// checkRestoredCounter holds a restored counter to the rules Apply
// enforces: a snapshot that breaks them is corrupt, and loading it would
// let the state machine fail later (an increment of 0 divides by zero).
func checkRestoredCounter(st *State, c *Counter) error {
	if err := CheckName("counter name", c.ID); err != nil {
		return err
	}
	if c.Increment < 1 || c.Increment > MaxIncrement {
		return fmt.Errorf("counter %s has increment %d, outside 1..2^62", c.ID, c.Increment)
	}
	if _, dup := st.objects[c.ID]; dup {
		return fmt.Errorf("counter %s appears twice", c.ID)
	}
	return nil
}

func encodeCounter(e *encoder, c *Counter) {
	e.string(c.ID)
	e.varint(c.Value)
	e.varint(c.Increment)
	e.varint(c.Offset)
	e.bool(c.Monotonic)
	e.uvarint(c.Index)
}

func decodeCounter(d *decoder) *Counter {
	return &Counter{ID: d.string(), Value: d.varint(), Increment: d.varint(), Offset: d.varint(), Monotonic: d.bool(), Index: d.uvarint()}
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

// encodeValue writes a command result. Every result type a Payload can return
// needs a case here and in decodeValue, or replays after a restore would lose
// it; the snapshot tests cover each kind.
func encodeValue(e *encoder, v any) {
	switch v := v.(type) {
	case nil:
		e.byte(valNone)
	case *Counter:
		e.byte(valCounter)
		encodeCounter(e, v)
	case *Mint:
		e.byte(valMint)
		e.string(v.ID)
		e.varint(v.First)
		e.varint(v.Last)
		e.varint(v.Count)
		e.varint(v.Step)
		e.uvarint(v.Index)
	case *Ticket:
		e.byte(valTicket)
		encodeTicket(e, v)
	case *Leave:
		e.byte(valLeave)
		e.string(v.Queue)
		e.uvarint(v.FencingToken)
		e.uvarint(v.Index)
	case *Queue:
		e.byte(valQueue)
		e.string(v.ID)
		e.uvarint(v.FencingToken)
		encodeQueueConfig(e, v.Config)
		e.uvarint(v.Index)
		e.uvarint(uint64(len(v.Members)))
		for _, t := range v.Members {
			encodeTicket(e, t)
		}
	case *ItemsAdded:
		e.byte(valItems)
		e.varint(v.Added)
		e.varint(v.Duplicates)
		e.uvarint(v.Index)
	case *Document:
		e.byte(valDoc)
		e.string(v.Name)
		e.uvarint(v.Version)
		e.bool(v.Value != nil)
		e.bytes(v.Value)
		e.uvarint(v.Index)
	case *Restored:
		e.byte(valRestore)
		e.varint(v.Counters)
		e.varint(v.Queues)
		e.varint(v.Documents)
		e.varint(v.Tenants)
		e.bool(v.Forced)
		e.uvarint(v.Advanced)
		e.uvarint(v.BackupIndex)
		e.uvarint(v.Index)
	default:
		panic(fmt.Sprintf("fsm: no snapshot encoding for result type %T", v))
	}
}

func decodeValue(d *decoder) any {
	switch tag := d.byte(); tag {
	case valNone:
		return nil
	case valCounter:
		return decodeCounter(d)
	case valMint:
		return &Mint{ID: d.string(), First: d.varint(), Last: d.varint(), Count: d.varint(), Step: d.varint(), Index: d.uvarint()}
	case valTicket:
		return decodeTicket(d)
	case valLeave:
		return &Leave{Queue: d.string(), FencingToken: d.uvarint(), Index: d.uvarint()}
	case valQueue:
		q := &Queue{ID: d.string(), FencingToken: d.uvarint(), Config: decodeQueueConfig(d), Index: d.uvarint()}
		n := d.uvarint()
		if n > uint64(len(d.buf)) {
			d.fail(errShort)
			return nil
		}
		q.Members = make([]*Ticket, n)
		for i := range q.Members {
			q.Members[i] = decodeTicket(d)
		}
		return q
	case valItems:
		return &ItemsAdded{Added: d.varint(), Duplicates: d.varint(), Index: d.uvarint()}
	case valDoc:
		doc := &Document{Name: d.string(), Version: d.uvarint()}
		present := d.bool()
		if v := d.bytes(); present {
			doc.Value = bytes.Clone(v)
		}
		doc.Index = d.uvarint()
		return doc
	case valRestore:
		return &Restored{Counters: d.varint(), Queues: d.varint(), Documents: d.varint(), Tenants: d.varint(),
			Forced: d.bool(), Advanced: d.uvarint(), BackupIndex: d.uvarint(), Index: d.uvarint()}
	default:
		d.fail(fmt.Errorf("unknown result tag %d", tag))
		return nil
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Equal reports whether two snapshots hold the same state; tests use it to
// compare replicas and round trips.
func (sn *Snapshot) Equal(other *Snapshot) bool {
	var a, b bytes.Buffer
	if _, err := sn.WriteTo(&a); err != nil {
		return false
	}
	if _, err := other.WriteTo(&b); err != nil {
		return false
	}
	return bytes.Equal(a.Bytes(), b.Bytes())
}

func encodeQueueConfig(e *encoder, c QueueConfig) {
	e.varint(c.Min)
	e.varint(c.Max)
	e.bool(c.Reuse)
}

func decodeQueueConfig(d *decoder) QueueConfig {
	return QueueConfig{Min: d.varint(), Max: d.varint(), Reuse: d.bool()}
}

func encodeTicket(e *encoder, t *Ticket) {
	e.string(t.Queue)
	e.string(t.ProcessID)
	e.varint(t.Counter)
	e.uvarint(uint64(t.Position))
	encodeTags(e, t.Tags)
	e.uvarint(t.FencingToken)
	e.uvarint(t.Index)
}

func decodeTicket(d *decoder) *Ticket {
	return &Ticket{Queue: d.string(), ProcessID: d.string(), Counter: d.varint(), Position: int(d.uvarint()),
		Tags: decodeTags(d), FencingToken: d.uvarint(), Index: d.uvarint()}
}

func encodeQueue(e *encoder, c *queueCopy) {
	e.string(c.name)
	encodeQueueConfig(e, c.q.cfg)
	e.uvarint(c.q.token)
	e.varint(c.q.high)
	e.uvarint(c.q.index)
	e.uvarint(uint64(len(c.q.members)))
	for _, m := range c.q.members {
		e.string(m.process)
		e.varint(m.counter)
		encodeTags(e, m.tags)
		e.uvarint(m.token)
		e.uvarint(m.index)
	}
}

func decodeQueue(d *decoder) (string, *queue) {
	name := d.string()
	q := newQueue()
	q.cfg = decodeQueueConfig(d)
	q.token = d.uvarint()
	q.high = d.varint()
	q.index = d.uvarint()
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return name, q
	}
	for range n {
		m := &member{process: d.string(), counter: d.varint(), tags: decodeTags(d), token: d.uvarint(), index: d.uvarint()}
		q.members = append(q.members, m)
		q.byProc[m.process] = m
	}
	return name, q
}

// checkRestoredQueue holds a restored queue to the invariants Apply keeps:
// counters unique and sorted, none above the high-water mark, one ticket
// per process.
func checkRestoredQueue(st *State, name string, q *queue) error {
	if err := CheckName("queue name", name); err != nil {
		return err
	}
	if _, dup := st.objects[name]; dup {
		return fmt.Errorf("queue %s appears twice", name)
	}
	if q.token > maxRestoredCount {
		return fmt.Errorf("queue %s has fencing token %d, beyond any real history", name, q.token)
	}
	if q.cfg.Min < 0 || q.cfg.Min > q.cfg.Max {
		return fmt.Errorf("queue %s has range %d…%d", name, q.cfg.Min, q.cfg.Max)
	}
	if len(q.byProc) != len(q.members) {
		return fmt.Errorf("queue %s lists a process twice", name)
	}
	for i, m := range q.members {
		if err := CheckName("process id", m.process); err != nil {
			return fmt.Errorf("queue %s: %w", name, err)
		}
		if i > 0 && m.counter <= q.members[i-1].counter {
			return fmt.Errorf("queue %s: member counters are not unique and sorted", name)
		}
		if m.counter > q.high {
			return fmt.Errorf("queue %s: counter %d is above the high-water mark %d", name, m.counter, q.high)
		}
	}
	return nil
}

// decodeTenant adds one record's item IDs to its tenant; a tenant spans
// several records when it holds many items.
func decodeTenant(d *decoder, st *State) error {
	name, index, n := d.string(), d.uvarint(), d.uvarint()
	if d.err != nil {
		return d.err
	}
	if err := CheckName("tenant", name); err != nil {
		return err
	}
	if n > uint64(len(d.buf)) {
		return errShort
	}
	t := st.tenants[name]
	if t == nil {
		t = &tenant{items: make(map[string]struct{}, n)}
		st.tenants[name] = t
	}
	t.index = index
	for range n {
		id := d.string()
		if d.err != nil {
			return d.err
		}
		if _, dup := t.items[id]; dup {
			return fmt.Errorf("tenant %s lists item %q twice", name, id)
		}
		t.items[id] = struct{}{}
	}
	return nil
}

func encodeDoc(e *encoder, c *docCopy) {
	e.string(c.name)
	e.uvarint(c.d.version)
	e.uvarint(c.d.index)
	e.bool(c.d.fields != nil)
	keys := sortedKeys(c.d.fields)
	e.uvarint(uint64(len(keys)))
	for _, k := range keys {
		e.string(k)
		e.bytes(c.d.fields[k])
	}
}

func decodeDoc(d *decoder) (string, *document) {
	name := d.string()
	doc := &document{version: d.uvarint(), index: d.uvarint()}
	present := d.bool()
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return name, doc
	}
	if present {
		doc.fields = make(map[string][]byte, n)
	}
	for range n {
		k, v := d.string(), bytes.Clone(d.bytes())
		if doc.fields != nil {
			doc.fields[k] = v
		}
	}
	return name, doc
}

// checkRestoredDoc refuses a document whose values would not parse: a later
// merge patch decodes them and must not fail on a replica.
func checkRestoredDoc(st *State, name string, doc *document) error {
	if err := CheckName("document name", name); err != nil {
		return err
	}
	if _, dup := st.docs[name]; dup {
		return fmt.Errorf("document %s appears twice", name)
	}
	if doc.version > maxRestoredCount {
		return fmt.Errorf("document %s has version %d, beyond any real history", name, doc.version)
	}
	if doc.fields != nil && doc.version == 0 {
		return fmt.Errorf("document %s exists at version 0", name)
	}
	for k, v := range doc.fields {
		if !json.Valid(v) {
			return fmt.Errorf("document %s: key %q holds invalid JSON", name, k)
		}
	}
	return nil
}
