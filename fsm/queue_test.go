package fsm

import (
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// qtQueue reads a queue that must be readable.
func qtQueue(t *testing.T, s *State, id string) *Queue {
	t.Helper()
	q, _, err := s.Queue(id)
	if err != nil {
		t.Fatalf("read queue %s: %v", id, err)
	}
	return q
}

// qtMembers lists a queue's members as "process=counter@position".
func qtMembers(q *Queue) []string {
	out := []string{}
	for i, m := range q.Members {
		if m.Position != i || m.Queue != q.ID {
			return []string{"bad member view"}
		}
		out = append(out, m.ProcessID+"="+strconv.FormatInt(m.Counter, 10))
	}
	return out
}

func TestQueueJoinCountersPositionsTokens(t *testing.T) {
	tests := []struct {
		name string
		cfg  *QueueConfigure
		min  int64
	}{
		{"default range", nil, 1},
		{"min 0", &QueueConfigure{ID: "q", Min: ptr(int64(0))}, 0},
		{"min 100", &QueueConfigure{ID: "q", Min: ptr(int64(100)), Max: ptr(int64(200))}, 100},
		{"reuse from 1", &QueueConfigure{ID: "q", Min: ptr(int64(1)), Max: ptr(int64(255)), Reuse: ptr(true)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			if tt.cfg != nil {
				if r := a.do(*tt.cfg); r.Err != nil {
					t.Fatal(r.Err)
				}
			}
			for i, p := range []string{"p0", "p1", "p2", "p3"} {
				tk := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: p}))
				want := Ticket{Queue: "q", ProcessID: p, Counter: tt.min + int64(i), Position: i,
					FencingToken: uint64(i + 1), Index: a.index}
				if !reflect.DeepEqual(*tk, want) {
					t.Fatalf("join %s = %+v, want %+v", p, *tk, want)
				}
			}
			q := qtQueue(t, a.s, "q")
			if q.FencingToken != 4 || q.Index != a.index || len(q.Members) != 4 {
				t.Fatalf("queue = %+v", q)
			}
			for i, m := range q.Members {
				if m.Position != i || m.Counter != tt.min+int64(i) || m.FencingToken != uint64(i+1) {
					t.Fatalf("member %d = %+v", i, m)
				}
				got, _, err := a.s.QueueMember("q", m.ProcessID)
				if err != nil || !reflect.DeepEqual(got, m) {
					t.Fatalf("QueueMember(%s) = %+v, %v; queue read says %+v", m.ProcessID, got, err, m)
				}
			}
		})
	}
}

func TestQueueRejoinIsIdempotent(t *testing.T) {
	a := newApplier(t)
	first := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "a", Tags: map[string]string{"zone": "eu"}}))
	joinIndex := a.index
	qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "b"}))
	qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "c"}))
	if r := a.do(QueueLeave{ID: "q", ProcessID: "b"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	before := qtQueue(t, a.s, "q")
	if before.FencingToken != 4 {
		t.Fatalf("token after 3 joins and a leave = %d", before.FencingToken)
	}

	// Different tags on the re-join: the stored ticket wins.
	again := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "a", Tags: map[string]string{"zone": "us", "x": "y"}}))
	want := Ticket{Queue: "q", ProcessID: "a", Counter: first.Counter, Position: 0,
		Tags: map[string]string{"zone": "eu"}, FencingToken: 4, Index: joinIndex}
	if !reflect.DeepEqual(*again, want) {
		t.Fatalf("re-join = %+v, want %+v (stored ticket with the queue's current token)", *again, want)
	}
	// A re-join of a member whose position moved reports its current position.
	c := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "c"}))
	if c.Position != 1 || c.Counter != 3 || c.FencingToken != 4 {
		t.Fatalf("re-join of c = %+v", c)
	}
	after := qtQueue(t, a.s, "q")
	if after.FencingToken != before.FencingToken || after.Index != before.Index || !reflect.DeepEqual(after, before) {
		t.Fatalf("re-join changed the queue:\nbefore %+v\nafter  %+v", before, after)
	}
}

