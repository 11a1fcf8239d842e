package fsm

// Snapshots: a consistent copy of the whole state taken under the lock
// (cheap: values are copied, nothing is encoded), then written outside it
// while Apply goes on. The stream is
//
//	magic "CNTDSNAP" [version] ([record tag][uvarint length][record])* [end tag]
//
// Restore decodes into a fresh State and swaps it in whole.
//
// This file is only the frame. Each object kind registers its own section
// (its record tag, how to copy it under the lock, how to read a record
// back) and the encodings of the results its commands return, from init in
// its own file, next to its commands: a new kind touches its own file, not
// this one.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

const (
	snapshotMagic   = "CNTDSNAP"
	snapshotVersion = 1
)

// Snapshot record tags of the frame; each kind declares its own beside its
// section. Persisted; do not renumber.
const (
	recEnd    byte = 0
	recHeader byte = 1
)

// valNone is the result tag of a nil result (a delete). Each result type's
// own tag is declared beside its registration. Persisted; do not renumber.
const valNone byte = 0

// maxRestoredCount bounds versions and fencing tokens in a snapshot: no
// real history reaches it, and a larger one (a corrupt or hand-made
// snapshot) could wrap around and repeat values that must never repeat.
const maxRestoredCount = 1 << 62

// checkRestored refuses a restored object whose name breaks the name rules
// or that the snapshot holds twice, or whose count n (a version or fencing
// token, which what names; "" for none) is beyond maxRestoredCount.
func checkRestored(kind, name string, dup bool, what string, n uint64) error {
	if err := CheckName(kind+" name", name); err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("%s %s appears twice", kind, name)
	}
	if what != "" && n > maxRestoredCount {
		return fmt.Errorf("%s %s has %s %d, beyond any real history", kind, name, what, n)
	}
	return nil
}

// section is one object kind's part of a snapshot.
type section struct {
	// name says what a record holds, in errors ("counter").
	name string
	// tag marks the kind's records; sections are written in tag order.
	tag byte
	// copy takes the kind's part of a consistent copy. It runs under the
	// state's read lock, so it copies and shares rather than encodes, and
	// returns what writes that copy later, outside the lock; the writer
	// may run more than once (Equal writes a snapshot twice).
	copy func(s *State) (write func(w *recordWriter) error)
	// read decodes one record and returns what adds it to a state being
	// restored. add holds the record to the rules Apply keeps: a snapshot
	// that breaks them is corrupt, and loading it would let the state
	// machine fail later.
	read func(d *decoder) (add func(st *State) error)
}

var (
	sections     []*section // in tag order
	sectionByTag [256]*section
)

// registerSection adds a kind's snapshot section; called from init in the
// file that owns the kind.
func registerSection(sec section) {
	if sec.tag == recEnd || sec.tag == recHeader || sectionByTag[sec.tag] != nil {
		panic(fmt.Sprintf("fsm: snapshot record tag %d registered twice (%s)", sec.tag, sec.name))
	}
	sectionByTag[sec.tag] = &sec
	sections = append(sections, &sec)
	slices.SortFunc(sections, func(a, b *section) int { return int(a.tag) - int(b.tag) })
}

// recordWriter frames a section's records: the section encodes a record
// into rec, and put writes it with its tag and length.
type recordWriter struct {
	w   io.Writer
	rec encoder
}

func (w *recordWriter) put(tag byte) error {
	var hdr [1 + binary.MaxVarintLen64]byte
	hdr[0] = tag
	n := binary.PutUvarint(hdr[1:], uint64(len(w.rec.buf)))
	if _, err := w.w.Write(hdr[:1+n]); err != nil {
		return err
	}
	_, err := w.w.Write(w.rec.buf)
	w.rec.buf = w.rec.buf[:0]
	return err
}

// eachRecord is the writer of a section that holds one record per item.
func eachRecord[T any](tag byte, items []T, encode func(*encoder, T)) func(*recordWriter) error {
	return func(w *recordWriter) error {
		for _, it := range items {
			encode(&w.rec, it)
			if err := w.put(tag); err != nil {
				return err
			}
		}
		return nil
	}
}

// copyEach is the copy of a section that writes one record per object:
// copyOne copies the named object under the lock, encode writes it later.
func copyEach[T any](tag byte, names []string, copyOne func(name string) T, encode func(*encoder, T)) func(*recordWriter) error {
	items := make([]T, len(names))
	for i, name := range names {
		items[i] = copyOne(name)
	}
	return eachRecord(tag, items, encode)
}

