package fsm

// Documents: versioned JSON objects with compare-and-set writes, RFC 7386
// merge patches and a bounded history of changes per version, from which
// watchers on any replica resume. Values are kept canonical (object keys
// sorted, numbers as written, no HTML escaping) so that "modified" means the
// value changed, not its spelling, and every replica stores the same bytes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"sort"
	"sync"
)

// ChangeType says what happened to a top-level key in one version.
type ChangeType string

// Change types, as the zkstruct seed names them.
const (
	Added    ChangeType = "added"
	Modified ChangeType = "modified"
	Removed  ChangeType = "removed"
)

// Document is a document as reads and writes return it.
type Document struct {
	Name string
	// Version counts the document's writes, deletes included: it never
	// repeats for a name. 0 for a name never written.
	Version uint64
	// Value is the canonical JSON object, nil when the document is absent
	// (never written, or deleted).
	Value []byte
	// Index is the log index of the last write, 0 if never written.
	Index uint64
}

// Change is one version of a document as a watcher sees it.
type Change struct {
	Version uint64
	Index   uint64
	// Keys holds one entry per changed top-level key, sorted by key.
	Keys []KeyChange
	size int64 // what the node's history bound counts it as (changeSize)
}

// KeyChange is what one version did to one top-level key. Old is nil for
// Added, New is nil for Removed.
type KeyChange struct {
	Type ChangeType
	Key  string
	Old  []byte
	New  []byte
}

// document is the stored form. A deleted document stays as a tombstone so
// that its versions continue when it is created again.
type document struct {
	version uint64
	index   uint64
	fields  map[string][]byte // canonical JSON per top-level key; nil when absent
	history []*Change         // oldest first, at most State.history long
	dropped int               // versions dropped from history's array since it was made
}

func (d *document) view(name string) *Document {
	out := &Document{Name: name, Version: d.version, Index: d.index}
	if d.fields != nil {
		out.Value = objectBytes(d.fields)
	}
	return out
}

// Document reads one document and the applied index the read reflects. An
// absent document has a nil Value and the version of its last delete (0 if
// never written).
func (s *State) Document(name string) (*Document, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.documentLocked(name), s.applied
}

// DocumentSince returns what a watcher that has seen version since needs
// next: the changes after it, oldest first — or, when they are no longer all
// kept or since is ahead of the document (a restore moved it back), a reset
// carrying the current document. Both nil means nothing new yet.
func (s *State) DocumentSince(name string, since uint64) (reset *Document, changes []*Change, applied uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.docs[name]
	var version uint64
	if d != nil {
		version = d.version
	}
	switch {
	case since == version:
		return nil, nil, s.applied
	case since > version:
		return s.documentLocked(name), nil, s.applied
	}
	// Versions without history (a restore drops it) or past its bound send
	// the watcher a reset.
	if len(d.history) == 0 || d.history[0].Version > since+1 {
		return d.view(name), nil, s.applied
	}
	i := sort.Search(len(d.history), func(i int) bool { return d.history[i].Version > since })
	return nil, d.history[i:len(d.history):len(d.history)], s.applied
}

func (s *State) documentLocked(name string) *Document {
	if d := s.docs[name]; d != nil {
		return d.view(name)
	}
	return &Document{Name: name}
}

// Precondition is a document write's compare-and-set condition.
type Precondition struct {
	// IfMatch, when set, requires the document to exist at this version; 0
	// means any version ("If-Match: *").
	IfMatch *uint64
	// IfNoneMatch requires the document to be absent ("If-None-Match: *").
	IfNoneMatch bool
}

func (p Precondition) encode(e *encoder) {
	if p.IfMatch == nil {
		e.varint(-1)
	} else {
		e.varint(int64(*p.IfMatch))
	}
	e.bool(p.IfNoneMatch)
}

func decodePrecondition(d *decoder) Precondition {
	var p Precondition
	if v := d.varint(); v >= 0 {
		u := uint64(v)
		p.IfMatch = &u
	}
	p.IfNoneMatch = d.bool()
	return p
}