func TestQueueLeave(t *testing.T) {
	a := newApplier(t)
	for _, p := range []string{"a", "b", "c", "d"} {
		qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: p}))
	}
	r := a.do(QueueLeave{ID: "q", ProcessID: "b"})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if l := r.Value.(*Leave); *l != (Leave{Queue: "q", FencingToken: 5, Index: a.index}) {
		t.Fatalf("leave = %+v", l)
	}
	q := qtQueue(t, a.s, "q")
	if got := qtMembers(q); !reflect.DeepEqual(got, []string{"a=1", "c=3", "d=4"}) {
		t.Fatalf("members after leave = %v", got)
	}
	if q.Members[1].Position != 1 || q.Members[2].Position != 2 || q.Index != a.index {
		t.Fatalf("positions did not shift: %+v", q)
	}
	if tk, _, err := a.s.QueueMember("q", "d"); err != nil || tk.Position != 2 || tk.Counter != 4 {
		t.Fatalf("d after leave = %+v, %v", tk, err)
	}
	if _, _, err := a.s.QueueMember("q", "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("left member read: %v", err)
	}

	// Leave of a non-member, of a member that already left, and on a queue
	// never written: not_found, nothing changed.
	for _, p := range []QueueLeave{{ID: "q", ProcessID: "b"}, {ID: "q", ProcessID: "zz"}, {ID: "never", ProcessID: "a"}} {
		before := qtQueue(t, a.s, p.ID)
		if r := a.do(p); !errors.Is(r.Err, ErrNotFound) || r.Value != nil {
			t.Fatalf("leave %+v = %+v", p, r)
		}
		if after := qtQueue(t, a.s, p.ID); !reflect.DeepEqual(before, after) {
			t.Fatalf("refused leave %+v changed the queue: %+v -> %+v", p, before, after)
		}
	}
	if _, ok := a.s.objects["never"]; ok {
		t.Fatal("leave of a never-written queue created it")
	}
}

func TestQueueNoReuseNeverRepeatsCounters(t *testing.T) {
	a := newApplier(t)
	seen := map[int64]bool{}
	for round := 0; round < 5; round++ {
		for _, p := range []string{"a", "b", "c"} {
			tk := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: p}))
			if seen[tk.Counter] {
				t.Fatalf("round %d: counter %d handed out twice", round, tk.Counter)
			}
			seen[tk.Counter] = true
		}
		for _, p := range []string{"c", "a", "b"} {
			if r := a.do(QueueLeave{ID: "q", ProcessID: p}); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	if len(seen) != 15 {
		t.Fatalf("%d distinct counters, want 15", len(seen))
	}
	if q := qtQueue(t, a.s, "q"); q.FencingToken != 30 || len(q.Members) != 0 || q.Members == nil {
		t.Fatalf("queue after 15 joins and 15 leaves = %+v", q)
	}
}

func TestQueueReuseLowestFree(t *testing.T) {
	a := newApplier(t)
	if r := a.do(QueueConfigure{ID: "zk", Min: ptr(int64(1)), Max: ptr(int64(3)), Reuse: ptr(true)}); r.Err != nil {
		t.Fatal(r.Err)
	}
	for i, p := range []string{"a", "b", "c"} {
		if tk := qtTicket(t, a.do(QueueJoin{ID: "zk", ProcessID: p})); tk.Counter != int64(i+1) {
			t.Fatalf("%s got %d", p, tk.Counter)
		}
	}
	full := func(label string) {
		t.Helper()
		before := qtQueue(t, a.s, "zk")
		r := a.do(QueueJoin{ID: "zk", ProcessID: "x"})
		if !errors.Is(r.Err, ErrQueueFull) || r.Value != nil {
			t.Fatalf("%s: want queue_full, got %+v", label, r)
		}
		if after := qtQueue(t, a.s, "zk"); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s: queue_full changed the queue: %+v -> %+v", label, before, after)
		}
		if _, _, err := a.s.QueueMember("zk", "x"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: refused joiner is a member: %v", label, err)
		}
	}
	full("all three taken")

	a.do(QueueLeave{ID: "zk", ProcessID: "b"})
	tk := qtTicket(t, a.do(QueueJoin{ID: "zk", ProcessID: "d"}))
	if tk.Counter != 2 || tk.Position != 1 || tk.FencingToken != 5 {
		t.Fatalf("d = %+v, want counter 2 at position 1, token 5", tk)
	}
	full("refilled")

	// Free the lowest and a middle one: the lowest goes first and lands at
	// position 0, moving everyone else down.
	a.do(QueueLeave{ID: "zk", ProcessID: "a"})
	a.do(QueueLeave{ID: "zk", ProcessID: "d"})
	if tk := qtTicket(t, a.do(QueueJoin{ID: "zk", ProcessID: "e"})); tk.Counter != 1 || tk.Position != 0 {
		t.Fatalf("e = %+v", tk)
	}
	if tk := qtTicket(t, a.do(QueueJoin{ID: "zk", ProcessID: "f"})); tk.Counter != 2 || tk.Position != 1 {
		t.Fatalf("f = %+v", tk)
	}
	q := qtQueue(t, a.s, "zk")
	if got := qtMembers(q); !reflect.DeepEqual(got, []string{"e=1", "f=2", "c=3"}) {
		t.Fatalf("members = %v", got)
	}
	if q.FencingToken != 9 {
		t.Fatalf("token = %d, want 9", q.FencingToken)
	}
}