// readEach is the read of a section whose record is one named object:
// decode it, and add it to the state being restored with its checks.
func readEach[T any](decode func(*decoder) (string, T), add func(*State, string, T) error) func(*decoder) func(*State) error {
	return func(d *decoder) func(*State) error {
		name, v := decode(d)
		return func(st *State) error { return add(st, name, v) }
	}
}

// Snapshot is a point-in-time copy of a State.
type Snapshot struct {
	applied uint64
	parts   []snapshotPart
}

type snapshotPart struct {
	sec   *section
	write func(w *recordWriter) error
}

// Snapshot copies the state under the read lock, keeping the copy cheap:
// each kind shares what is never mutated after it is made and defers
// sorting and encoding to WriteTo.
func (s *State) Snapshot() *Snapshot {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &Snapshot{applied: s.applied, parts: make([]snapshotPart, len(sections))}
	for i, sec := range sections {
		snap.parts[i] = snapshotPart{sec: sec, write: sec.copy(s)}
	}
	return snap
}

// AppliedIndex is the index of the last entry the snapshot includes.
func (sn *Snapshot) AppliedIndex() uint64 { return sn.applied }

// WriteTo encodes the snapshot to w.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := &countingWriter{w: bw}
	rw := &recordWriter{w: cw}
	if _, err := io.WriteString(cw, snapshotMagic); err != nil {
		return cw.n, fmt.Errorf("write snapshot: %w", err)
	}
	rw.rec.byte(snapshotVersion)
	rw.rec.uvarint(sn.applied)
	if err := rw.put(recHeader); err != nil {
		return cw.n, fmt.Errorf("write snapshot header: %w", err)
	}
	for _, p := range sn.parts {
		if err := p.write(rw); err != nil {
			return cw.n, fmt.Errorf("write snapshot %s: %w", p.sec.name, err)
		}
	}
	if err := rw.put(recEnd); err != nil {
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
	s.tables = fresh.tables
	s.sessionQueues = nil // derived from the queues just replaced
	s.touched = nil
	s.hist.rebuild(s.docs)
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
		add := func(*State) error { return nil }
		switch sec := sectionByTag[tag]; {
		case tag == recEnd:
			return st, nil
		case tag == recHeader:
			if v := d.byte(); d.err == nil && v != snapshotVersion {
				return nil, fmt.Errorf("unsupported snapshot version %d", v)
			}
			st.applied = d.uvarint()
		case sec != nil:
			add = sec.read(&d)
		default:
			return nil, fmt.Errorf("record %d has unknown tag %d", n, tag)
		}
		if err := d.done(); err != nil {
			return nil, fmt.Errorf("record %d (tag %d): %w", n, tag, err)
		}
		if err := add(st); err != nil {
			return nil, fmt.Errorf("record %d: %w", n, err)
		}
	}
}

// resultCodec stores one result type inside idempotency records, so a
// retry after a restore replays what the first attempt returned.
type resultCodec struct {
	// put writes v with its tag and reports true if v is this codec's type.
	put func(e *encoder, v any) bool
	get func(d *decoder) any
}

var (
	resultCodecs []*resultCodec
	resultByTag  [256]*resultCodec
)

// registerResult makes results of type *T storable under tag; called from
// init in the file whose commands return them. Every result type a Payload
// can return needs one, or replays after a restore would lose it; the
// snapshot tests cover each kind.
func registerResult[T any](tag byte, encode func(*encoder, *T), decode func(*decoder) *T) {
	if tag == valNone || resultByTag[tag] != nil {
		panic(fmt.Sprintf("fsm: result tag %d registered twice (%T)", tag, (*T)(nil)))
	}
	c := &resultCodec{
		put: func(e *encoder, v any) bool {
			t, ok := v.(*T)
			if ok {
				e.byte(tag)
				encode(e, t)
			}
			return ok
		},
		get: func(d *decoder) any { return decode(d) },
	}
	resultByTag[tag] = c
	resultCodecs = append(resultCodecs, c)
}

// encodeValue writes a command result.
func encodeValue(e *encoder, v any) {
	if v == nil {
		e.byte(valNone)
		return
	}
	for _, c := range resultCodecs {
		if c.put(e, v) {
			return
		}
	}
	panic(fmt.Sprintf("fsm: no snapshot encoding for result type %T", v))
}

func decodeValue(d *decoder) any {
	tag := d.byte()
	if tag == valNone || d.err != nil {
		return nil
	}
	if c := resultByTag[tag]; c != nil {
		return c.get(d)
	}
	d.fail(fmt.Errorf("unknown result tag %d", tag))
	return nil
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
