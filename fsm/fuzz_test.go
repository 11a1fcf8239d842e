package fsm

// Fuzz targets for the two decoders that read bytes from disk or the network:
// log entries (decode) and snapshots (Restore).
//
//	go test -run='^$' -fuzz=FuzzDecode -fuzztime=20s ./fsm
//	go test -run='^$' -fuzz=FuzzSnapshotRestore -fuzztime=20s ./fsm

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"sort"
	"testing"
	"time"
)

const fuzzTime = int64(1_767_225_600_000_000_000)

func fuzzPtr[T any](v T) *T { return &v }

// fuzzCommands is one command of every kind, with and without optional
// fields and keys, and with extreme values.
func fuzzCommands() []Command {
	payloads := []Payload{
		CounterNext{ID: "a", Count: 1},
		CounterNext{ID: "ids:node-1@dc.x", Count: MaxMintCount},
		CounterAdd{ID: "a", Delta: -5},
		CounterAdd{ID: "b", Delta: math.MaxInt64, Default: fuzzPtr(int64(math.MinInt64))},
		CounterSet{ID: "a", Value: fuzzPtr(int64(7))},
		CounterSet{ID: "c", Value: fuzzPtr(int64(-1)), Increment: fuzzPtr(int64(MaxIncrement)), Offset: fuzzPtr(int64(math.MinInt64)),
			Monotonic: fuzzPtr(true), IfValue: fuzzPtr(int64(0))},
		CounterSet{ID: "c", Monotonic: fuzzPtr(false)},
		CounterDelete{ID: "a"},
		CounterDelete{ID: "c", Force: true},

		QueueJoin{ID: "zk", ProcessID: "zk-1.example.com:2888"},
		QueueJoin{ID: "zk", ProcessID: "p", Tags: map[string]string{"role": "observer", "zone": "", "k.1": "<&>"}},
		QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{"big": string(bytes.Repeat([]byte("v"), MaxTagValueLen))}},
		QueueLeave{ID: "zk", ProcessID: "p"},
		QueueConfigure{ID: "zk", Min: fuzzPtr(int64(1)), Max: fuzzPtr(int64(255)), Reuse: fuzzPtr(true)},
		QueueConfigure{ID: "zk", Max: fuzzPtr(int64(math.MaxInt64))},
		QueueConfigure{ID: "zk", Reuse: fuzzPtr(false)},
		QueueDelete{ID: "zk"},

		ItemsAdd{Items: []Item{{Tenant: "t1", ID: "item-1"}}},
		ItemsAdd{Items: []Item{{Tenant: "t1", ID: "a/b/c"}, {Tenant: "t1", ID: "a/b/c"}, {Tenant: "t-2", ID: "x:y@z"}}},

		DocPut{Name: "cfg", Value: []byte(`{"a":1,"b":{"x":[1,null,"s"]},"n":12345678901234567890123}`)},
		DocPut{Name: "cfg", Value: []byte(`{}`), Precondition: Precondition{IfNoneMatch: true}},
		DocPut{Name: "cfg", Value: []byte(` { "z" : "<&>\u2028" } `), Precondition: Precondition{IfMatch: fuzzPtr(uint64(3))}},
		DocPatch{Name: "cfg", Patch: []byte(`{"a":null,"b":{"x":null,"y":{"deep":true}},"c":[null]}`)},
		DocPatch{Name: "cfg", Patch: []byte(`{}`), Precondition: Precondition{IfMatch: fuzzPtr(uint64(0))}},
		DocPatch{Name: "new", Patch: []byte(`{"k":1.5e3}`), Precondition: Precondition{IfMatch: fuzzPtr(uint64(1 << 62))}},
		DocDelete{Name: "cfg"},
		DocDelete{Name: "cfg", Precondition: Precondition{IfMatch: fuzzPtr(uint64(7))}},

		RestoreBackup{Snapshot: fuzzSmallBackup()},
		RestoreBackup{Snapshot: fuzzSmallBackup(), Force: true, Advance: 1 << 40},
	}
	var out []Command
	for i, p := range payloads {
		out = append(out, Command{Payload: p, Time: fuzzTime + int64(i)})
		out = append(out, Command{Payload: p, Time: fuzzTime + int64(i), IdempotencyKey: "key-1", KeyWindow: 10 * time.Minute})
	}
	return out
}

