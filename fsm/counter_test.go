package fsm

import (
	"errors"
	"math"
	"testing"
)

func TestCounterNextSequence(t *testing.T) {
	a := newApplier(t)
	for want := int64(1); want <= 3; want++ {
		m := mint(t, a.do(CounterNext{ID: "c", Count: 1}))
		if m.First != want || m.Last != want || m.Count != 1 || m.Step != 1 || m.Index != a.index {
			t.Fatalf("mint %d = %+v", want, m)
		}
	}
	if c := a.get("c"); c.Value != 3 || c.Index != 3 {
		t.Fatalf("counter after 3 mints = %+v", c)
	}
}

func TestCounterNextTicketServer(t *testing.T) {
	tests := []struct {
		name              string
		value, inc, off   int64
		count             int64
		first, last, step int64
	}{
		{"defaults", 0, 1, 0, 1, 1, 1, 1},
		{"odd only", 0, 2, 1, 3, 1, 5, 2},
		{"odd from odd", 1, 2, 1, 1, 3, 3, 2},
		{"even from odd", 1, 2, 0, 2, 2, 4, 2},
		{"spec example: -7 inc 5 off 2", -7, 5, 2, 1, -3, -3, 5},
		{"offset class, not value", 0, 5, 12, 1, 2, 2, 5},
		{"negative offset", 0, 5, -1, 1, 4, 4, 5},
		{"range", 100, 10, 3, 1000, 103, 10093, 10},
		{"near max", math.MaxInt64 - 2, 1, 0, 2, math.MaxInt64 - 1, math.MaxInt64, 1},
		{"from min", math.MinInt64, 1, 0, 1, math.MinInt64 + 1, math.MinInt64 + 1, 1},
		{"huge increment", 0, 1 << 62, 0, 1, 1 << 62, 1 << 62, 1 << 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			if r := a.do(CounterSet{ID: "c", Value: &tt.value, Increment: &tt.inc, Offset: &tt.off}); r.Err != nil {
				t.Fatal(r.Err)
			}
			m := mint(t, a.do(CounterNext{ID: "c", Count: tt.count}))
			if m.First != tt.first || m.Last != tt.last || m.Step != tt.step || m.Count != tt.count {
				t.Fatalf("got first %d last %d step %d count %d, want %d %d %d %d", m.First, m.Last, m.Step, m.Count, tt.first, tt.last, tt.step, tt.count)
			}
			if c := a.get("c"); c.Value != tt.last {
				t.Fatalf("value after mint %d, want %d", c.Value, tt.last)
			}
		})
	}
}

func TestCounterOverflowChangesNothing(t *testing.T) {
	tests := []struct {
		name string
		p    Payload
	}{
		{"next past max", CounterNext{ID: "c", Count: 1}},
		{"range past max", CounterNext{ID: "c", Count: 3}},
		{"add past max", CounterAdd{ID: "c", Delta: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			a.do(CounterSet{ID: "c", Value: ptr(int64(math.MaxInt64 - 1)), Increment: ptr(int64(2))})
			if tt.name == "add past max" {
				a.do(CounterSet{ID: "c", Value: ptr(int64(math.MaxInt64))})
			}
			before := a.get("c")
			r := a.do(tt.p)
			if !errors.Is(r.Err, ErrOverflow) {
				t.Fatalf("want overflow, got %v (%+v)", r.Err, r.Value)
			}
			if after := a.get("c"); *after != *before {
				t.Fatalf("overflow changed the counter: %+v -> %+v", before, after)
			}
		})
	}
	t.Run("add below min", func(t *testing.T) {
		a := newApplier(t)
		a.do(CounterSet{ID: "c", Value: ptr(int64(math.MinInt64 + 1))})
		if r := a.do(CounterAdd{ID: "c", Delta: -2}); !errors.Is(r.Err, ErrOverflow) {
			t.Fatalf("want overflow, got %v", r.Err)
		}
	})
	t.Run("range span overflows", func(t *testing.T) {
		a := newApplier(t)
		a.do(CounterSet{ID: "c", Increment: ptr(int64(1 << 62))})
		if r := a.do(CounterNext{ID: "c", Count: 4}); !errors.Is(r.Err, ErrOverflow) {
			t.Fatalf("want overflow, got %v", r.Err)
		}
	})
}