func TestQueueNoReuseFullPastMax(t *testing.T) {
	a := newApplier(t)
	a.do(QueueConfigure{ID: "q", Min: ptr(int64(1)), Max: ptr(int64(3))})
	for _, p := range []string{"a", "b", "c"} {
		qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: p}))
	}
	a.do(QueueLeave{ID: "q", ProcessID: "a"})
	a.do(QueueLeave{ID: "q", ProcessID: "b"})
	before := qtQueue(t, a.s, "q")
	if r := a.do(QueueJoin{ID: "q", ProcessID: "d"}); !errors.Is(r.Err, ErrQueueFull) {
		t.Fatalf("without reuse, freed counters stay used: %+v", r)
	}
	if after := qtQueue(t, a.s, "q"); !reflect.DeepEqual(before, after) {
		t.Fatalf("queue_full changed the queue")
	}
	// Raising max makes room above the high-water mark, not below it.
	a.do(QueueConfigure{ID: "q", Max: ptr(int64(10))})
	if tk := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "d"})); tk.Counter != 4 {
		t.Fatalf("d = %+v, want 4", tk)
	}
}

func TestQueueFullAtInt64Max(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		a := newApplier(t)
		a.do(QueueConfigure{ID: "q", Min: ptr(int64(math.MaxInt64)), Reuse: ptr(reuse)})
		if tk := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "a"})); tk.Counter != math.MaxInt64 {
			t.Fatalf("reuse %t: counter %d", reuse, tk.Counter)
		}
		if r := a.do(QueueJoin{ID: "q", ProcessID: "b"}); !errors.Is(r.Err, ErrQueueFull) {
			t.Fatalf("reuse %t: join past 2^63-1 = %+v", reuse, r)
		}
	}
}