// fuzzSmallBackup is the snapshot of a state holding one counter, small
// enough for the fuzzer to mutate inside a restore command.
func fuzzSmallBackup() []byte {
	data, err := Encode(Command{Payload: CounterNext{ID: "restored", Count: 5}, Time: fuzzTime})
	if err != nil {
		panic(err)
	}
	s := New()
	s.Apply(1, data)
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func FuzzDecode(f *testing.F) {
	for _, c := range fuzzCommands() {
		data, err := Encode(c)
		if err != nil {
			f.Fatalf("Encode(%+v): %v", c, err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{formatVersion})
	f.Add([]byte{formatVersion, byte(opIgnorable | 0x05), 0, 0, 0})
	f.Add([]byte{formatVersion, 0x7f, 0, 0, 0})
	f.Add([]byte{2, byte(OpCounterNext), 0, 0, 0, 1, 'a', 2})

	f.Fuzz(func(t *testing.T, data []byte) {
		dec, err := decode(data)
		if err != nil {
			var unknown errUnknownOp
			if errors.As(err, &unknown) && unknown.op&opIgnorable != 0 {
				// An op this build does not know but may skip: Apply moves
				// the index and changes nothing else.
				s := fuzzState(t)
				list, _ := s.Counters("")
				r := s.Apply(100, data)
				if r.Index != 100 || r.Value != nil || r.Err != nil || r.Replayed {
					t.Fatalf("ignorable op %d: Apply = %+v", unknown.op, r)
				}
				after, applied := s.Counters("")
				if applied != 100 || !propSameList(after, list) {
					t.Fatalf("ignorable op %d changed the state", unknown.op)
				}
				// Nothing else changed either: the same state moved to
				// index 100 by a non-command entry snapshots the same.
				same := fuzzState(t)
				same.ApplyBatch([]Entry{{Index: 100}})
				if !bytes.Equal(fuzzSnapshotBytes(t, s), fuzzSnapshotBytes(t, same)) {
					t.Fatalf("ignorable op %d changed the state", unknown.op)
				}
				return
			}
			// Anything else undecodable must stop the node, not be skipped.
			func() {
				defer func() {
					if recover() == nil {
						t.Fatalf("Apply accepted an entry decode rejects (%v)", err)
					}
				}()
				New().Apply(1, data)
			}()
			return
		}
		if dec.Payload == nil {
			t.Fatalf("decode succeeded without a payload: %x", data)
		}
		if (dec.IdempotencyKey == "") != (dec.fingerprint == fingerprint{}) {
			t.Fatalf("key %q with fingerprint %x", dec.IdempotencyKey, dec.fingerprint)
		}

		// Whatever decodes must apply without panicking, to an empty state
		// and to one holding every kind; Apply validates again and refuses
		// invalid input with the same error Validate gives.
		r := New().Apply(1, data)
		if r.Index != 1 || r.Replayed {
			t.Fatalf("Apply = %+v", r)
		}
		if r2 := fuzzState(t).Apply(1000, data); r2.Index != 1000 && !r2.Replayed {
			t.Fatalf("Apply to a populated state = %+v", r2)
		}
		verr := dec.Command.Validate()
		if verr != nil {
			var want, got *Error
			if !errors.As(verr, &want) {
				t.Fatalf("Validate returned a %T: %v", verr, verr)
			}
			// An invalid key is only checked by Command.Validate (before the
			// log), so Apply may accept such a payload.
			if CheckIdempotencyKey(dec.IdempotencyKey) == nil || dec.IdempotencyKey == "" {
				if !errors.As(r.Err, &got) || got.Code != want.Code || r.Value != nil {
					t.Fatalf("Validate says %s, Apply returned %+v", want.Code, r)
				}
			}
			return
		}

		// A valid command survives a round trip through Encode.
		enc, err := Encode(dec.Command)
		if err != nil {
			t.Fatalf("Encode of a valid decoded command: %v", err)
		}
		again, err := decode(enc)
		if err != nil {
			t.Fatalf("decode(Encode(decode(x))): %v", err)
		}
		if !fuzzSameCommand(again.Command, dec.Command) {
			t.Fatalf("round trip changed the command:\n got  %s\n want %s", propDescribe(again.Command), propDescribe(dec.Command))
		}
		if again.KeyWindow != dec.KeyWindow || again.Time != dec.Time || again.IdempotencyKey != dec.IdempotencyKey {
			t.Fatalf("round trip changed the header: %+v vs %+v", again.Command, dec.Command)
		}
		if enc2, err := Encode(again.Command); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("Encode is not stable: %x vs %x (%v)", enc2, enc, err)
		}
		// The fingerprint ignores the leader-stamped fields, so a retry of
		// the same request stamped at another time still matches.
		retry := again.Command
		retry.Time ^= 1 << 40
		retry.KeyWindow += time.Second
		renc, err := Encode(retry)
		if err != nil {
			t.Fatalf("Encode retry: %v", err)
		}
		rdec, err := decode(renc)
		if err != nil {
			t.Fatalf("decode retry: %v", err)
		}
		if rdec.fingerprint != again.fingerprint {
			t.Fatalf("a retry at another time has a different fingerprint")
		}
	})
}

// fuzzSameCommand compares commands field by field, following pointers.
func fuzzSameCommand(a, b Command) bool {
	if a.Time != b.Time || a.KeyWindow != b.KeyWindow || a.IdempotencyKey != b.IdempotencyKey {
		return false
	}
	eqInt := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqBool := func(x, y *bool) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	switch pa := a.Payload.(type) {
	case CounterNext:
		pb, ok := b.Payload.(CounterNext)
		return ok && pa == pb
	case CounterAdd:
		pb, ok := b.Payload.(CounterAdd)
		return ok && pa.ID == pb.ID && pa.Delta == pb.Delta && eqInt(pa.Default, pb.Default)
	case CounterSet:
		pb, ok := b.Payload.(CounterSet)
		return ok && pa.ID == pb.ID && eqInt(pa.Value, pb.Value) && eqInt(pa.Increment, pb.Increment) &&
			eqInt(pa.Offset, pb.Offset) && eqBool(pa.Monotonic, pb.Monotonic) && eqInt(pa.IfValue, pb.IfValue)
	case CounterDelete:
		pb, ok := b.Payload.(CounterDelete)
		return ok && pa == pb
	case QueueJoin:
		pb, ok := b.Payload.(QueueJoin)
		// Tags travel sorted; no tags decode as nil.
		return ok && pa.ID == pb.ID && pa.ProcessID == pb.ProcessID && maps.Equal(pa.Tags, pb.Tags)
	case QueueLeave:
		pb, ok := b.Payload.(QueueLeave)
		return ok && pa == pb
	case QueueConfigure:
		pb, ok := b.Payload.(QueueConfigure)
		return ok && pa.ID == pb.ID && eqInt(pa.Min, pb.Min) && eqInt(pa.Max, pb.Max) && eqBool(pa.Reuse, pb.Reuse)
	case QueueDelete:
		pb, ok := b.Payload.(QueueDelete)
		return ok && pa == pb
	case ItemsAdd:
		pb, ok := b.Payload.(ItemsAdd)
		return ok && slices.Equal(pa.Items, pb.Items)
	case DocPut:
		pb, ok := b.Payload.(DocPut)
		return ok && pa.Name == pb.Name && bytes.Equal(pa.Value, pb.Value) && fuzzSamePrecondition(pa.Precondition, pb.Precondition)
	case DocPatch:
		pb, ok := b.Payload.(DocPatch)
		return ok && pa.Name == pb.Name && bytes.Equal(pa.Patch, pb.Patch) && fuzzSamePrecondition(pa.Precondition, pb.Precondition)
	case DocDelete:
		pb, ok := b.Payload.(DocDelete)
		return ok && pa.Name == pb.Name && fuzzSamePrecondition(pa.Precondition, pb.Precondition)
	case RestoreBackup:
		pb, ok := b.Payload.(RestoreBackup)
		return ok && pa.Force == pb.Force && pa.Advance == pb.Advance && bytes.Equal(pa.Snapshot, pb.Snapshot)
	}
	return false
}

func fuzzSamePrecondition(a, b Precondition) bool {
	return (a.IfMatch == nil) == (b.IfMatch == nil) && (a.IfMatch == nil || *a.IfMatch == *b.IfMatch) && a.IfNoneMatch == b.IfNoneMatch
}

// fuzzState builds a state holding every object kind — counters of every
// shape, queues (with reuse, tags, a gap left by a leave), tenants, a
// document, a deleted document (a tombstone) — and remembered results of
// every kind: a counter, a mint, a ticket, a leave, a queue, an item count,
// a document, a restore, deletes (nil), refusals, and a conflict carrying
// the current counter.
func fuzzState(tb testing.TB) *State {
	tb.Helper()
	s := New()
	cmds := []Command{
		{Payload: CounterNext{ID: "a", Count: 3}, IdempotencyKey: "mint"},
		{Payload: CounterSet{ID: "m", Value: fuzzPtr(int64(math.MaxInt64 - 1)), Increment: fuzzPtr(int64(3)), Offset: fuzzPtr(int64(-7)), Monotonic: fuzzPtr(true)}, IdempotencyKey: "set"},
		{Payload: CounterAdd{ID: "n", Delta: -3, Default: fuzzPtr(int64(math.MinInt64 + 5))}, IdempotencyKey: "add"},
		{Payload: CounterNext{ID: "m", Count: 1}, IdempotencyKey: "overflow"},
		{Payload: CounterSet{ID: "a", Value: fuzzPtr(int64(1)), IfValue: fuzzPtr(int64(99))}, IdempotencyKey: "conflict"},
		{Payload: CounterAdd{ID: "gone", Delta: 1}},
		{Payload: CounterDelete{ID: "gone"}, IdempotencyKey: "delete"},
		{Payload: CounterAdd{ID: "short", Delta: 1}, IdempotencyKey: "short-window"},

		{Payload: QueueConfigure{ID: "zk", Min: fuzzPtr(int64(1)), Max: fuzzPtr(int64(3)), Reuse: fuzzPtr(true)}, IdempotencyKey: "configure"},
		{Payload: QueueJoin{ID: "zk", ProcessID: "p1", Tags: map[string]string{"role": "leader", "zone": ""}}, IdempotencyKey: "join"},
		{Payload: QueueJoin{ID: "zk", ProcessID: "p2"}},
		{Payload: QueueJoin{ID: "zk", ProcessID: "p3"}},
		{Payload: QueueJoin{ID: "zk", ProcessID: "p4"}, IdempotencyKey: "full"},
		{Payload: QueueLeave{ID: "zk", ProcessID: "p2"}, IdempotencyKey: "leave"},
		{Payload: QueueJoin{ID: "a", ProcessID: "p1"}, IdempotencyKey: "wrong-type"},
		{Payload: QueueJoin{ID: "q", ProcessID: "p1"}},
		{Payload: QueueJoin{ID: "q", ProcessID: "p2"}},
		{Payload: QueueLeave{ID: "q", ProcessID: "p1"}},
		{Payload: QueueConfigure{ID: "empty", Min: fuzzPtr(int64(0)), Max: fuzzPtr(int64(0))}},
		{Payload: ItemsAdd{Items: []Item{{Tenant: "t1", ID: "i1"}, {Tenant: "t1", ID: "i1"}, {Tenant: "t2", ID: "dir/i2"}}}, IdempotencyKey: "items"},
		{Payload: ItemsAdd{Items: []Item{{Tenant: "t1", ID: "i3"}}}},
		{Payload: DocPut{Name: "cfg", Value: []byte(`{"a":1,"b":{"x":[1,null]},"n":12345678901234567890123}`)}, IdempotencyKey: "put"},
		{Payload: DocPatch{Name: "cfg", Patch: []byte(`{"b":{"x":null,"y":"<&>"},"c":"s"}`)}, IdempotencyKey: "patch"},
		{Payload: DocPut{Name: "cfg", Value: []byte(`{}`), Precondition: Precondition{IfNoneMatch: true}}, IdempotencyKey: "precondition"},
		{Payload: DocPut{Name: "gone", Value: []byte(`{"k":true}`)}},
		{Payload: DocDelete{Name: "gone"}, IdempotencyKey: "doc-delete"},
		{Payload: DocPatch{Name: "blank", Patch: []byte(`{}`)}},
		{Payload: RestoreBackup{Snapshot: fuzzSmallBackup()}, IdempotencyKey: "restore"},
	}
	for i, c := range cmds {
		c.Time = fuzzTime + int64(i)*int64(time.Second)
		c.KeyWindow = 10 * time.Minute
		if c.IdempotencyKey == "short-window" {
			c.KeyWindow = time.Millisecond
		}
		data, err := Encode(c)
		if err != nil {
			tb.Fatalf("Encode(%s): %v", propDescribe(c), err)
		}
		if r := s.Apply(uint64(10+i), data); r.Err != nil && !fuzzRefusals[c.IdempotencyKey] {
			tb.Fatalf("%s: %v", propDescribe(c), r.Err)
		}
	}
	return s
}

// fuzzRefusals are the keys of fuzzState commands that a rule refuses.
var fuzzRefusals = map[string]bool{"overflow": true, "conflict": true, "full": true, "wrong-type": true, "precondition": true}

func fuzzSnapshotBytes(tb testing.TB, s *State) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		tb.Fatalf("WriteTo: %v", err)
	}
	return buf.Bytes()
}

