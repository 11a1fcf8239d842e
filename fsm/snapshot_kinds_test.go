package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

// skRecords splits an encoded snapshot into its records' tags and bodies.
func skRecords(t *testing.T, data []byte) (tags []byte, bodies [][]byte) {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(snapshotMagic)) {
		t.Fatal("no magic")
	}
	r := bytes.NewReader(data[len(snapshotMagic):])
	for {
		tag, err := r.ReadByte()
		if err != nil {
			t.Fatalf("record %d: %v", len(tags), err)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil {
			t.Fatalf("record %d length: %v", len(tags), err)
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			t.Fatalf("record %d body: %v", len(tags), err)
		}
		tags, bodies = append(tags, tag), append(bodies, body)
		if tag == recEnd {
			if r.Len() != 0 {
				t.Fatalf("%d bytes after the end record", r.Len())
			}
			return tags, bodies
		}
	}
}

// skSnap is a snapshot at index 1 holding exactly the given records, which
// need not keep the rules: for tests of what Restore refuses.
func skSnap(parts ...snapshotPart) *Snapshot { return &Snapshot{applied: 1, parts: parts} }

func skCounters(cs ...*Counter) snapshotPart {
	return snapshotPart{sec: sectionByTag[recCounter], write: eachRecord(recCounter, cs, encodeCounter)}
}

func skQueues(qs ...queueCopy) snapshotPart {
	ptrs := make([]*queueCopy, len(qs))
	for i := range qs {
		ptrs[i] = &qs[i]
	}
	return snapshotPart{sec: sectionByTag[recQueue], write: eachRecord(recQueue, ptrs, encodeQueue)}
}

func skDocs(ds ...docCopy) snapshotPart {
	ptrs := make([]*docCopy, len(ds))
	for i := range ds {
		ptrs[i] = &ds[i]
	}
	return snapshotPart{sec: sectionByTag[recDoc], write: eachRecord(recDoc, ptrs, encodeDoc)}
}

func skTenants(ts ...tenantCopy) snapshotPart {
	return snapshotPart{sec: sectionByTag[recTenant], write: writeTenants(ts)}
}