func TestQueueConfigValidation(t *testing.T) {
	tests := []struct {
		name   string
		stored *QueueConfigure // applied first
		p      QueueConfigure
		code   Code
		logged bool // refused at apply (reached the log) rather than by Validate
	}{
		{"nothing set", nil, QueueConfigure{ID: "q"}, CodeBadRequest, false},
		{"min < 0", nil, QueueConfigure{ID: "q", Min: ptr(int64(-1))}, CodeBadRequest, false},
		{"max < 0", nil, QueueConfigure{ID: "q", Max: ptr(int64(-1))}, CodeBadRequest, false},
		{"max < min", nil, QueueConfigure{ID: "q", Min: ptr(int64(5)), Max: ptr(int64(4))}, CodeBadRequest, false},
		{"bad name", nil, QueueConfigure{ID: "a/b", Min: ptr(int64(1))}, CodeInvalidName, false},
		{"max below default min", nil, QueueConfigure{ID: "q", Max: ptr(int64(0))}, CodeBadRequest, true},
		{"max below stored min", &QueueConfigure{ID: "q", Min: ptr(int64(10)), Max: ptr(int64(20))},
			QueueConfigure{ID: "q", Max: ptr(int64(9))}, CodeBadRequest, true},
		{"min above stored max", &QueueConfigure{ID: "q", Min: ptr(int64(1)), Max: ptr(int64(3))},
			QueueConfigure{ID: "q", Min: ptr(int64(4))}, CodeBadRequest, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			if tt.stored != nil {
				if r := a.do(*tt.stored); r.Err != nil {
					t.Fatal(r.Err)
				}
			}
			index := a.index
			before, _, _ := a.s.Queue(tt.p.ID)
			_, stored := a.s.objects[tt.p.ID]
			r := a.do(tt.p)
			if got := codeOf(r.Err); got != tt.code {
				t.Fatalf("code %q, want %q (%v)", got, tt.code, r.Err)
			}
			if reached := a.index != index; reached != tt.logged {
				t.Fatalf("reached the log: %t, want %t", reached, tt.logged)
			}
			after, _, _ := a.s.Queue(tt.p.ID)
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("refused config changed the queue: %+v -> %+v", before, after)
			}
			if _, now := a.s.objects[tt.p.ID]; now != stored {
				t.Fatal("refused config created the queue")
			}
		})
	}
	t.Run("partial config keeps the other fields", func(t *testing.T) {
		a := newApplier(t)
		a.do(QueueConfigure{ID: "q", Min: ptr(int64(5)), Max: ptr(int64(50)), Reuse: ptr(true)})
		r := a.do(QueueConfigure{ID: "q", Max: ptr(int64(60))})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		want := QueueConfig{Min: 5, Max: 60, Reuse: true}
		if got := r.Value.(*Queue).Config; got != want {
			t.Fatalf("config = %+v, want %+v", got, want)
		}
		if got := qtQueue(t, a.s, "q").Config; got != want {
			t.Fatalf("read config = %+v, want %+v", got, want)
		}
		// min == max is a valid one-counter range.
		if r := a.do(QueueConfigure{ID: "q", Min: ptr(int64(0)), Max: ptr(int64(0))}); r.Err != nil {
			t.Fatalf("min = max = 0: %v", r.Err)
		}
	})
}

func TestQueueConfigKeepsMembersAndToken(t *testing.T) {
	a := newApplier(t)
	for _, p := range []string{"a", "b", "c"} {
		qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: p}))
	}
	before := qtQueue(t, a.s, "q")
	r := a.do(QueueConfigure{ID: "q", Min: ptr(int64(10)), Max: ptr(int64(12)), Reuse: ptr(true)})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	got := r.Value.(*Queue)
	if got.FencingToken != before.FencingToken || got.Index != a.index || !reflect.DeepEqual(got.Members, before.Members) {
		t.Fatalf("config result = %+v; before %+v", got, before)
	}
	q := qtQueue(t, a.s, "q")
	if got := qtMembers(q); !reflect.DeepEqual(got, []string{"a=1", "b=2", "c=3"}) || q.FencingToken != 3 {
		t.Fatalf("config moved members or token: %v token %d", got, q.FencingToken)
	}
	// New joins draw from the new range; members outside it stay.
	for i, p := range []string{"d", "e", "f"} {
		tk := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: p}))
		if tk.Counter != int64(10+i) || tk.Position != 3+i {
			t.Fatalf("%s = %+v", p, tk)
		}
	}
	if r := a.do(QueueJoin{ID: "q", ProcessID: "g"}); !errors.Is(r.Err, ErrQueueFull) {
		t.Fatalf("10…12 used up: %+v", r)
	}
	// Configuring a never-written queue creates it at token 0.
	if r := a.do(QueueConfigure{ID: "fresh", Reuse: ptr(true)}); r.Err != nil {
		t.Fatal(r.Err)
	}
	fresh := qtQueue(t, a.s, "fresh")
	if fresh.FencingToken != 0 || len(fresh.Members) != 0 || fresh.Config != (QueueConfig{Min: 1, Max: math.MaxInt64, Reuse: true}) || fresh.Index != a.index {
		t.Fatalf("configured fresh queue = %+v", fresh)
	}
}

