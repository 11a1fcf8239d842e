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
	"errors"
	"fmt"
	"io"
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
)

// Result value tags inside idempotency records. Persisted; do not renumber.
const (
	valNone    byte = 0
	valCounter byte = 1
	valMint    byte = 2
)

// Snapshot is a point-in-time copy of a State.
type Snapshot struct {
	applied  uint64
	counters []Counter
	idem     []*idemEntry
}

// Snapshot copies the state under the read lock. Stored results are never
// mutated after they are made, so idempotency entries are shared, not copied.
func (s *State) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &Snapshot{applied: s.applied, idem: s.idem.entries()}
	for _, name := range s.sortedNames(KindCounter, "") {
		snap.counters = append(snap.counters, *s.objects[name].(*counter).view(name))
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
	defer s.mu.Unlock()
	s.applied, s.objects, s.idem = fresh.applied, fresh.objects, fresh.idem
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
	st := New()
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