func skEncode(t *testing.T, sn *Snapshot) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := sn.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// skBuild applies one command of every kind, with idempotency keys whose
// stored results cover every result type.
func skBuild(t *testing.T, a *applier) {
	t.Helper()
	must := func(r Result) Result {
		t.Helper()
		if r.Err != nil {
			t.Fatalf("setup: %v", r.Err)
		}
		return r
	}
	// Counters.
	must(a.do(CounterNext{ID: "orders", Count: 10}))
	must(a.do(CounterSet{ID: "odd", Value: ptr(int64(-7)), Increment: ptr(int64(5)), Offset: ptr(int64(2)), Monotonic: ptr(true)}))
	must(a.doKey(CounterNext{ID: "orders", Count: 2}, "k-mint"))                         // *Mint
	must(a.doKey(CounterAdd{ID: "gauge", Delta: -4, Default: ptr(int64(100))}, "k-add")) // *Counter
	a.doKey(CounterSet{ID: "gauge", IfValue: ptr(int64(1)), Value: ptr(int64(2))}, "k-conflict")

	// Queues: tags, reuse config, a gap left by a leave.
	must(a.do(QueueConfigure{ID: "zk", Min: ptr(int64(1)), Max: ptr(int64(255)), Reuse: ptr(true)}))
	for i, host := range []string{"zk1.example.com", "zk2.example.com", "zk3.example.com", "zk4.example.com"} {
		must(a.doKey(QueueJoin{ID: "zk", ProcessID: host, Tags: map[string]string{"rack": fmt.Sprint("r", i%2), "dc": "eu-1"}},
			"k-join-"+host)) // *Ticket
	}
	must(a.doKey(QueueLeave{ID: "zk", ProcessID: "zk2.example.com"}, "k-leave")) // *Leave
	must(a.doKey(QueueConfigure{ID: "zk", Max: ptr(int64(200))}, "k-config"))    // *Queue
	for _, p := range []string{"w1", "w2", "w3"} {
		must(a.do(QueueJoin{ID: "workers", ProcessID: p}))
	}
	must(a.do(QueueLeave{ID: "workers", ProcessID: "w3"})) // high-water mark above every member
	must(a.do(QueueConfigure{ID: "empty", Min: ptr(int64(0)), Max: ptr(int64(0))}))
	must(a.do(QueueConfigure{ID: "one", Max: ptr(int64(1))}))
	must(a.do(QueueJoin{ID: "one", ProcessID: "p"}))
	a.doKey(QueueJoin{ID: "one", ProcessID: "q"}, "k-full") // queue_full, remembered
	must(a.do(QueueJoin{ID: "gone", ProcessID: "p"}))
	must(a.doKey(QueueDelete{ID: "gone"}, "k-qdel")) // nil

	// Tenants: one spanning several records, small ones, ids with '/'.
	const batch = 2500
	for first := 0; first < 10_001; first += batch {
		p := ItemsAdd{}
		for i := first; i < min(first+batch, 10_001); i++ {
			p.Items = append(p.Items, Item{Tenant: "big", ID: fmt.Sprintf("item-%07d", i)})
		}
		must(a.do(p))
	}
	must(a.doKey(ItemsAdd{Items: []Item{{Tenant: "small", ID: "a/b"}, {Tenant: "small", ID: "c"}, {Tenant: "big", ID: "item-0000001"}}}, "k-items")) // *ItemsAdded

	// Documents: present, empty, deleted.
	must(a.doKey(DocPut{Name: "cfg", Value: []byte(`{"n":12345678901234567890123,"o":{"b":[1,{"c":null}],"a":"<&>"},"s":"é"}`)}, "k-put")) // *Document
	must(a.do(DocPatch{Name: "cfg", Patch: []byte(`{"o":{"x":true}}`)}))
	must(a.do(DocPut{Name: "empty", Value: []byte(`{}`)}))
	must(a.do(DocPut{Name: "gone", Value: []byte(`{"a":1}`)}))
	must(a.do(DocPatch{Name: "gone", Patch: []byte(`{"b":2}`)}))
	must(a.doKey(DocDelete{Name: "gone"}, "k-ddel")) // nil
	a.doKey(DocPut{Name: "cfg", Value: []byte(`{}`), Precondition: Precondition{IfNoneMatch: true}}, "k-412")

	// ACLs: bootstrapped, a token with rules, one created and deleted.
	must(a.doKey(skBoot, "k-acl-boot")) // *ACLToken
	must(a.do(ACLTokenCreate{Accessor: "app", SecretHash: HashSecret("s-app"), Description: "app",
		Rules: []ACLRule{{Resource: ResourceCounters, Prefix: "orders", Access: AccessWrite}, {Resource: ResourceAll, Access: AccessRead}}}))
	must(a.do(ACLTokenCreate{Accessor: "old", SecretHash: HashSecret("s-old")}))
	must(a.doKey(ACLTokenDelete{Accessor: "old"}, "k-acl-del"))
}

var skBoot = ACLBootstrap{Accessor: "boot", SecretHash: HashSecret("s-boot"), Description: "first"}

