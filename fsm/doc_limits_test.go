package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// applyLimited applies p stamped with a document size limit, as a leader
// running with -max-doc-size does.
func (a *applier) applyLimited(p Payload, limit int64) Result {
	a.t.Helper()
	data, err := Encode(Command{Payload: p, Time: a.now, KeyWindow: 10 * time.Minute, MaxDocSize: limit})
	if err != nil {
		return Result{Err: err}
	}
	a.index++
	return a.s.Apply(a.index, data)
}

// bigValue is a JSON object of n top-level keys with values of size bytes.
func bigValue(n, size int) []byte {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", fmt.Sprintf("k%06d", i), strings.Repeat("x", size))
	}
	b.WriteByte('}')
	return []byte(b.String())
}

func TestObjectSizeIsTheEncodedLength(t *testing.T) {
	for _, v := range []string{`{}`, `{"a":1}`, `{"a":1,"b":[1,2],"c\u00e9\"":"<>"}`, string(bigValue(30, 7))} {
		obj, err := parseObject([]byte(v), putBody)
		if err != nil {
			t.Fatal(err)
		}
		fields := make(map[string][]byte)
		for k, x := range obj {
			fields[k] = canonical(x)
		}
		if got, want := objectSize(fields), int64(len(objectBytes(fields))); got != want {
			t.Errorf("objectSize(%s) = %d, want %d", v, got, want)
		}
	}
}

func TestDocSizeLimitStampedInTheCommand(t *testing.T) {
	a := newApplier(t)
	value := bigValue(10, 90) // ~1 KiB
	limit := int64(len(value)) + 10

	// A put over the limit is refused and changes nothing.
	r := a.applyLimited(DocPut{Name: "d", Value: value}, limit-100)
	if !errors.Is(r.Err, ErrTooLarge) {
		t.Fatalf("put over the limit: %v, want too_large", r.Err)
	}
	if d := dcRead(a.s, "d"); d.Version != 0 {
		t.Fatalf("refused put changed the document: version %d", d.Version)
	}
	if r := a.applyLimited(DocPut{Name: "d", Value: value}, limit); r.Err != nil {
		t.Fatalf("put within the limit: %v", r.Err)
	}

	// Small patches cannot grow the document past the limit: the patch is
	// judged by the document it makes.
	r = a.applyLimited(DocPatch{Name: "d", Patch: []byte(`{"more":"` + strings.Repeat("y", 50) + `"}`)}, limit)
	if !errors.Is(r.Err, ErrTooLarge) || !strings.Contains(r.Err.Error(), "limit") {
		t.Fatalf("patch growing past the limit: %v, want too_large naming the limit", r.Err)
	}
	if d := dcRead(a.s, "d"); d.Version != 1 || !bytes.Equal(d.Value, value) {
		t.Fatalf("refused patch changed the document: version %d", d.Version)
	}
	// A patch that shrinks it is fine.
	if r := a.applyLimited(DocPatch{Name: "d", Patch: []byte(`{"k000000":null}`)}, limit); r.Err != nil {
		t.Fatalf("shrinking patch: %v", r.Err)
	}

	// Entries written before the limit existed carry none and apply as they
	// did: a log replayed after an upgrade rebuilds the same state.
	if r := a.do(DocPut{Name: "old", Value: bigValue(40, 90)}); r.Err != nil {
		t.Fatalf("unstamped put: %v", r.Err)
	}
}