func TestQueueDeleteAndRecreate(t *testing.T) {
	a := newApplier(t)
	if r := a.do(QueueDelete{ID: "absent"}); r.Err != nil || r.Value != nil {
		t.Fatalf("delete of an absent queue = %+v", r)
	}
	if _, ok := a.s.objects["absent"]; ok {
		t.Fatal("delete created the queue")
	}
	a.do(QueueConfigure{ID: "q", Min: ptr(int64(5)), Max: ptr(int64(9))})
	for _, p := range []string{"a", "b", "c"} {
		qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: p}))
	}
	a.do(QueueLeave{ID: "q", ProcessID: "a"})
	if r := a.do(QueueDelete{ID: "q"}); r.Err != nil || r.Value != nil {
		t.Fatalf("delete = %+v", r)
	}
	q := qtQueue(t, a.s, "q")
	if q.FencingToken != 0 || len(q.Members) != 0 || q.Config != DefaultQueueConfig() || q.Index != 0 {
		t.Fatalf("deleted queue reads %+v", q)
	}
	if r := a.do(QueueDelete{ID: "q"}); r.Err != nil {
		t.Fatalf("second delete: %v", r.Err)
	}
	tk := qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "b"}))
	if tk.Counter != 1 || tk.FencingToken != 1 || tk.Position != 0 || tk.Index != a.index {
		t.Fatalf("re-created queue's first ticket = %+v, want counter 1 (default min), token 1", tk)
	}
	// The name is free for a counter after a delete.
	a.do(QueueDelete{ID: "q"})
	if m := mint(t, a.do(CounterNext{ID: "q", Count: 1})); m.First != 1 {
		t.Fatalf("counter on a deleted queue's name = %+v", m)
	}
}

func TestQueueNeverWritten(t *testing.T) {
	a := newApplier(t)
	a.do(CounterNext{ID: "other", Count: 1})
	q, applied, err := a.s.Queue("nope")
	want := &Queue{ID: "nope", Config: DefaultQueueConfig(), Members: []*Ticket{}}
	if err != nil || !reflect.DeepEqual(q, want) || applied != a.index {
		t.Fatalf("never-written queue = %+v at %d, %v; want %+v", q, applied, err, want)
	}
	if q.Config.Min != 1 || q.Config.Max != math.MaxInt64 || q.Config.Reuse {
		t.Fatalf("default config = %+v", q.Config)
	}
	tk, applied, err := a.s.QueueMember("nope", "p")
	if !errors.Is(err, ErrNotFound) || tk != nil || applied != a.index {
		t.Fatalf("member of never-written queue = %+v, %d, %v", tk, applied, err)
	}
	a.do(QueueJoin{ID: "q", ProcessID: "a"})
	if _, _, err := a.s.QueueMember("q", "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("non-member read: %v", err)
	}
	if len(a.s.objects) != 2 {
		t.Fatalf("reads created objects: %d", len(a.s.objects))
	}
}

func TestQueueWrongType(t *testing.T) {
	a := newApplier(t)
	qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "a"}))
	a.do(CounterNext{ID: "c", Count: 3})
	before := a.s.Snapshot()

	counterOps := []Payload{
		CounterNext{ID: "q", Count: 1}, CounterAdd{ID: "q", Delta: 1},
		CounterSet{ID: "q", Value: ptr(int64(1))}, CounterDelete{ID: "q"}, CounterDelete{ID: "q", Force: true},
	}
	for _, p := range counterOps {
		r := a.do(p)
		if !errors.Is(r.Err, ErrWrongType) || r.Err.Error() != "q is a queue, not a counter" {
			t.Fatalf("%T on a queue: %v", p, r.Err)
		}
	}
	queueOps := []Payload{
		QueueJoin{ID: "c", ProcessID: "a"}, QueueLeave{ID: "c", ProcessID: "a"},
		QueueConfigure{ID: "c", Reuse: ptr(true)}, QueueDelete{ID: "c"},
	}
	for _, p := range queueOps {
		r := a.do(p)
		if !errors.Is(r.Err, ErrWrongType) || r.Err.Error() != "c is a counter, not a queue" {
			t.Fatalf("%T on a counter: %v", p, r.Err)
		}
	}
	if _, _, err := a.s.Counter("q"); !errors.Is(err, ErrWrongType) || err.Error() != "q is a queue, not a counter" {
		t.Fatalf("counter read of a queue: %v", err)
	}
	if _, _, err := a.s.Queue("c"); !errors.Is(err, ErrWrongType) || err.Error() != "c is a counter, not a queue" {
		t.Fatalf("queue read of a counter: %v", err)
	}
	if _, _, err := a.s.QueueMember("c", "a"); !errors.Is(err, ErrWrongType) {
		t.Fatalf("member read of a counter: %v", err)
	}
	if list, _ := a.s.Counters(""); len(list) != 1 || list[0].ID != "c" {
		t.Fatalf("counter list = %+v", list)
	}
	after := a.s.Snapshot()
	after.applied = before.applied
	if !after.Equal(before) {
		t.Fatal("wrong_type refusals changed the state")
	}
}