func TestCounterAdd(t *testing.T) {
	a := newApplier(t)
	r := a.do(CounterAdd{ID: "c", Delta: 5, Default: ptr(int64(100))})
	if c := r.Value.(*Counter); c.Value != 105 || c.Index != 1 {
		t.Fatalf("add with default on absent counter = %+v", c)
	}
	r = a.do(CounterAdd{ID: "c", Delta: -10, Default: ptr(int64(1000))})
	if c := r.Value.(*Counter); c.Value != 95 {
		t.Fatalf("default must only apply to an absent counter, got %d", c.Value)
	}
	r = a.do(CounterAdd{ID: "fresh", Delta: -3})
	if c := r.Value.(*Counter); c.Value != -3 {
		t.Fatalf("add without default starts at 0, got %d", c.Value)
	}
}

func TestCounterSetAndCAS(t *testing.T) {
	a := newApplier(t)
	if r := a.do(CounterSet{ID: "c", IfValue: ptr(int64(0)), Value: ptr(int64(7))}); r.Err != nil {
		t.Fatalf("if_value 0 on a never-written counter must match: %v", r.Err)
	}
	r := a.do(CounterSet{ID: "c", IfValue: ptr(int64(6)), Value: ptr(int64(9))})
	var fe *Error
	if !errors.As(r.Err, &fe) || fe.Code != CodeConflict {
		t.Fatalf("want conflict, got %v", r.Err)
	}
	if cur, ok := fe.Current.(*Counter); !ok || cur.Value != 7 || cur.ID != "c" {
		t.Fatalf("conflict must carry the current counter, got %#v", fe.Current)
	}
	if c := a.get("c"); c.Value != 7 {
		t.Fatalf("conflict changed the value to %d", c.Value)
	}
	r = a.do(CounterSet{ID: "c", IfValue: ptr(int64(7)), Increment: ptr(int64(3)), Offset: ptr(int64(-1))})
	c := r.Value.(*Counter)
	if c.Value != 7 || c.Increment != 3 || c.Offset != -1 || c.Index != a.index {
		t.Fatalf("set returned %+v", c)
	}
}

func TestCounterSetValidation(t *testing.T) {
	tests := []struct {
		name string
		p    CounterSet
		code Code
	}{
		{"nothing to set", CounterSet{ID: "c", IfValue: ptr(int64(0))}, CodeBadRequest},
		{"zero increment", CounterSet{ID: "c", Increment: ptr(int64(0))}, CodeBadRequest},
		{"negative increment", CounterSet{ID: "c", Increment: ptr(int64(-1))}, CodeBadRequest},
		{"increment above 2^62", CounterSet{ID: "c", Increment: ptr(int64(1<<62 + 1))}, CodeBadRequest},
		{"bad name", CounterSet{ID: "a b", Value: ptr(int64(1))}, CodeInvalidName},
		{"dot", CounterSet{ID: ".", Value: ptr(int64(1))}, CodeInvalidName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newApplier(t)
			if got := codeOf(a.do(tt.p).Err); got != tt.code {
				t.Fatalf("code %q, want %q", got, tt.code)
			}
			if a.index != 0 {
				t.Fatal("invalid input reached the log")
			}
		})
	}
}

func TestCounterMonotonic(t *testing.T) {
	a := newApplier(t)
	a.do(CounterSet{ID: "m", Value: ptr(int64(10)), Monotonic: ptr(true)})
	refused := []struct {
		name string
		p    Payload
	}{
		{"lower by set", CounterSet{ID: "m", Value: ptr(int64(9))}},
		{"lower by add", CounterAdd{ID: "m", Delta: -1}},
		{"switch off", CounterSet{ID: "m", Monotonic: ptr(false)}},
		{"delete without force", CounterDelete{ID: "m"}},
	}
	for _, tt := range refused {
		if r := a.do(tt.p); !errors.Is(r.Err, ErrNotMonotonic) {
			t.Fatalf("%s: want not_monotonic, got %v", tt.name, r.Err)
		}
	}
	if c := a.get("m"); c.Value != 10 || !c.Monotonic {
		t.Fatalf("refusals changed the counter: %+v", c)
	}
	allowed := []Payload{
		CounterSet{ID: "m", Value: ptr(int64(10))},
		CounterSet{ID: "m", Value: ptr(int64(20)), Increment: ptr(int64(4)), Offset: ptr(int64(1))},
		CounterAdd{ID: "m", Delta: 0},
		CounterAdd{ID: "m", Delta: 5},
		CounterNext{ID: "m", Count: 2},
	}
	for _, p := range allowed {
		if r := a.do(p); r.Err != nil {
			t.Fatalf("%T %+v refused: %v", p, p, r.Err)
		}
	}
	if r := a.do(CounterDelete{ID: "m", Force: true}); r.Err != nil {
		t.Fatalf("forced delete: %v", r.Err)
	}
	if c := a.get("m"); *c != (Counter{ID: "m", Increment: 1}) {
		t.Fatalf("deleted counter must read as defaults, got %+v", c)
	}
	// Lowering while switching monotonic on in the same write is allowed: the
	// rule protects values minted while the switch was on.
	a.do(CounterSet{ID: "n", Value: ptr(int64(50))})
	if r := a.do(CounterSet{ID: "n", Value: ptr(int64(1)), Monotonic: ptr(true)}); r.Err != nil {
		t.Fatalf("turning monotonic on while lowering: %v", r.Err)
	}
}

