package fsm

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestIdempotentReplay(t *testing.T) {
	a := newApplier(t)
	first := a.doKey(CounterNext{ID: "c", Count: 1}, "k1")
	again := a.doKey(CounterNext{ID: "c", Count: 1}, "k1")
	if !again.Replayed || again.Index != first.Index || *again.Value.(*Mint) != *first.Value.(*Mint) {
		t.Fatalf("replay = %+v, first = %+v", again, first)
	}
	if c := a.get("c"); c.Value != 1 {
		t.Fatalf("replay applied twice: value %d", c.Value)
	}
}

func TestIdempotentReplayOfRefusal(t *testing.T) {
	a := newApplier(t)
	a.do(CounterSet{ID: "c", Value: ptr(int64(5)), Monotonic: ptr(true)})
	first := a.doKey(CounterAdd{ID: "c", Delta: -1}, "k")
	if !errors.Is(first.Err, ErrNotMonotonic) {
		t.Fatal(first.Err)
	}
	again := a.doKey(CounterAdd{ID: "c", Delta: -1}, "k")
	if !again.Replayed || !errors.Is(again.Err, ErrNotMonotonic) || again.Index != first.Index {
		t.Fatalf("refusals are remembered too: %+v", again)
	}
}

func TestIdempotencyMismatch(t *testing.T) {
	a := newApplier(t)
	a.doKey(CounterNext{ID: "c", Count: 1}, "k")
	for _, p := range []Payload{CounterNext{ID: "c", Count: 2}, CounterNext{ID: "d", Count: 1}, CounterAdd{ID: "c", Delta: 1}} {
		if r := a.doKey(p, "k"); !errors.Is(r.Err, ErrIdempotencyMismatch) {
			t.Fatalf("%+v: %v", p, r.Err)
		}
	}
	if c := a.get("c"); c.Value != 1 {
		t.Fatalf("mismatch had an effect: %d", c.Value)
	}
}

func TestIdempotencyWindowExpires(t *testing.T) {
	a := newApplier(t)
	a.doKey(CounterNext{ID: "c", Count: 1}, "k")
	a.now += int64(10*time.Minute) - 1
	if r := a.doKey(CounterNext{ID: "c", Count: 1}, "k"); !r.Replayed {
		t.Fatal("key forgotten inside its window")
	}
	a.now++
	if r := a.doKey(CounterNext{ID: "c", Count: 1}, "k"); r.Replayed || r.Value.(*Mint).First != 2 {
		t.Fatalf("key remembered past its window: %+v", r)
	}
	if a.s.idem.len() != 1 {
		t.Fatalf("expired entry not dropped: %d in table", a.s.idem.len())
	}
}

func TestIdempotencyTableBounded(t *testing.T) {
	tbl := newIdemTable()
	for i := 0; i < MaxIdempotencyKeys+5000; i++ {
		tbl.expire(0)
		tbl.put(&idemEntry{key: strconv.Itoa(i), expires: 1 << 62})
	}
	tbl.expire(0)
	if tbl.len() > MaxIdempotencyKeys || len(tbl.byKey) > MaxIdempotencyKeys {
		t.Fatalf("table holds %d entries (%d keys), bound %d", tbl.len(), len(tbl.byKey), MaxIdempotencyKeys)
	}
	if cap(tbl.fifo) > 3*MaxIdempotencyKeys {
		t.Fatalf("fifo backing array grew to %d", cap(tbl.fifo))
	}
}

func TestIdempotencySurvivesSnapshot(t *testing.T) {
	a := newApplier(t)
	first := a.doKey(CounterNext{ID: "c", Count: 3}, "k")
	a.do(CounterSet{ID: "c", Value: ptr(int64(1)), IfValue: ptr(int64(99))}) // a conflict, not keyed
	var buf bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	restored := New()
	if err := restored.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	a.s = restored
	again := a.doKey(CounterNext{ID: "c", Count: 3}, "k")
	if !again.Replayed || *again.Value.(*Mint) != *first.Value.(*Mint) {
		t.Fatalf("replay after restore = %+v", again)
	}
}