func (p Precondition) validate() error {
	if p.IfMatch != nil && *p.IfMatch > 1<<62 {
		return errorf(CodeBadRequest, "If-Match version %d is out of range", *p.IfMatch)
	}
	if p.IfMatch != nil && p.IfNoneMatch {
		return errorf(CodeBadRequest, "If-Match and If-None-Match cannot be combined")
	}
	return nil
}

func (p Precondition) check(name string, d *document) error {
	exists := d != nil && d.fields != nil
	switch {
	case p.IfNoneMatch && exists:
		return errorf(CodePreconditionFailed, "document %s exists (version %d); If-None-Match: * wants it absent", name, d.version)
	case p.IfMatch != nil && !exists:
		return errorf(CodePreconditionFailed, "document %s does not exist; If-Match wants it present", name)
	case p.IfMatch != nil && *p.IfMatch != 0 && *p.IfMatch != d.version:
		return errorf(CodePreconditionFailed, "document %s is at version %d, not %d", name, d.version, *p.IfMatch)
	}
	return nil
}

// DocPut replaces a document with Value, which must be a JSON object.
type DocPut struct {
	Name  string
	Value []byte
	Precondition
}

// Op implements Payload.
func (DocPut) Op() Op { return OpDocPut }

// What a put's value and a patch are called in errors.
const (
	putBody   = "a document"
	patchBody = "a merge patch of a document"
)

// validateWrite checks what a put or patch carries, without looking at
// state: the name, the precondition, and a body that must be one JSON
// object (what names it in errors).
func (p Precondition) validateWrite(name string, body []byte, what string) error {
	if err := CheckName("document name", name); err != nil {
		return err
	}
	if err := p.validate(); err != nil {
		return err
	}
	_, err := parseObject(body, what)
	return err
}

// begin starts a put or patch on s: the current document, once the
// precondition holds for it, and the body parsed.
func (p Precondition) begin(s *State, name string, body []byte, what string) (*document, map[string]any, error) {
	d := s.docs[name]
	if err := p.check(name, d); err != nil {
		return nil, nil, err
	}
	obj, err := parseObject(body, what)
	return d, obj, err
}

// Validate implements Payload.
func (p DocPut) Validate() error { return p.validateWrite(p.Name, p.Value, putBody) }

func (p DocPut) encode(e *encoder) { e.string(p.Name); p.Precondition.encode(e); e.bytes(p.Value) }

func (p DocPut) apply(s *State, index uint64) (any, error) {
	d, obj, err := p.begin(s, p.Name, p.Value, putBody)
	if err != nil {
		return nil, err
	}
	fields := make(map[string][]byte, len(obj))
	for k, v := range obj {
		fields[k] = canonical(v)
	}
	if err := s.checkDocSize(p.Name, fields); err != nil {
		return nil, err
	}
	return s.writeDocument(p.Name, d, fields, index), nil
}

// DocPatch applies an RFC 7386 merge patch; an absent document is patched
// from {}.
type DocPatch struct {
	Name  string
	Patch []byte
	Precondition
}

// Op implements Payload.
func (DocPatch) Op() Op { return OpDocPatch }

// Validate implements Payload.
func (p DocPatch) Validate() error { return p.validateWrite(p.Name, p.Patch, patchBody) }

func (p DocPatch) encode(e *encoder) { e.string(p.Name); p.Precondition.encode(e); e.bytes(p.Patch) }