func TestQueueJoinValidation(t *testing.T) {
	many := map[string]string{}
	for i := 0; i <= MaxTags; i++ {
		many["k"+strconv.Itoa(i)] = "v"
	}
	maxTags := map[string]string{}
	for i := 0; i < MaxTags; i++ {
		maxTags["k"+strconv.Itoa(i)] = "v"
	}
	tests := []struct {
		name string
		p    QueueJoin
		code Code
	}{
		{"ok", QueueJoin{ID: "q", ProcessID: "host-1.example.com:2181"}, ""},
		{"exactly MaxTags", QueueJoin{ID: "q", ProcessID: "p", Tags: maxTags}, ""},
		{"longest tag value", QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{"k": strings.Repeat("v", MaxTagValueLen)}}, ""},
		{"empty tag value", QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{"k": ""}}, ""},
		{"too many tags", QueueJoin{ID: "q", ProcessID: "p", Tags: many}, CodeBadRequest},
		{"tag value too long", QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{"k": strings.Repeat("v", MaxTagValueLen+1)}}, CodeBadRequest},
		{"tag key with space", QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{"a b": "v"}}, CodeInvalidName},
		{"tag key with slash", QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{"a/b": "v"}}, CodeInvalidName},
		{"empty tag key", QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{"": "v"}}, CodeInvalidName},
		{"tag key too long", QueueJoin{ID: "q", ProcessID: "p", Tags: map[string]string{strings.Repeat("k", MaxNameLen+1): "v"}}, CodeInvalidName},
		{"process id with slash", QueueJoin{ID: "q", ProcessID: "a/b"}, CodeInvalidName},
		{"empty process id", QueueJoin{ID: "q"}, CodeInvalidName},
		{"process id ..", QueueJoin{ID: "q", ProcessID: ".."}, CodeInvalidName},
		{"queue name with slash", QueueJoin{ID: "q/x", ProcessID: "p"}, CodeInvalidName},
		{"queue name .", QueueJoin{ID: ".", ProcessID: "p"}, CodeInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			r := a.do(tt.p)
			if got := codeOf(r.Err); got != tt.code {
				t.Fatalf("code %q, want %q (%v)", got, tt.code, r.Err)
			}
			if tt.code != "" {
				if a.index != 0 || len(a.s.objects) != 0 {
					t.Fatal("invalid join reached the state")
				}
				return
			}
			tk := qtTicket(t, r)
			if len(tt.p.Tags) == 0 && tk.Tags != nil {
				t.Fatalf("tags = %#v, want nil", tk.Tags)
			}
			if len(tt.p.Tags) > 0 && !reflect.DeepEqual(tk.Tags, tt.p.Tags) {
				t.Fatalf("tags = %v", tk.Tags)
			}
		})
	}
	for _, p := range []QueueLeave{{ID: "q"}, {ID: "q", ProcessID: "a/b"}, {ID: "", ProcessID: "a"}} {
		a := newApplier(t)
		if got := codeOf(a.do(p).Err); got != CodeInvalidName {
			t.Fatalf("leave %+v: code %q", p, got)
		}
	}
	for _, p := range []QueueDelete{{ID: ""}, {ID: ".."}, {ID: "a b"}} {
		a := newApplier(t)
		if got := codeOf(a.do(p).Err); got != CodeInvalidName {
			t.Fatalf("delete %+v: code %q", p, got)
		}
	}
}

func TestQueueJoinTagsAreCopied(t *testing.T) {
	a := newApplier(t)
	tags := map[string]string{"zone": "eu"}
	qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "a", Tags: tags}))
	// The applier encodes, so the caller's map never reaches the state; a
	// decoded command's map must not either.
	tags["zone"] = "us"
	if tk, _, _ := a.s.QueueMember("q", "a"); tk.Tags["zone"] != "eu" {
		t.Fatalf("tags = %v", tk.Tags)
	}
}

