package fsm

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// backupOf is the snapshot stream of a's state, as a backup carries it.
func backupOf(t *testing.T, a *applier) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// stateBytes is the snapshot of s without its applied index, to tell
// whether anything but the index moved.
func stateBytes(t *testing.T, s *State) []byte {
	t.Helper()
	snap := s.Snapshot()
	snap.applied = 0
	var buf bytes.Buffer
	if _, err := snap.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mustOK(t *testing.T, r Result) Result {
	t.Helper()
	if r.Err != nil {
		t.Fatalf("unexpected refusal: %v", r.Err)
	}
	return r
}

func (a *applier) restore(backup []byte, force bool, advance uint64) Result {
	a.t.Helper()
	return a.do(RestoreBackup{Snapshot: backup, Force: force, Advance: advance})
}

func (a *applier) queue(id string) *Queue {
	a.t.Helper()
	q, _, err := a.s.Queue(id)
	if err != nil {
		a.t.Fatalf("queue %s: %v", id, err)
	}
	return q
}

func processes(q *Queue) []string {
	var out []string
	for _, m := range q.Members {
		out = append(out, m.ProcessID)
	}
	return out
}

func TestRestoreMergesCounters(t *testing.T) {
	bak := newApplier(t)
	bak.do(CounterNext{ID: "behind", Count: 5}) // current is ahead
	bak.do(CounterNext{ID: "ahead", Count: 50}) // backup is ahead
	bak.do(CounterNext{ID: "only-backup", Count: 7})
	bak.do(CounterSet{ID: "behind", Increment: ptr(int64(10)), Offset: ptr(int64(3))})
	bak.do(CounterNext{ID: "same", Count: 4})
	bak.do(CounterNext{ID: "was-monotonic", Count: 1})
	backup := backupOf(t, bak)

	cur := newApplier(t)
	cur.do(CounterNext{ID: "behind", Count: 20})
	cur.do(CounterNext{ID: "ahead", Count: 2})
	cur.do(CounterNext{ID: "only-current", Count: 9})
	cur.do(CounterNext{ID: "same", Count: 4})
	cur.do(CounterSet{ID: "was-monotonic", Value: ptr(int64(1)), Monotonic: ptr(true)})
	sameIndex := cur.get("same").Index

	r := mustOK(t, cur.restore(backup, false, 0))
	res := r.Value.(*Restored)
	if res.Counters != 5 || res.Forced || res.Advanced != 0 || res.BackupIndex != bak.index || res.Index != r.Index {
		t.Fatalf("result %+v (restore at %d, backup at %d)", res, r.Index, bak.index)
	}
	for _, tc := range []struct {
		id        string
		value     int64
		increment int64
		offset    int64
		monotonic bool
		index     uint64
	}{
		{"behind", 20, 10, 3, false, r.Index},    // larger current value, backup's increment and offset
		{"ahead", 50, 1, 0, false, r.Index},      // larger backed-up value
		{"only-backup", 7, 1, 0, false, r.Index}, // installed
		{"only-current", 9, 1, 0, false, 3},      // kept: dropping it would let 1…9 repeat
		{"same", 4, 1, 0, false, sameIndex},      // unchanged, so not written
		{"was-monotonic", 1, 1, 0, true, 5},      // the one-way switch stays on: nothing changed
	} {
		c := cur.get(tc.id)
		if c.Value != tc.value || c.Increment != tc.increment || c.Offset != tc.offset || c.Monotonic != tc.monotonic || c.Index != tc.index {
			t.Errorf("%s: got %+v, want value %d increment %d offset %d monotonic %v index %d",
				tc.id, *c, tc.value, tc.increment, tc.offset, tc.monotonic, tc.index)
		}
	}
	// Minting continues above both histories.
	if m := mustOK(t, cur.do(CounterNext{ID: "behind", Count: 1})).Value.(*Mint); m.First != 23 {
		t.Errorf("next of behind after the restore: %+v, want 23", m)
	}
}

func TestRestoreMergesQueues(t *testing.T) {
	bak := newApplier(t)
	bak.do(QueueJoin{ID: "same", ProcessID: "s"}) // at the same index as in cur
	for _, p := range []string{"a", "b", "c", "d", "e"} {
		bak.do(QueueJoin{ID: "busy", ProcessID: p})
	}
	bak.do(QueueLeave{ID: "busy", ProcessID: "a"})
	bak.do(QueueLeave{ID: "busy", ProcessID: "b"}) // token 7, high 5, members c d e
	bak.do(QueueJoin{ID: "quiet", ProcessID: "x"}) // token 1, high 1
	bak.do(QueueConfigure{ID: "only-backup", Min: ptr(int64(1)), Max: ptr(int64(255)), Reuse: ptr(true)})
	backup := backupOf(t, bak)

	cur := newApplier(t)
	cur.do(QueueJoin{ID: "same", ProcessID: "s"})
	cur.do(QueueJoin{ID: "busy", ProcessID: "z"}) // token 1, high 1
	for _, p := range []string{"x", "y", "w"} {
		cur.do(QueueJoin{ID: "quiet", ProcessID: p}) // token 3, high 3
	}
	cur.do(QueueJoin{ID: "only-current", ProcessID: "k"})
	sameIndex := cur.queue("same").Index

	var changed []Key
	cur.s.onChange = func(keys []Key) { changed = append(changed, keys...) }
	r := mustOK(t, cur.restore(backup, false, 0))
	if res := r.Value.(*Restored); res.Queues != 4 || res.Counters != 0 {
		t.Fatalf("result %+v", res)
	}
	restoreChanged := slices.Clone(changed)

	busy := cur.queue("busy")
	if !slices.Equal(processes(busy), []string{"c", "d", "e"}) || busy.FencingToken != 7 || busy.Index != r.Index {
		t.Errorf("busy: members %v token %d index %d; want the backup's c d e, token 7, index %d", processes(busy), busy.FencingToken, busy.Index, r.Index)
	}
	quiet := cur.queue("quiet")
	// Members from the backup; the current token was larger and the
	// membership changed, so the token moves on past it.
	if !slices.Equal(processes(quiet), []string{"x"}) || quiet.FencingToken != 4 {
		t.Errorf("quiet: members %v token %d; want x, token 4", processes(quiet), quiet.FencingToken)
	}
	if same := cur.queue("same"); same.Index != sameIndex || same.FencingToken != 1 {
		t.Errorf("an identical queue was rewritten: %+v", same)
	}
	if q := cur.queue("only-backup"); q.Config != (QueueConfig{Min: 1, Max: 255, Reuse: true}) {
		t.Errorf("only-backup config %+v", q.Config)
	}
	if q := cur.queue("only-current"); !slices.Equal(processes(q), []string{"k"}) {
		t.Errorf("only-current was not kept: %+v", q)
	}
	// High-water marks continue from the larger: busy had handed out 5 in
	// the backup, quiet 3 here.
	for id, want := range map[string]int64{"busy": 6, "quiet": 4} {
		tk := mustOK(t, cur.do(QueueJoin{ID: id, ProcessID: "new"})).Value.(*Ticket)
		if tk.Counter != want {
			t.Errorf("join %s after the restore got counter %d, want %d", id, tk.Counter, want)
		}
	}
	want := map[Key]bool{{KindQueue, "busy"}: true, {KindQueue, "quiet"}: true, {KindQueue, "only-backup"}: true}
	for _, k := range restoreChanged {
		if !want[k] {
			t.Errorf("restore reported %v changed", k)
		}
		delete(want, k)
	}
	if len(want) > 0 {
		t.Errorf("restore did not report %v changed (reported %v)", want, restoreChanged)
	}
}

func TestRestoreMergesDocuments(t *testing.T) {
	bak := newApplier(t)
	put := func(a *applier, name, value string) {
		a.t.Helper()
		mustOK(a.t, a.do(DocPut{Name: name, Value: []byte(value)}))
	}
	for i := range 5 {
		put(bak, "ahead", `{"v":`+string(rune('0'+i))+`}`) // version 5 in the backup
	}
	put(bak, "behind", `{"k":"backup"}`) // version 1
	put(bak, "equal", `{"k":1}`)
	put(bak, "deleted-in-backup", `{"k":1}`)
	bak.do(DocDelete{Name: "deleted-in-backup"}) // tombstone at version 2
	put(bak, "deleted-now", `{"k":"backup"}`)
	put(bak, "only-backup", `{"b":true}`)
	backup := backupOf(t, bak)

	cur := newApplier(t)
	put(cur, "ahead", `{"v":"old"}`)
	for i := range 3 {
		put(cur, "behind", `{"k":`+string(rune('0'+i))+`}`) // version 3
	}
	put(cur, "equal", `{"k":1}`)
	put(cur, "equal", `{"k":1}`) // version 2, same value as the backup's version 1
	for range 3 {
		put(cur, "deleted-in-backup", `{"k":2}`) // version 3
	}
	put(cur, "deleted-now", `{"k":"current"}`)
	put(cur, "deleted-now", `{"k":"current"}`)
	cur.do(DocDelete{Name: "deleted-now"}) // tombstone at version 3
	put(cur, "only-current", `{"c":true}`)
	equal, _ := cur.s.Document("equal")

	r := mustOK(t, cur.restore(backup, false, 0))
	if res := r.Value.(*Restored); res.Documents != 6 {
		t.Fatalf("result %+v", res)
	}
	for _, tc := range []struct {
		name    string
		version uint64
		value   string // "" for absent
		index   uint64
	}{
		{"ahead", 5, `{"v":4}`, r.Index},              // backup ahead: taken as it is
		{"behind", 4, `{"k":"backup"}`, r.Index},      // backup behind, different value: a new version
		{"equal", 2, `{"k":1}`, equal.Index},          // same value: nothing changes
		{"deleted-in-backup", 4, "", r.Index},         // the backup's delete is restored as a new version
		{"deleted-now", 4, `{"k":"backup"}`, r.Index}, // re-created from the backup, versions continue
		{"only-backup", 1, `{"b":true}`, r.Index},
		{"only-current", 1, `{"c":true}`, 13},
	} {
		d, _ := cur.s.Document(tc.name)
		if d.Version != tc.version || string(d.Value) != tc.value || d.Index != tc.index {
			t.Errorf("%s: version %d value %s index %d; want version %d value %s index %d",
				tc.name, d.Version, d.Value, d.Index, tc.version, tc.value, tc.index)
		}
	}

	// A watcher that had seen the current version gets the restore as a
	// change where the version moved on by one, and a reset where it
	// jumped (the versions in between have no history here).
	reset, changes, _ := cur.s.DocumentSince("behind", 3)
	if reset != nil || len(changes) != 1 || changes[0].Version != 4 || changes[0].Index != r.Index ||
		len(changes[0].Keys) != 1 || changes[0].Keys[0].Type != Modified || string(changes[0].Keys[0].New) != `"backup"` {
		t.Errorf("watch of behind from 3: reset %+v changes %+v", reset, changes)
	}
	reset, changes, _ = cur.s.DocumentSince("ahead", 1)
	if reset == nil || reset.Version != 5 || string(reset.Value) != `{"v":4}` || changes != nil {
		t.Errorf("watch of ahead from 1: reset %+v changes %+v", reset, changes)
	}
	reset, changes, _ = cur.s.DocumentSince("deleted-in-backup", 3)
	if reset != nil || len(changes) != 1 || changes[0].Keys[0].Type != Removed {
		t.Errorf("watch of deleted-in-backup from 3: reset %+v changes %+v", reset, changes)
	}
	// Versions never repeat: the next write continues above both.
	if d := mustOK(t, cur.do(DocPatch{Name: "ahead", Patch: []byte(`{"w":1}`)})).Value.(*Document); d.Version != 6 {
		t.Errorf("write after the restore got version %d, want 6", d.Version)
	}
}

func TestRestoreTenantsComeFromTheBackup(t *testing.T) {
	bak := newApplier(t)
	bak.do(ItemsAdd{Items: []Item{{Tenant: "t1", ID: "a"}, {Tenant: "t1", ID: "b"}, {Tenant: "t2", ID: "x"}}})
	backup := backupOf(t, bak)

	cur := newApplier(t)
	cur.do(ItemsAdd{Items: []Item{{Tenant: "t1", ID: "c"}, {Tenant: "t3", ID: "y"}}})
	cur.do(ItemsAdd{Items: []Item{{Tenant: "t2", ID: "x"}}})
	t2Index := cur.index
	r := mustOK(t, cur.restore(backup, false, 0))
	if res := r.Value.(*Restored); res.Tenants != 2 {
		t.Fatalf("result %+v", res)
	}
	for _, tc := range []struct {
		tenant string
		count  int64
		index  uint64
	}{{"t1", 2, r.Index}, {"t2", 1, t2Index}, {"t3", 1, 1}} {
		if n, _ := cur.s.TenantCount(tc.tenant); n.Count != tc.count || n.Index != tc.index {
			t.Errorf("%s: %+v, want count %d index %d", tc.tenant, n, tc.count, tc.index)
		}
	}
	if r := mustOK(t, cur.do(ItemsAdd{Items: []Item{{Tenant: "t1", ID: "a"}, {Tenant: "t1", ID: "c"}}})).Value.(*ItemsAdded); r.Added != 1 || r.Duplicates != 1 {
		t.Errorf("items after the restore: %+v; want a known (from the backup) and c new", r)
	}
}

func TestRestoreUnitesIdempotencyKeys(t *testing.T) {
	bak := newApplier(t)
	bak.doKey(CounterNext{ID: "c", Count: 1}, "before-backup")
	bak.doKey(CounterNext{ID: "c", Count: 2}, "in-both")
	bak.now -= int64(time.Hour) // remembered, but expired by the time of the restore
	bak.doKey(CounterNext{ID: "old", Count: 1}, "expired")
	bak.now += int64(time.Hour)
	backup := backupOf(t, bak)

	for _, force := range []bool{false, true} {
		cur := newApplier(t)
		cur.doKey(CounterNext{ID: "c", Count: 10}, "after-backup")
		cur.doKey(CounterNext{ID: "c", Count: 2}, "in-both")
		mustOK(t, cur.restore(backup, force, 0))

		// A retry of a write acknowledged after the backup replays.
		r := cur.doKey(CounterNext{ID: "c", Count: 10}, "after-backup")
		if m, ok := r.Value.(*Mint); !r.Replayed || !ok || m.First != 1 {
			t.Errorf("force=%v: retry of after-backup: %+v", force, r)
		}
		// The backup's results come back for keys this state never saw…
		r = cur.doKey(CounterNext{ID: "c", Count: 1}, "before-backup")
		if m, ok := r.Value.(*Mint); !r.Replayed || !ok || m.First != 1 || m.Index != 1 {
			t.Errorf("force=%v: retry of before-backup: %+v", force, r)
		}
		// …the current result wins for a key both hold…
		r = cur.doKey(CounterNext{ID: "c", Count: 2}, "in-both")
		if m, ok := r.Value.(*Mint); !r.Replayed || !ok || m.First != 11 {
			t.Errorf("force=%v: retry of in-both: %+v", force, r)
		}
		// …and an expired one is not brought back.
		if _, ok := cur.s.idem.byKey["expired"]; ok {
			t.Errorf("force=%v: the backup's expired key was restored", force)
		}
	}
}

func TestRestoreAdvance(t *testing.T) {
	bak := newApplier(t)
	bak.do(CounterNext{ID: "ids", Count: 100})
	bak.do(CounterSet{ID: "odd", Increment: ptr(int64(2)), Offset: ptr(int64(1)), Value: ptr(int64(9))})
	bak.do(QueueJoin{ID: "q", ProcessID: "p"})
	backup := backupOf(t, bak)

	cur := newApplier(t) // an empty cluster
	cur.do(CounterNext{ID: "here", Count: 3})
	r := mustOK(t, cur.restore(backup, false, 1000))
	if res := r.Value.(*Restored); res.Advanced != 1000 {
		t.Fatalf("result %+v", res)
	}
	for id, want := range map[string]int64{"ids": 1100, "odd": 1009, "here": 1003} {
		if c := cur.get(id); c.Value != want || c.Index != r.Index {
			t.Errorf("%s after advance: %+v, want value %d at index %d", id, c, want, r.Index)
		}
	}
	if m := mustOK(t, cur.do(CounterNext{ID: "odd", Count: 1})).Value.(*Mint); m.First != 1011 {
		t.Errorf("odd next after advance: %+v", m)
	}
	if tk := mustOK(t, cur.do(QueueJoin{ID: "q", ProcessID: "new"})).Value.(*Ticket); tk.Counter != 1002 {
		t.Errorf("queue join after advance got counter %d, want 1002", tk.Counter)
	}
}

// TestRestoreRefusalsChangeNothing covers every rule a restore can break:
// each is refused whole, and the state (and the idempotency key, for input
// errors) stays as it was.
func TestRestoreRefusalsChangeNothing(t *testing.T) {
	bak := newApplier(t)
	bak.do(CounterSet{ID: "big", Value: ptr(int64(math.MaxInt64 - 10))})
	bak.do(QueueJoin{ID: "shared", ProcessID: "p"})
	bak.do(CounterNext{ID: "other", Count: 1})
	backup := backupOf(t, bak)

	emptyBackup := backupOf(t, newApplier(t))
	queueHigh := newApplier(t)
	queueHigh.do(QueueConfigure{ID: "q", Min: ptr(int64(math.MaxInt64 - 1))})
	queueHigh.do(QueueJoin{ID: "q", ProcessID: "p"})
	highBackup := backupOf(t, queueHigh)

	for _, tc := range []struct {
		name    string
		payload RestoreBackup
		code    Code
	}{
		{"counter overflow", RestoreBackup{Snapshot: backup, Force: true, Advance: 11}, CodeOverflow},
		{"queue overflow", RestoreBackup{Snapshot: highBackup, Advance: 2}, CodeOverflow},
		{"current counter overflow", RestoreBackup{Snapshot: emptyBackup, Advance: math.MaxInt64 - 1}, CodeOverflow},
		{"kinds differ", RestoreBackup{Snapshot: backup}, CodeWrongType},
		{"advance out of range", RestoreBackup{Snapshot: backup, Force: true, Advance: math.MaxInt64 + 1}, CodeBadRequest},
		{"not a snapshot", RestoreBackup{Snapshot: []byte("hello")}, CodeBadRequest},
		{"truncated", RestoreBackup{Snapshot: backup[:len(backup)-3]}, CodeBadRequest},
		{"empty", RestoreBackup{}, CodeBadRequest},
	} {
		cur := newApplier(t)
		cur.do(CounterNext{ID: "shared", Count: 5})
		cur.do(QueueJoin{ID: "kept", ProcessID: "p"})
		before := stateBytes(t, cur.s)
		// Bypass Encode's validation, as a command already in the log
		// would, so Apply's own checks are what is tested.
		cur.index++
		r := cur.s.Apply(cur.index, Command{Payload: tc.payload, IdempotencyKey: "k", Time: cur.now, KeyWindow: time.Minute}.encode())
		if codeOf(r.Err) != tc.code || r.Value != nil {
			t.Errorf("%s: got %+v, want %s", tc.name, r, tc.code)
			continue
		}
		if !strings.Contains(r.Err.Error(), " ") {
			t.Errorf("%s: error %q is not a sentence", tc.name, r.Err)
		}
		if !bytes.Equal(stateBytes(t, cur.s), before) {
			// The key of a rule refusal is remembered; nothing else may move.
			if isInputError(r.Err) || !onlyKeyAdded(t, cur.s, before, "k") {
				t.Errorf("%s: the refused restore changed the state", tc.name)
			}
		}
		_, keyUsed := cur.s.idem.byKey["k"]
		if keyUsed == isInputError(r.Err) {
			t.Errorf("%s: key used = %v for a %s", tc.name, keyUsed, tc.code)
		}
		if tc.code == CodeBadRequest {
			if err := (Command{Payload: tc.payload}).Validate(); codeOf(err) != CodeBadRequest {
				t.Errorf("%s: Validate let it through to the log: %v", tc.name, err)
			}
		}
	}
}

// onlyKeyAdded reports whether s differs from before only by the stored
// result of key.
func onlyKeyAdded(t *testing.T, s *State, before []byte, key string) bool {
	t.Helper()
	e := s.idem.byKey[key]
	if e == nil {
		return false
	}
	delete(s.idem.byKey, key)
	defer func() { s.idem.byKey[key] = e }()
	return bytes.Equal(stateBytes(t, s), before)
}

func TestRestoreForceIsVerbatim(t *testing.T) {
	bak := newApplier(t)
	bak.do(CounterNext{ID: "ids", Count: 5})
	bak.do(QueueJoin{ID: "q", ProcessID: "a"})
	bak.do(DocPut{Name: "d", Value: []byte(`{"v":"backup"}`)})
	bak.do(DocPut{Name: "same-version", Value: []byte(`{"v":"backup"}`)})
	bak.do(ItemsAdd{Items: []Item{{Tenant: "t", ID: "i"}}})
	bak.do(CounterNext{ID: "was-a-queue", Count: 1})
	backup := backupOf(t, bak)

	cur := newApplier(t)
	cur.do(CounterSet{ID: "ids", Value: ptr(int64(50)), Monotonic: ptr(true)})
	cur.do(CounterNext{ID: "dropped", Count: 3})
	cur.do(QueueJoin{ID: "q", ProcessID: "b"})
	cur.do(QueueJoin{ID: "q", ProcessID: "c"})
	cur.do(QueueJoin{ID: "was-a-queue", ProcessID: "x"})
	for range 3 {
		cur.do(DocPut{Name: "d", Value: []byte(`{"v":"current"}`)})
	}
	cur.do(DocPut{Name: "same-version", Value: []byte(`{"v":"current"}`)})
	cur.do(DocPut{Name: "dropped-doc", Value: []byte(`{}`)})
	cur.do(ItemsAdd{Items: []Item{{Tenant: "t", ID: "j"}, {Tenant: "u", ID: "k"}}})
	var changed []Key
	cur.s.onChange = func(keys []Key) { changed = append(changed, keys...) }

	r := mustOK(t, cur.restore(backup, true, 0))
	if res := r.Value.(*Restored); !res.Forced {
		t.Fatalf("result %+v", res)
	}
	if c := cur.get("ids"); c.Value != 5 || c.Monotonic || c.Index != r.Index {
		t.Errorf("ids: %+v; want the backup's 5, not monotonic", c)
	}
	if list, _ := cur.s.Counters(""); len(list) != 2 {
		t.Errorf("counters after a forced restore: %+v; want ids and was-a-queue only", list)
	}
	if q := cur.queue("q"); !slices.Equal(processes(q), []string{"a"}) || q.FencingToken != 1 {
		t.Errorf("q: %+v", q)
	}
	if d, _ := cur.s.Document("d"); d.Version != 1 || string(d.Value) != `{"v":"backup"}` {
		t.Errorf("d: %+v %s; want the backup's version 1", d, d.Value)
	}
	// The same version with another value becomes a new version: a
	// watcher at version 1 must not take it for the document it has.
	if d, _ := cur.s.Document("same-version"); d.Version != 2 || string(d.Value) != `{"v":"backup"}` {
		t.Errorf("same-version: %+v %s", d, d.Value)
	}
	if reset, changes, _ := cur.s.DocumentSince("same-version", 1); reset != nil || len(changes) != 1 {
		t.Errorf("watch of same-version from 1: reset %+v changes %+v", reset, changes)
	}
	if d, _ := cur.s.Document("dropped-doc"); d.Version != 0 {
		t.Errorf("dropped-doc survived a forced restore: %+v", d)
	}
	// A watcher of d that had seen version 3 gets a reset back to 1.
	if reset, _, _ := cur.s.DocumentSince("d", 3); reset == nil || reset.Version != 1 {
		t.Errorf("watch of d from 3: reset %+v", reset)
	}
	if n, _ := cur.s.TenantCount("t"); n.Count != 1 {
		t.Errorf("tenant t: %+v", n)
	}
	if n, _ := cur.s.TenantCount("u"); n.Count != 0 {
		t.Errorf("tenant u survived a forced restore: %+v", n)
	}
	seen := map[Key]bool{}
	for _, k := range changed {
		seen[k] = true
	}
	for _, k := range []Key{{KindQueue, "q"}, {KindQueue, "was-a-queue"}, {KindDocument, "d"}, {KindDocument, "same-version"}, {KindDocument, "dropped-doc"}} {
		if !seen[k] {
			t.Errorf("forced restore did not report %v changed (reported %v)", k, changed)
		}
	}
}

// TestRestoreIsDeterministic applies the same restore to two replicas
// (with different watch history settings, which must not matter) and
// requires identical states, also after a Raft snapshot round trip of the
// state holding the restore's remembered result.
func TestRestoreIsDeterministic(t *testing.T) {
	bak := fuzzState(t)
	var buf bytes.Buffer
	if _, err := bak.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	for _, force := range []bool{false, true} {
		// fuzzState holds a counter at 2^63−2: an advance of 1 just fits.
		data, err := Encode(Command{Payload: RestoreBackup{Snapshot: buf.Bytes(), Force: force, Advance: 1},
			IdempotencyKey: "restore", Time: fuzzTime + int64(time.Minute), KeyWindow: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var snaps []*Snapshot
		for _, history := range []int{1, 1000} {
			s := NewWithOptions(Options{WatchHistory: history})
			a := &applier{t: t, s: s, now: fuzzTime}
			a.do(CounterNext{ID: "a", Count: 100})
			a.do(QueueJoin{ID: "zk", ProcessID: "other"})
			a.do(DocPut{Name: "cfg", Value: []byte(`{"x":1}`)})
			r := s.Apply(100, data)
			if r.Err != nil {
				t.Fatalf("force=%v: %v", force, r.Err)
			}
			snaps = append(snaps, s.Snapshot())

			// The remembered result survives a snapshot and restore of the
			// state itself, and a retry replays it there.
			var raw bytes.Buffer
			if _, err := s.Snapshot().WriteTo(&raw); err != nil {
				t.Fatal(err)
			}
			again := New()
			if err := again.Restore(&raw); err != nil {
				t.Fatalf("force=%v: restore of a state holding a restore result: %v", force, err)
			}
			if !again.Snapshot().Equal(s.Snapshot()) {
				t.Fatalf("force=%v: snapshot round trip changed the state", force)
			}
			rr := again.Apply(101, data)
			if got, ok := rr.Value.(*Restored); !rr.Replayed || !ok || *got != *r.Value.(*Restored) {
				t.Fatalf("force=%v: replay after a snapshot round trip: %+v, want %+v", force, rr, r)
			}
		}
		if !snaps[0].Equal(snaps[1]) {
			t.Errorf("force=%v: two replicas applying the same restore differ", force)
		}
	}
}