func FuzzSnapshotRestore(f *testing.F) {
	full := fuzzSnapshotBytes(f, fuzzState(f))
	f.Add(full)
	f.Add(fuzzSnapshotBytes(f, New()))
	f.Add(full[:len(full)/2])
	f.Add(full[:len(full)-1])
	f.Add([]byte(snapshotMagic))
	f.Add([]byte{})
	// One snapshot per kind on its own, so the fuzzer mutates small records
	// of each.
	for _, c := range []Command{
		{Payload: CounterSet{ID: "c", Value: fuzzPtr(int64(-3)), Increment: fuzzPtr(int64(5)), Offset: fuzzPtr(int64(2)), Monotonic: fuzzPtr(true)}},
		{Payload: QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{"k": "v"}}},
		{Payload: ItemsAdd{Items: []Item{{Tenant: "t", ID: "i/1"}}}},
		{Payload: DocPut{Name: "d", Value: []byte(`{"a":{"b":[1,null]}}`)}},
		{Payload: DocDelete{Name: "d"}},
		{Payload: CounterNext{ID: "c", Count: 1}, IdempotencyKey: "k"},
	} {
		s := New()
		if _, ok := c.Payload.(DocDelete); ok { // a tombstone: deleted, version kept
			s.Apply(1, fuzzMustEncode(f, Command{Payload: DocPut{Name: "d", Value: []byte(`{"x":1}`)}}))
		}
		s.Apply(2, fuzzMustEncode(f, c))
		f.Add(fuzzSnapshotBytes(f, s))
	}
	// (A tenant spanning several records is left to the snapshot tests: a
	// seed of tenantChunk items makes the fuzzer spend its time minimizing.)

	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzState(t)
		before := fuzzSnapshotBytes(t, s)
		beforeList, beforeApplied := s.Counters("")

		if err := s.Restore(bytes.NewReader(data)); err != nil {
			if after := fuzzSnapshotBytes(t, s); !bytes.Equal(after, before) {
				t.Fatalf("failed Restore (%v) changed the state", err)
			}
			list, applied := s.Counters("")
			if applied != beforeApplied || !propSameList(list, beforeList) {
				t.Fatalf("failed Restore (%v) changed reads", err)
			}
			return
		}

		// A restored state reads, and snapshots again to something that
		// restores to the same state.
		snap := s.Snapshot()
		list, applied := s.Counters("")
		if applied != snap.AppliedIndex() || s.AppliedIndex() != applied {
			t.Fatalf("applied index: Counters %d, Snapshot %d, AppliedIndex %d", applied, snap.AppliedIndex(), s.AppliedIndex())
		}
		for _, c := range list {
			got, _, err := s.Counter(c.ID)
			if err != nil || *got != *c {
				t.Fatalf("Counter(%q) = %+v, %v; listed as %+v", c.ID, got, err, c)
			}
		}
		var buf bytes.Buffer
		if _, err := snap.WriteTo(&buf); err != nil {
			t.Fatalf("WriteTo after Restore: %v", err)
		}
		again := New()
		if err := again.Restore(&buf); err != nil {
			t.Fatalf("restoring a re-written snapshot: %v", err)
		}
		if !again.Snapshot().Equal(snap) {
			t.Fatalf("snapshot round trip after Restore changed the state")
		}
		fuzzUseRestored(t, s)
	})
}