func TestCommandFormatCarriesTheLimitOnlyForDocumentWrites(t *testing.T) {
	for _, c := range []struct {
		p       Payload
		limit   int64
		version byte
	}{
		{DocPut{Name: "d", Value: []byte(`{}`)}, 0, formatVersion},
		{DocPut{Name: "d", Value: []byte(`{}`)}, 1 << 20, formatVersionLimits},
		{DocPatch{Name: "d", Patch: []byte(`{}`)}, 1 << 20, formatVersionLimits},
		// Every other command stays in format 1, so a node that does not
		// know format 2 keeps following for them.
		{DocDelete{Name: "d"}, 1 << 20, formatVersion},
		{CounterNext{ID: "c", Count: 1}, 1 << 20, formatVersion},
	} {
		data, err := Encode(Command{Payload: c.p, Time: 7, KeyWindow: time.Minute, MaxDocSize: c.limit, IdempotencyKey: "k"})
		if err != nil {
			t.Fatal(err)
		}
		if data[0] != c.version {
			t.Errorf("%s with limit %d: format %d, want %d", c.p.Op(), c.limit, data[0], c.version)
		}
		got, err := decode(data)
		if err != nil {
			t.Fatalf("decode %s: %v", c.p.Op(), err)
		}
		wantLimit := c.limit
		if c.version == formatVersion {
			wantLimit = 0
		}
		if got.Time != 7 || got.KeyWindow != time.Minute || got.IdempotencyKey != "k" || got.MaxDocSize != wantLimit {
			t.Errorf("%s: decoded header %+v", c.p.Op(), got.Command)
		}
	}
	// The limit is the leader's, not the request's: a retry stamped by a
	// leader with another limit is the same request.
	d1, _ := Encode(Command{Payload: DocPut{Name: "d", Value: []byte(`{}`)}, MaxDocSize: 1 << 20, IdempotencyKey: "k"})
	d2, _ := Encode(Command{Payload: DocPut{Name: "d", Value: []byte(`{}`)}, MaxDocSize: 2 << 20, IdempotencyKey: "k"})
	c1, _ := decode(d1)
	c2, _ := decode(d2)
	if c1.fingerprint != c2.fingerprint {
		t.Error("the stamped limit changes the request's fingerprint")
	}
}

func TestHistoryBoundedInBytesAcrossDocuments(t *testing.T) {
	const limit = 64 << 10
	a := newApplier(t)
	a.s = NewWithOptions(Options{WatchHistoryBytes: limit})
	// One version of "quiet", then many of "busy": the oldest go first,
	// whichever document they belong to.
	a.do(DocPut{Name: "quiet", Value: bigValue(10, 100)})
	for i := range 200 {
		// Each version changes pad, so each costs about 2 KB of history.
		a.do(DocPut{Name: "busy", Value: []byte(fmt.Sprintf(`{"pad":"%d%s"}`, i, strings.Repeat("p", 1000)))})
		if a.s.hist.bytes > limit {
			t.Fatalf("after %d writes the histories hold %d bytes, over the %d bound", i+1, a.s.hist.bytes, limit)
		}
	}
	reset, changes, _ := a.s.DocumentSince("quiet", 0)
	if reset == nil || changes != nil {
		t.Fatalf("quiet's dropped version: reset %v, changes %d; want a reset", reset, len(changes))
	}
	busy := a.s.docs["busy"]
	if got := len(busy.history); got == 0 || got >= 200 {
		t.Fatalf("busy keeps %d versions; want some, fewer than 200", got)
	}
	if busy.history[len(busy.history)-1].Version != 200 {
		t.Fatal("the newest version was dropped")
	}
	// The bound counts what is kept: the sum matches the documents.
	var sum int64
	for _, d := range a.s.docs {
		for _, ch := range d.history {
			sum += ch.size
		}
	}
	if sum != a.s.hist.bytes {
		t.Fatalf("history log counts %d bytes, the documents hold %d", a.s.hist.bytes, sum)
	}
}