func (p DocPatch) apply(s *State, index uint64) (any, error) {
	d, patch, err := p.begin(s, p.Name, p.Patch, patchBody)
	if err != nil {
		return nil, err
	}
	fields := make(map[string][]byte)
	if d != nil {
		for k, v := range d.fields {
			fields[k] = v
		}
	}
	for k, pv := range patch {
		switch pv := pv.(type) {
		case nil:
			delete(fields, k)
		case map[string]any:
			var cur any
			if raw, ok := fields[k]; ok {
				cur = mustParse(raw)
			}
			fields[k] = canonical(mergePatch(cur, pv))
		default:
			fields[k] = canonical(mergePatch(nil, pv))
		}
	}
	if err := s.checkDocSize(p.Name, fields); err != nil {
		return nil, err
	}
	return s.writeDocument(p.Name, d, fields, index), nil
}

// checkDocSize refuses a document value larger than the limit the command
// being applied carries. A patch is judged by the document it makes, so
// small patches cannot grow a document past the limit either.
func (s *State) checkDocSize(name string, fields map[string][]byte) error {
	if s.maxDocSize <= 0 {
		return nil
	}
	if n := objectSize(fields); n > s.maxDocSize {
		return errorf(CodeTooLarge, "document %s would be %d bytes of JSON, more than the %d-byte limit", name, n, s.maxDocSize)
	}
	return nil
}

// objectSize is len(objectBytes(fields)), without building it.
func objectSize(fields map[string][]byte) int64 {
	n := int64(2) // {}
	if len(fields) > 1 {
		n += int64(len(fields) - 1) // commas
	}
	for k, v := range fields {
		n += int64(len(canonical(k)) + 1 + len(v)) // "key":value
	}
	return n
}

// mergePatch is RFC 7386's MergePatch(target, patch), on values decoded with
// UseNumber so that large integers pass through exactly.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = make(map[string]any, len(p))
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

// DocDelete deletes a document. Deleting an existing document is a version
// that removes every key; deleting an absent one changes nothing.
type DocDelete struct {
	Name string
	Precondition
}

// Op implements Payload.
func (DocDelete) Op() Op { return OpDocDelete }

// Validate implements Payload.
func (p DocDelete) Validate() error {
	if err := CheckName("document name", p.Name); err != nil {
		return err
	}
	if p.IfNoneMatch {
		return errorf(CodeBadRequest, "If-None-Match does not apply to a delete")
	}
	return p.validate()
}

func (p DocDelete) encode(e *encoder) { e.string(p.Name); p.Precondition.encode(e) }

func (p DocDelete) apply(s *State, index uint64) (any, error) {
	d := s.docs[p.Name]
	if err := p.check(p.Name, d); err != nil {
		return nil, err
	}
	if d == nil || d.fields == nil {
		return nil, nil
	}
	s.writeDocument(p.Name, d, nil, index)
	return nil, nil
}

// writeDocument makes fields (nil: absent) the document's next version and
// records the change for watchers.
func (s *State) writeDocument(name string, d *document, fields map[string][]byte, index uint64) *Document {
	if d == nil {
		d = &document{}
		s.docs[name] = d
	}
	ch := &Change{Version: d.version + 1, Index: index, Keys: diffFields(d.fields, fields)}
	d.version, d.index, d.fields = ch.Version, index, fields
	for len(d.history) >= s.history {
		s.hist.dropFront(d)
	}
	d.history = append(d.history, ch)
	s.hist.add(d, ch)
	s.touch(KindDocument, name)
	return d.view(name)
}