func TestCounterDelete(t *testing.T) {
	a := newApplier(t)
	if r := a.do(CounterDelete{ID: "never"}); r.Err != nil || r.Value != nil {
		t.Fatalf("delete of absent counter = %+v", r)
	}
	a.do(CounterNext{ID: "c", Count: 5})
	a.do(CounterDelete{ID: "c"})
	if m := mint(t, a.do(CounterNext{ID: "c", Count: 1})); m.First != 1 {
		t.Fatalf("after delete the counter restarts, minted %d", m.First)
	}
}

func TestCounterNextValidation(t *testing.T) {
	for _, n := range []int64{0, -1, MaxMintCount + 1} {
		a := newApplier(t)
		if got := codeOf(a.do(CounterNext{ID: "c", Count: n}).Err); got != CodeBadRequest {
			t.Fatalf("count %d: code %q", n, got)
		}
	}
	a := newApplier(t)
	if m := mint(t, a.do(CounterNext{ID: "c", Count: MaxMintCount})); m.Last != MaxMintCount {
		t.Fatalf("max count mint = %+v", m)
	}
}

func TestCounterWrongType(t *testing.T) {
	a := newApplier(t)
	a.s.objects["q"] = fakeQueue{}
	for _, p := range []Payload{
		CounterNext{ID: "q", Count: 1}, CounterAdd{ID: "q", Delta: 1},
		CounterSet{ID: "q", Value: ptr(int64(1))}, CounterDelete{ID: "q"},
	} {
		r := a.do(p)
		if !errors.Is(r.Err, ErrWrongType) || r.Err.Error() != "q is a queue, not a counter" {
			t.Fatalf("%T: got %v", p, r.Err)
		}
	}
	if _, _, err := a.s.Counter("q"); !errors.Is(err, ErrWrongType) {
		t.Fatalf("read: %v", err)
	}
	if list, _ := a.s.Counters(""); len(list) != 0 {
		t.Fatalf("queues must not be listed as counters: %+v", list)
	}
}

type fakeQueue struct{}

func (fakeQueue) kind() Kind { return KindQueue }

func TestCountersListByPrefix(t *testing.T) {
	a := newApplier(t)
	for _, id := range []string{"b", "a/x", "a", "ab", "c"} {
		if id == "a/x" {
			continue
		}
		a.do(CounterNext{ID: id, Count: 1})
	}
	list, applied := a.s.Counters("a")
	if applied != a.index || len(list) != 2 || list[0].ID != "a" || list[1].ID != "ab" {
		t.Fatalf("list a* = %+v at %d", list, applied)
	}
	all, _ := a.s.Counters("")
	var ids []string
	for _, c := range all {
		ids = append(ids, c.ID)
	}
	if len(ids) != 4 || ids[0] != "a" || ids[1] != "ab" || ids[2] != "b" || ids[3] != "c" {
		t.Fatalf("list order %v", ids)
	}
}

func TestNeverWrittenCounterReadsZero(t *testing.T) {
	a := newApplier(t)
	c, applied, err := a.s.Counter("nope")
	if err != nil || *c != (Counter{ID: "nope", Increment: 1}) || applied != 0 {
		t.Fatalf("got %+v %d %v", c, applied, err)
	}
}

// A range whose span alone exceeds MaxInt64 still fits when it starts below
// zero (found by the model-based test).
func TestCounterRangeFromNegativeFits(t *testing.T) {
	a := newApplier(t)
	a.do(CounterSet{ID: "a", Value: ptr(int64(-(1 << 62) - 1)), Increment: ptr(int64(1 << 62))})
	m := mint(t, a.do(CounterNext{ID: "a", Count: 3}))
	if m.First != -(1<<62) || m.Last != 1<<62 {
		t.Fatalf("mint = %+v", m)
	}
	if r := a.do(CounterNext{ID: "a", Count: 1}); !errors.Is(r.Err, ErrOverflow) {
		t.Fatalf("one more step passes MaxInt64: %v", r.Err)
	}
}