func TestQueueIdempotentJoinReplay(t *testing.T) {
	a := newApplier(t)
	first := a.doKey(QueueJoin{ID: "q", ProcessID: "a", Tags: map[string]string{"k": "v"}}, "join-a")
	qtTicket(t, first)
	qtTicket(t, a.do(QueueJoin{ID: "q", ProcessID: "b"}))
	before := qtQueue(t, a.s, "q")

	again := a.doKey(QueueJoin{ID: "q", ProcessID: "a", Tags: map[string]string{"k": "v"}}, "join-a")
	if !again.Replayed || again.Index != first.Index || again.Err != nil || !reflect.DeepEqual(again.Value, first.Value) {
		t.Fatalf("replay = %+v, first = %+v", again, first)
	}
	if tk := again.Value.(*Ticket); tk.FencingToken != 1 || tk.Counter != 1 {
		t.Fatalf("replay must return the original body: %+v", tk)
	}
	if after := qtQueue(t, a.s, "q"); !reflect.DeepEqual(before, after) {
		t.Fatalf("replay changed the queue")
	}

	// Same key, different request.
	for _, p := range []Payload{
		QueueJoin{ID: "q", ProcessID: "c"},
		QueueJoin{ID: "q", ProcessID: "a", Tags: map[string]string{"k": "w"}},
		QueueJoin{ID: "q", ProcessID: "a"},
		QueueLeave{ID: "q", ProcessID: "a"},
	} {
		if r := a.doKey(p, "join-a"); !errors.Is(r.Err, ErrIdempotencyMismatch) {
			t.Fatalf("%+v: %+v", p, r)
		}
	}
	if after := qtQueue(t, a.s, "q"); !reflect.DeepEqual(before, after) {
		t.Fatalf("mismatches changed the queue")
	}

	// Tags in a different map order are the same request.
	a.doKey(QueueJoin{ID: "q", ProcessID: "t", Tags: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"}}, "tags")
	for range 10 {
		r := a.doKey(QueueJoin{ID: "q", ProcessID: "t", Tags: map[string]string{"d": "4", "c": "3", "b": "2", "a": "1"}}, "tags")
		if !r.Replayed {
			t.Fatalf("same tags, other order: %+v", r)
		}
	}

	// A keyed leave and a keyed queue_full are remembered too.
	l1 := a.doKey(QueueLeave{ID: "q", ProcessID: "b"}, "leave-b")
	l2 := a.doKey(QueueLeave{ID: "q", ProcessID: "b"}, "leave-b")
	if l1.Err != nil || !l2.Replayed || !reflect.DeepEqual(l1.Value, l2.Value) {
		t.Fatalf("leave replay: %+v / %+v", l1, l2)
	}
	a.do(QueueConfigure{ID: "small", Max: ptr(int64(1))})
	a.do(QueueJoin{ID: "small", ProcessID: "x"})
	f1 := a.doKey(QueueJoin{ID: "small", ProcessID: "y"}, "full")
	a.do(QueueLeave{ID: "small", ProcessID: "x"})
	f2 := a.doKey(QueueJoin{ID: "small", ProcessID: "y"}, "full")
	if !errors.Is(f1.Err, ErrQueueFull) || !f2.Replayed || !errors.Is(f2.Err, ErrQueueFull) || f2.Index != f1.Index {
		t.Fatalf("queue_full replay: %+v / %+v", f1, f2)
	}
}

func TestQueueIndexes(t *testing.T) {
	a := newApplier(t)
	a.do(QueueJoin{ID: "q", ProcessID: "a"})
	joinA := a.index
	a.do(CounterNext{ID: "c", Count: 1})
	if q, applied, _ := a.s.Queue("q"); q.Index != joinA || applied != a.index {
		t.Fatalf("queue index %d applied %d", q.Index, applied)
	}
	a.do(QueueJoin{ID: "q", ProcessID: "a"}) // re-join: not a write to the queue
	if q := qtQueue(t, a.s, "q"); q.Index != joinA {
		t.Fatalf("re-join moved the queue index to %d", q.Index)
	}
	a.do(QueueLeave{ID: "q", ProcessID: "nobody"})
	if q := qtQueue(t, a.s, "q"); q.Index != joinA {
		t.Fatalf("refused leave moved the queue index to %d", q.Index)
	}
	a.do(QueueConfigure{ID: "q", Reuse: ptr(true)})
	if q := qtQueue(t, a.s, "q"); q.Index != a.index || q.Members[0].Index != joinA {
		t.Fatalf("after config: %+v", q)
	}
}