func diffFields(old, cur map[string][]byte) []KeyChange {
	var out []KeyChange
	for k, ov := range old {
		nv, ok := cur[k]
		switch {
		case !ok:
			out = append(out, KeyChange{Type: Removed, Key: k, Old: ov})
		case !bytes.Equal(ov, nv):
			out = append(out, KeyChange{Type: Modified, Key: k, Old: ov, New: nv})
		}
	}
	for k, nv := range cur {
		if _, ok := old[k]; !ok {
			out = append(out, KeyChange{Type: Added, Key: k, New: nv})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// parseObject decodes raw as one JSON object, numbers kept as written.
func parseObject(raw []byte, what string) (map[string]any, error) {
	v, err := parseValue(raw)
	if err != nil {
		return nil, errorf(CodeBadRequest, "%s must be %v", what, err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf(CodeBadRequest, "%s must be a JSON object, got %s", what, jsonKind(v))
	}
	return obj, nil
}

// mustParse decodes a value this package canonicalised itself.
func mustParse(raw []byte) any {
	v, err := parseValue(raw)
	if err != nil {
		panic(fmt.Sprintf("fsm: stored document value does not parse: %v", err))
	}
	return v
}

// parseValue decodes raw as exactly one JSON value, numbers kept as
// json.Number so that large integers pass through exactly.
func parseValue(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("one JSON value, but more follows it")
	}
	return v, nil
}

// canonicalBuffers are scratch space for canonical: what a document keeps
// is an exact-size copy, never an encoder's buffer with its spare capacity
// (a 64-byte minimum for a one-byte value, up to twice a large one).
var canonicalBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// canonical encodes a decoded value with sorted object keys and no HTML
// escaping.
func canonical(v any) []byte {
	b := canonicalBuffers.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= 64<<10 { // a large document's buffer is not worth keeping
			canonicalBuffers.Put(b)
		}
	}()
	b.Reset()
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("fsm: cannot encode a decoded JSON value: %v", err))
	}
	return bytes.Clone(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// objectBytes joins canonical fields into one JSON object, keys sorted.
func objectBytes(fields map[string][]byte) []byte {
	keys := sortedKeys(fields)
	n := 2
	for k, v := range fields {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, canonical(k)...)
		b = append(b, ':')
		b = append(b, fields[k]...)
	}
	return append(b, '}')
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

func init() {
	register(OpDocPut, "doc.put", func(d *decoder) Payload {
		return DocPut{Name: d.string(), Precondition: decodePrecondition(d), Value: d.bytes()}
	})
	register(OpDocPatch, "doc.patch", func(d *decoder) Payload {
		return DocPatch{Name: d.string(), Precondition: decodePrecondition(d), Patch: d.bytes()}
	})
	register(OpDocDelete, "doc.delete", func(d *decoder) Payload {
		return DocDelete{Name: d.string(), Precondition: decodePrecondition(d)}
	})
	registerSection(section{name: "document", tag: recDoc, copy: copyDocs, read: readEach(decodeDoc, addRestoredDoc)})
	registerResult(valDoc, encodeDocument, decodeDocument)
	registerResult(valWrittenDoc, encodeWrittenDoc, decodeWrittenDoc)
	registerRestorer(restoreDocs)
}

// Snapshot record and result tags of documents. Persisted; do not renumber.
const (
	recDoc        byte = 6
	valDoc        byte = 7
	valWrittenDoc byte = 10
)

type docCopy struct {
	name string
	d    document // fields map shared: writes replace it, never mutate it
}

// copyDocs is the documents' part of a snapshot, deleted ones included
// (their versions must continue); the change history is not kept.
func copyDocs(s *State) func(*recordWriter) error {
	return copyEach(recDoc, sortedKeys(s.docs), func(name string) *docCopy {
		d := *s.docs[name]
		d.history = nil
		return &docCopy{name: name, d: d}
	}, encodeDoc)
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
	n := d.count(1)
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

// addRestoredDoc adds a restored document to st, refusing one whose values
// would not parse: a later merge patch decodes them and must not fail on a
// replica.
func addRestoredDoc(st *State, name string, doc *document) error {
	_, dup := st.docs[name]
	if err := checkRestored("document", name, dup, "version", doc.version); err != nil {
		return err
	}
	if doc.fields != nil && doc.version == 0 {
		return fmt.Errorf("document %s exists at version 0", name)
	}
	for k, v := range doc.fields {
		if !json.Valid(v) {
			return fmt.Errorf("document %s: key %q holds invalid JSON", name, k)
		}
	}
	st.docs[name] = doc
	return nil
}

// idemInlineDoc is the largest document value an idempotency entry keeps
// a copy of. A larger one is rebuilt on replay (writtenDoc), so a window
// full of retried writes of large documents costs about what one of
// counters does, not a copy of every version.
const idemInlineDoc = 256

// writtenDoc is what the idempotency table keeps of a document write whose
// value is larger than idemInlineDoc: enough to find the value again.
type writtenDoc struct {
	Name    string
	Version uint64
	Index   uint64
}

// valueAt rebuilds the value document name had at version by undoing the
// kept changes after it; nil when they are not all kept.
func (s *State) valueAt(name string, version uint64) []byte {
	d := s.docs[name]
	if d == nil || d.version < version {
		return nil
	}
	if d.version == version {
		if d.fields == nil {
			return nil
		}
		return objectBytes(d.fields)
	}
	if len(d.history) == 0 || d.history[0].Version > version+1 {
		return nil
	}
	fields := maps.Clone(d.fields)
	if fields == nil {
		fields = make(map[string][]byte)
	}
	for i := len(d.history) - 1; i >= 0 && d.history[i].Version > version; i-- {
		for _, k := range d.history[i].Keys {
			if k.Type == Added {
				delete(fields, k.Key)
			} else {
				fields[k.Key] = k.Old
			}
		}
	}
	return objectBytes(fields)
}

func encodeWrittenDoc(e *encoder, w *writtenDoc) {
	e.string(w.Name)
	e.uvarint(w.Version)
	e.uvarint(w.Index)
}

func decodeWrittenDoc(d *decoder) *writtenDoc {
	return &writtenDoc{Name: d.string(), Version: d.uvarint(), Index: d.uvarint()}
}

// encodeDocument and decodeDocument store a *Document result (a write's
// answer), not the stored document (encodeDoc).
func encodeDocument(e *encoder, doc *Document) {
	e.string(doc.Name)
	e.uvarint(doc.Version)
	e.bool(doc.Value != nil)
	e.bytes(doc.Value)
	e.uvarint(doc.Index)
}

func decodeDocument(d *decoder) *Document {
	doc := &Document{Name: d.string(), Version: d.uvarint()}
	present := d.bool()
	if v := d.bytes(); present {
		doc.Value = bytes.Clone(v)
	}
	doc.Index = d.uvarint()
	return doc
}

// restoreDocs puts a user backup's documents in place, each by restoreDoc.
// With force the backup's documents replace the current ones, and every
// document that existed before is reported changed.
func restoreDocs(s, b *State, force bool, index uint64) {
	if force {
		for _, name := range sortedKeys(s.docs) {
			s.touch(KindDocument, name)
		}
	}
	for _, name := range sortedKeys(b.docs) {
		s.restoreDoc(name, b.docs[name], force, index)
		if force {
			b.docs[name] = s.docs[name]
		}
	}
	if force {
		s.docs = b.docs
	}
}

// restoreDoc puts the backed-up document bak in place of the current one.
// A backed-up version above the current one is taken as it is: the
// versions in between have no history here, so watchers get a reset. At or
// below the current version, a different value becomes a new version
// (current+1), so watchers see it as a change and no version repeats; an
// equal value changes nothing. A deleted document (a tombstone) is a value
// like any other: restoring it deletes the current document. With force, a
// lower backed-up version is taken as it is too: the document moves back,
// and watchers ahead of it get a reset.
func (s *State) restoreDoc(name string, bak *document, force bool, index uint64) {
	cur := s.docs[name]
	switch {
	case cur == nil || bak.version > cur.version || (force && bak.version < cur.version):
		bak.index, bak.history = index, nil
		s.docs[name] = bak
		s.touch(KindDocument, name)
	case sameFields(cur.fields, bak.fields):
	default:
		s.writeDocument(name, cur, bak.fields, index)
	}
}

// sameFields compares document values; nil (absent) differs from {}.
func sameFields(a, b map[string][]byte) bool {
	return (a == nil) == (b == nil) && maps.EqualFunc(a, b, bytes.Equal)
}