func TestSnapshotRoundTripEveryKind(t *testing.T) {
	a := newApplier(t)
	skBuild(t, a)
	snap := a.s.Snapshot()
	data := skEncode(t, snap)

	// The stream holds every kind of record; the big tenant spans several.
	tags, bodies := skRecords(t, data)
	perTag := map[byte]int{}
	bigRecords := 0
	for i, tag := range tags {
		perTag[tag]++
		if tag == recTenant {
			d := decoder{buf: bodies[i]}
			if d.string() == "big" {
				bigRecords++
				d.uvarint()
				if n := d.uvarint(); n > tenantChunk {
					t.Fatalf("tenant record with %d items, chunk is %d", n, tenantChunk)
				}
			}
		}
	}
	if want := (10_001 + tenantChunk - 1) / tenantChunk; bigRecords != want {
		t.Fatalf("tenant big spans %d records, want %d", bigRecords, want)
	}
	for tag, want := range map[byte]int{recHeader: 1, recCounter: 3, recQueue: 4, recTenant: bigRecords + 1, recDoc: 3, recIdem: 17, recACL: 3, recEnd: 1} {
		if perTag[tag] != want {
			t.Fatalf("%d records with tag %d, want %d (all: %v)", perTag[tag], tag, want, perTag)
		}
	}

	restored := New()
	restored.Apply(1, mustEncode(t, CounterNext{ID: "junk", Count: 1})) // replaced whole by the restore
	if err := restored.Restore(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !restored.Snapshot().Equal(snap) {
		t.Fatal("restored state differs from the snapshot")
	}
	if again := skEncode(t, restored.Snapshot()); !bytes.Equal(again, data) {
		t.Fatal("re-encoding the restored state gives other bytes")
	}
	if restored.AppliedIndex() != a.index {
		t.Fatalf("applied %d, want %d", restored.AppliedIndex(), a.index)
	}
	if _, _, err := restored.Counter("junk"); err != nil {
		t.Fatal(err)
	} else if c, _, _ := restored.Counter("junk"); c.Value != 0 {
		t.Fatal("restore kept an object the snapshot does not hold")
	}

	// Reads agree.
	b := &applier{t: t, s: restored, index: a.index, now: a.now}
	skSameReads(t, a.s, b.s)

	// And the two go on identically: replays of every remembered key, then
	// new writes of every kind.
	a.now += int64(1e9)
	b.now = a.now
	type keyed struct {
		p   Payload
		key string
	}
	cont := []keyed{
		{CounterNext{ID: "orders", Count: 2}, "k-mint"},
		{CounterAdd{ID: "gauge", Delta: -4, Default: ptr(int64(100))}, "k-add"},
		{CounterSet{ID: "gauge", IfValue: ptr(int64(1)), Value: ptr(int64(2))}, "k-conflict"},
		{QueueJoin{ID: "zk", ProcessID: "zk1.example.com", Tags: map[string]string{"rack": "r0", "dc": "eu-1"}}, "k-join-zk1.example.com"},
		{QueueJoin{ID: "zk", ProcessID: "zk2.example.com", Tags: map[string]string{"rack": "r1", "dc": "eu-1"}}, "k-join-zk2.example.com"},
		{QueueLeave{ID: "zk", ProcessID: "zk2.example.com"}, "k-leave"},
		{QueueConfigure{ID: "zk", Max: ptr(int64(200))}, "k-config"},
		{QueueJoin{ID: "one", ProcessID: "q"}, "k-full"},
		{QueueDelete{ID: "gone"}, "k-qdel"},
		{ItemsAdd{Items: []Item{{Tenant: "small", ID: "a/b"}, {Tenant: "small", ID: "c"}, {Tenant: "big", ID: "item-0000001"}}}, "k-items"},
		{DocPut{Name: "cfg", Value: []byte(`{"n":12345678901234567890123,"o":{"b":[1,{"c":null}],"a":"<&>"},"s":"é"}`)}, "k-put"},
		{DocDelete{Name: "gone"}, "k-ddel"},
		{DocPut{Name: "cfg", Value: []byte(`{}`), Precondition: Precondition{IfNoneMatch: true}}, "k-412"},
		{skBoot, "k-acl-boot"},
		{ACLTokenDelete{Accessor: "old"}, "k-acl-del"},
		{CounterNext{ID: "orders", Count: 1}, "k-mint"}, // mismatch

		{CounterNext{ID: "orders", Count: 3}, ""},
		{CounterNext{ID: "odd", Count: 2}, ""},
		{CounterAdd{ID: "odd", Delta: -1}, ""},
		{QueueJoin{ID: "zk", ProcessID: "zk5.example.com", Tags: map[string]string{"rack": "r9"}}, "k-new-join"},
		{QueueJoin{ID: "zk", ProcessID: "zk1.example.com"}, ""},
		{QueueJoin{ID: "workers", ProcessID: "w4"}, ""},
		{QueueLeave{ID: "workers", ProcessID: "w1"}, ""},
		{QueueJoin{ID: "workers", ProcessID: "w1"}, ""},
		{QueueJoin{ID: "empty", ProcessID: "e"}, ""},
		{QueueJoin{ID: "empty", ProcessID: "f"}, ""},
		{QueueJoin{ID: "gone", ProcessID: "p"}, ""},
		{QueueConfigure{ID: "zk", Min: ptr(int64(201))}, ""},
		{QueueJoin{ID: "orders", ProcessID: "p"}, ""},
		{ItemsAdd{Items: []Item{{Tenant: "big", ID: "item-0004096"}, {Tenant: "big", ID: "item-0010001"}, {Tenant: "new", ID: "x"}}}, ""},
		{DocPatch{Name: "cfg", Patch: []byte(`{"o":{"b":null,"y":98765432109876543210},"n":null}`)}, ""},
		{DocPut{Name: "gone", Value: []byte(`{"back":1}`)}, ""},
		{DocDelete{Name: "empty"}, ""},
		{DocPatch{Name: "empty", Patch: []byte(`{"z":1}`), Precondition: Precondition{IfMatch: ptr(uint64(0))}}, ""},
		{DocPut{Name: "cfg", Value: []byte(`{"v":1}`), Precondition: Precondition{IfMatch: ptr(uint64(2))}}, ""},
		{QueueDelete{ID: "zk"}, ""},
		{QueueJoin{ID: "zk", ProcessID: "zk1.example.com"}, ""},
		{ACLBootstrap{Accessor: "again", SecretHash: HashSecret("s-again")}, ""}, // conflict: bootstrapped
		{ACLTokenCreate{Accessor: "app2", SecretHash: HashSecret("s-app")}, ""},  // conflict: secret in use
		{ACLTokenDelete{Accessor: "old"}, ""},                                    // not found
		{ACLTokenDelete{Accessor: "app"}, ""},                                    // revoked
		{ACLTokenCreate{Accessor: "new", SecretHash: HashSecret("s-new"), Management: true}, ""},
	}
	for i, c := range cont {
		ra, rb := a.doKey(c.p, c.key), b.doKey(c.p, c.key)
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("command %d %T %+v (key %q):\noriginal %+v %+v\nrestored %+v %+v", i, c.p, c.p, c.key, ra, ra.Err, rb, rb.Err)
		}
		if i < 15 && !ra.Replayed {
			t.Fatalf("command %d (key %q) was not replayed: %+v", i, c.key, ra)
		}
	}
	skSameReads(t, a.s, b.s)
	if !a.s.Snapshot().Equal(b.s.Snapshot()) {
		t.Fatal("original and restored diverged")
	}
}