func TestHistoryLogStaysProportionalToWhatIsKept(t *testing.T) {
	// Versions dropped by a document's own version bound leave entries in
	// the node's log; compaction must keep it proportional to what is kept.
	a := newApplier(t)
	a.s = NewWithOptions(Options{WatchHistory: 3})
	for i := range 20_000 {
		a.do(DocPut{Name: "d", Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	if n := len(a.s.hist.fifo) - a.s.hist.head; n > 2*a.s.hist.live+1024 {
		t.Fatalf("history log holds %d entries for %d kept versions", n, a.s.hist.live)
	}
	if a.s.hist.live != 3 {
		t.Fatalf("%d versions kept, want 3", a.s.hist.live)
	}
}

func TestHistoryLogRebuiltAfterRestore(t *testing.T) {
	a := newApplier(t)
	a.s = NewWithOptions(Options{WatchHistoryBytes: 32 << 10})
	for i := range 50 {
		a.do(DocPut{Name: fmt.Sprintf("d%d", i%5), Value: []byte(fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("p", 200)))})
	}
	var backup bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		a.do(DocPut{Name: fmt.Sprintf("d%d", i%5), Value: []byte(fmt.Sprintf(`{"m":%d}`, i))})
	}
	// A forced restore moves every document back, replacing the ones the
	// log points into: what it counts must be what the documents hold.
	r := a.do(RestoreBackup{Snapshot: backup.Bytes(), Force: true})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	var sum int64
	for _, d := range a.s.docs {
		for _, ch := range d.history {
			sum += ch.size
		}
	}
	if a.s.hist.bytes != sum {
		t.Fatalf("after a forced restore the log counts %d bytes; the documents hold %d", a.s.hist.bytes, sum)
	}
	if err := a.s.Restore(bytes.NewReader(backup.Bytes())); err != nil {
		t.Fatal(err)
	}
	if a.s.hist.bytes != 0 || a.s.hist.live != 0 {
		t.Fatalf("after a snapshot install the log counts %d bytes in %d versions", a.s.hist.bytes, a.s.hist.live)
	}
}

func TestIdempotentReplayOfALargeDocumentWrite(t *testing.T) {
	a := newApplier(t)
	value := bigValue(20, 100)
	first := resultOf[Document](t, "put", a.doKey(DocPut{Name: "d", Value: value}, "key-1"))

	// The table keeps a reference, not the value.
	e := a.s.idem.get("key-1", a.now)
	if _, ok := e.result.Value.(*writtenDoc); !ok {
		t.Fatalf("the idempotency entry keeps a %T, want a *writtenDoc", e.result.Value)
	}

	replayed := func(what string) *Document {
		t.Helper()
		r := a.doKey(DocPut{Name: "d", Value: value}, "key-1")
		if !r.Replayed {
			t.Fatalf("%s: not replayed", what)
		}
		return resultOf[Document](t, what, r)
	}
	if got := replayed("replay at the same version"); !bytes.Equal(got.Value, first.Value) || got.Version != 1 || got.Index != first.Index {
		t.Fatalf("replay: %+v", got)
	}
	// Later versions are undone through the history.
	a.do(DocPatch{Name: "d", Patch: []byte(`{"k000001":null,"new":1,"k000002":"changed"}`)})
	a.do(DocDelete{Name: "d"})
	a.do(DocPut{Name: "d", Value: []byte(`{"other":true}`)})
	if got := replayed("replay three versions later"); !bytes.Equal(got.Value, first.Value) || got.Version != 1 {
		t.Fatalf("replay after later writes: value %s version %d, want the original", got.Value, got.Version)
	}
	// Snapshots keep the reference; a restored node replays the same way.
	var snap bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	if err := a.s.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	// The restore dropped the history: the value is no longer known, but
	// what the write did still is.
	if got := replayed("replay past the history"); got.Value != nil || got.Version != 1 || got.Index != first.Index {
		t.Fatalf("replay past the history: %+v, want version 1, index %d, no value", got, first.Index)
	}

	// Small values are kept whole.
	a.doKey(DocPut{Name: "small", Value: []byte(`{"a":1}`)}, "key-2")
	if _, ok := a.s.idem.get("key-2", a.now).result.Value.(*Document); !ok {
		t.Fatal("a small document's result is not kept whole")
	}
}