func fuzzMustEncode(tb testing.TB, c Command) []byte {
	tb.Helper()
	data, err := Encode(c)
	if err != nil {
		tb.Fatalf("Encode(%s): %v", propDescribe(c), err)
	}
	return data
}

// fuzzUseRestored reads and writes every object a restored state holds: a
// snapshot that Restore accepts must never make a later read or Apply
// panic or break the state's rules.
func fuzzUseRestored(t *testing.T, s *State) {
	t.Helper()
	// The names, from the state itself (this test lives in the package).
	var queues, counters, tenants, docs []string
	for name, o := range s.objects {
		switch o.kind() {
		case KindQueue:
			queues = append(queues, name)
		case KindCounter:
			counters = append(counters, name)
		}
	}
	for name := range s.tenants {
		tenants = append(tenants, name)
	}
	for name := range s.docs {
		docs = append(docs, name)
	}
	sort.Strings(queues)
	sort.Strings(counters)
	sort.Strings(tenants)
	sort.Strings(docs)

	index := s.AppliedIndex()
	apply := func(p Payload) Result {
		t.Helper()
		index++
		return s.Apply(index, fuzzMustEncode(t, Command{Payload: p, Time: fuzzTime}))
	}
	for _, name := range counters {
		apply(CounterNext{ID: name, Count: 2})
		apply(CounterAdd{ID: name, Delta: -1})
	}
	for _, name := range queues {
		q, _, err := s.Queue(name)
		if err != nil {
			t.Fatalf("Queue(%q): %v", name, err)
		}
		for i, m := range q.Members {
			if m.Position != i || (i > 0 && m.Counter <= q.Members[i-1].Counter) {
				t.Fatalf("Queue(%q): member %d is %+v", name, i, m)
			}
			if got, _, err := s.QueueMember(name, m.ProcessID); err != nil || got.Counter != m.Counter {
				t.Fatalf("QueueMember(%q, %q) = %+v, %v", name, m.ProcessID, got, err)
			}
		}
		r := apply(QueueJoin{ID: name, ProcessID: "fuzz-new"})
		if tk, ok := r.Value.(*Ticket); ok {
			for _, m := range q.Members {
				if m.Counter == tk.Counter && m.ProcessID != tk.ProcessID {
					t.Fatalf("join after restore of %q got counter %d, which %q holds", name, tk.Counter, m.ProcessID)
				}
			}
		} else if codeOf(r.Err) != CodeQueueFull {
			t.Fatalf("join after restore of %q: %+v", name, r)
		}
		if len(q.Members) > 0 {
			apply(QueueLeave{ID: name, ProcessID: q.Members[0].ProcessID})
		}
		apply(QueueConfigure{ID: name, Reuse: fuzzPtr(true)})
		apply(QueueJoin{ID: name, ProcessID: "fuzz-reuse"})
	}
	for _, name := range tenants {
		before, _ := s.TenantCount(name)
		r := apply(ItemsAdd{Items: []Item{{Tenant: name, ID: "fuzz-item"}}})
		after, _ := s.TenantCount(name)
		if added, ok := r.Value.(*ItemsAdded); !ok || after.Count != before.Count+added.Added {
			t.Fatalf("items after restore of %q: %+v, count %d -> %d", name, r, before.Count, after.Count)
		}
	}
	for _, name := range docs {
		d, _ := s.Document(name)
		if d.Value != nil && !json.Valid(d.Value) {
			t.Fatalf("Document(%q) = %q, not JSON", name, d.Value)
		}
		if d.Version > 0 {
			s.DocumentSince(name, d.Version-1)
		}
		s.DocumentSince(name, 0)
		for _, k := range []string{"a", "b", "x", "fuzz"} {
			apply(DocPatch{Name: name, Patch: []byte(`{"` + k + `":{"x":null,"y":1}}`)})
		}
		r := apply(DocPatch{Name: name, Patch: []byte(`{"fuzz":null}`)})
		if nd, ok := r.Value.(*Document); ok && (nd.Version <= d.Version || !json.Valid(nd.Value)) {
			t.Fatalf("patch after restore of %q: version %d -> %d, value %q", name, d.Version, nd.Version, nd.Value)
		}
		_, changes, _ := s.DocumentSince(name, d.Version)
		for _, ch := range changes {
			for _, k := range ch.Keys {
				if k.Old != nil && !json.Valid(k.Old) || k.New != nil && !json.Valid(k.New) {
					t.Fatalf("change after restore of %q: %+v", name, k)
				}
			}
		}
		apply(DocDelete{Name: name})
	}
	// Whatever happened, the state still snapshots and restores.
	var buf bytes.Buffer
	if _, err := s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatalf("WriteTo after using the restored state: %v", err)
	}
	if err := New().Restore(&buf); err != nil {
		t.Fatalf("a restored state, used, no longer restores: %v", err)
	}
}