func mustEncode(t *testing.T, p Payload) []byte {
	t.Helper()
	data, err := Encode(Command{Payload: p, Time: 1})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// skSameReads compares what the read methods say about the objects the
// snapshot test writes.
func skSameReads(t *testing.T, x, y *State) {
	t.Helper()
	for _, id := range []string{"orders", "odd", "gauge", "zk", "workers", "empty", "one", "gone", "never"} {
		c1, _, e1 := x.Counter(id)
		c2, _, e2 := y.Counter(id)
		q1, _, f1 := x.Queue(id)
		q2, _, f2 := y.Queue(id)
		if !reflect.DeepEqual(c1, c2) || !reflect.DeepEqual(e1, e2) || !reflect.DeepEqual(q1, q2) || !reflect.DeepEqual(f1, f2) {
			t.Fatalf("%s reads differently:\n%+v %v %+v %v\n%+v %v %+v %v", id, c1, e1, q1, f1, c2, e2, q2, f2)
		}
		if q1 != nil {
			for _, m := range q1.Members {
				m1, _, _ := x.QueueMember(id, m.ProcessID)
				m2, _, _ := y.QueueMember(id, m.ProcessID)
				if !reflect.DeepEqual(m1, m2) {
					t.Fatalf("member %s/%s: %+v vs %+v", id, m.ProcessID, m1, m2)
				}
			}
		}
	}
	for _, tenant := range []string{"big", "small", "new", "never"} {
		t1, _ := x.TenantCount(tenant)
		t2, _ := y.TenantCount(tenant)
		if *t1 != *t2 {
			t.Fatalf("tenant %s: %+v vs %+v", tenant, t1, t2)
		}
	}
	for _, name := range []string{"cfg", "empty", "gone", "never"} {
		d1, _ := x.Document(name)
		d2, _ := y.Document(name)
		if !reflect.DeepEqual(d1, d2) {
			t.Fatalf("document %s: %+v %s vs %+v %s", name, d1, d1.Value, d2, d2.Value)
		}
	}
	t1, _ := x.ACLTokens()
	t2, _ := y.ACLTokens()
	if !reflect.DeepEqual(t1, t2) || x.ACLBootstrapped() != y.ACLBootstrapped() {
		t.Fatalf("tokens: %+v vs %+v", t1, t2)
	}
	for _, secret := range []string{"s-boot", "s-app", "s-old", "s-new", "never"} {
		k1, ok1 := x.ACLLookup(HashSecret(secret))
		k2, ok2 := y.ACLLookup(HashSecret(secret))
		if ok1 != ok2 || !reflect.DeepEqual(k1, k2) {
			t.Fatalf("secret %s: %+v %v vs %+v %v", secret, k1, ok1, k2, ok2)
		}
	}
	if x.AppliedIndex() != y.AppliedIndex() {
		t.Fatalf("applied %d vs %d", x.AppliedIndex(), y.AppliedIndex())
	}
}

func TestSnapshotTenantSizes(t *testing.T) {
	for _, n := range []int{1, tenantChunk - 1, tenantChunk, tenantChunk + 1, 3 * tenantChunk} {
		a := newApplier(t)
		p := ItemsAdd{}
		for i := range n {
			p.Items = append(p.Items, Item{Tenant: "t", ID: fmt.Sprintf("i/%d", i)})
		}
		a.do(p)
		data := skEncode(t, a.s.Snapshot())
		tags, _ := skRecords(t, data)
		records := bytes.Count(tags, []byte{recTenant})
		if want := (n + tenantChunk - 1) / tenantChunk; records != want {
			t.Fatalf("%d items: %d tenant records, want %d", n, records, want)
		}
		restored := New()
		if err := restored.Restore(bytes.NewReader(data)); err != nil {
			t.Fatalf("%d items: %v", n, err)
		}
		if tc, _ := restored.TenantCount("t"); tc.Count != int64(n) || tc.Index != 1 {
			t.Fatalf("%d items restored as %+v", n, tc)
		}
	}
}

// After a restore documents have no history: a watcher behind the restored
// version gets a reset, then changes again from the next write.
func TestSnapshotDocumentHistoryAfterRestore(t *testing.T) {
	a := newApplier(t)
	a.do(DocPut{Name: "d", Value: []byte(`{"a":1}`)})
	a.do(DocPut{Name: "d", Value: []byte(`{"a":2}`)})
	var buf bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	a.s = New()
	if err := a.s.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if reset, changes, _ := a.s.DocumentSince("d", 1); reset == nil || reset.Version != 2 || changes != nil {
		t.Fatalf("since 1 after restore: %+v %+v", reset, changes)
	}
	if reset, changes, _ := a.s.DocumentSince("d", 2); reset != nil || changes != nil {
		t.Fatalf("since 2 after restore: %+v %+v", reset, changes)
	}
	a.do(DocPut{Name: "d", Value: []byte(`{"a":3}`)})
	if reset, changes, _ := a.s.DocumentSince("d", 2); reset != nil || len(changes) != 1 || changes[0].Version != 3 {
		t.Fatalf("since 2 after a write: %+v %+v", reset, changes)
	}
	if reset, _, _ := a.s.DocumentSince("d", 1); reset == nil || reset.Version != 3 {
		t.Fatalf("since 1 after a write: %+v", reset)
	}
}

func TestRestoreRejectsBrokenKinds(t *testing.T) {
	mem := func(p string, c int64) *member { return &member{process: p, counter: c, token: 1, index: 1} }
	queueSnap := func(high int64, ms ...*member) *Snapshot {
		q := queue{cfg: DefaultQueueConfig(), token: uint64(len(ms)), high: high, index: 1, members: ms}
		return skSnap(skQueues(queueCopy{name: "q", q: q}))
	}
	docSnap := func(version uint64, fields map[string][]byte) *Snapshot {
		return skSnap(skDocs(docCopy{name: "d", d: document{version: version, index: 1, fields: fields}}))
	}
	tenantSnap := func(items ...string) *Snapshot {
		return skSnap(skTenants(tenantCopy{name: "t", index: 1, items: items}))
	}
	tests := []struct {
		name string
		snap *Snapshot
		ok   bool
	}{
		{"queue: valid control", queueSnap(3, mem("a", 1), mem("b", 3)), true},
		{"queue: duplicate counters", queueSnap(3, mem("a", 1), mem("b", 1)), false},
		{"queue: counters out of order", queueSnap(3, mem("a", 3), mem("b", 1)), false},
		{"queue: counter above high-water mark", queueSnap(3, mem("a", 1), mem("b", 5)), false},
		{"queue: members but no high-water mark", queueSnap(-1, mem("a", 1)), false},
		{"queue: process twice", queueSnap(3, mem("a", 1), mem("a", 2)), false},
		{"queue: token that would wrap", skSnap(skQueues(queueCopy{name: "q", q: queue{cfg: DefaultQueueConfig(), token: math.MaxUint64, high: -1}})), false},
		{"queue: bad process id", queueSnap(3, mem("a/b", 1)), false},
		{"queue: min above max", skSnap(skQueues(queueCopy{name: "q", q: queue{cfg: QueueConfig{Min: 5, Max: 4}, high: -1}})), false},
		{"queue: negative min", skSnap(skQueues(queueCopy{name: "q", q: queue{cfg: QueueConfig{Min: -1, Max: 4}, high: -1}})), false},
		{"queue: bad name", skSnap(skQueues(queueCopy{name: "a b", q: queue{cfg: DefaultQueueConfig(), high: -1}})), false},
		{"queue and counter with one name", skSnap(skCounters(&Counter{ID: "q", Increment: 1}),
			skQueues(queueCopy{name: "q", q: queue{cfg: DefaultQueueConfig(), high: -1}})), false},

		{"doc: valid control", docSnap(2, map[string][]byte{"a": []byte(`{"b":[1,2]}`), "n": []byte(`null`)}), true},
		{"doc: tombstone control", docSnap(2, nil), true},
		{"doc: field with invalid JSON", docSnap(2, map[string][]byte{"a": []byte(`1`), "b": []byte(`{`)}), false},
		{"doc: field with two values", docSnap(2, map[string][]byte{"a": []byte(`1 2`)}), false},
		{"doc: empty field", docSnap(2, map[string][]byte{"a": {}}), false},
		{"doc: present at version 0", docSnap(0, map[string][]byte{"a": []byte(`1`)}), false},
		{"doc: version that would wrap", docSnap(math.MaxUint64, map[string][]byte{"a": []byte(`1`)}), false},
		{"doc: highest version allowed", docSnap(1<<62, map[string][]byte{"a": []byte(`1`)}), true},
		{"doc: bad name", skSnap(skDocs(docCopy{name: "", d: document{version: 1}})), false},

		{"tenant: valid control", tenantSnap("a", "b/c"), true},
		{"tenant: item twice", tenantSnap("a", "a"), false},
		{"tenant: bad name", skSnap(skTenants(tenantCopy{name: "t/1", index: 1, items: []string{"a"}})), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			a.do(CounterNext{ID: "keep", Count: 7})
			a.do(DocPut{Name: "d", Value: []byte(`{"keep":true}`)})
			before := a.s.Snapshot()
			err := a.s.Restore(bytes.NewReader(skEncode(t, tt.snap)))
			if tt.ok {
				if err != nil {
					t.Fatalf("valid snapshot refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("restore accepted a snapshot that breaks the rules")
			}
			if !a.s.Snapshot().Equal(before) {
				t.Fatal("a refused restore changed the state")
			}
		})
	}
	t.Run("tenant: item twice across records", func(t *testing.T) {
		items := make([]string, tenantChunk+1)
		for i := range items {
			items[i] = fmt.Sprintf("i%05d", i)
		}
		items[tenantChunk] = items[0] // sorted into the first record and the second
		data := skEncode(t, tenantSnap(items...))
		if err := New().Restore(bytes.NewReader(data)); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Fatalf("restore: %v", err)
		}
	})
}
