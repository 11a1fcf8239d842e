package fsm

import (
	"bytes"
	"errors"
	"testing"
)

func TestCounterCacheConfig(t *testing.T) {
	a := newApplier(t)
	for _, bad := range []int64{-1, MaxCache + 1} {
		if r := a.do(CounterSet{ID: "c", Cache: ptr(bad)}); !errors.Is(r.Err, ErrBadRequest) {
			t.Errorf("cache %d: %v, want bad_request", bad, r.Err)
		}
	}
	c := resultOf[Counter](t, "set cache", a.do(CounterSet{ID: "c", Cache: ptr(int64(100))}))
	if c.Cache != 100 || c.Value != 0 || c.Increment != 1 {
		t.Fatalf("after set cache: %+v", c)
	}
	// Other sets keep it; cache 0 turns it off.
	a.do(CounterSet{ID: "c", Value: ptr(int64(7))})
	if got := a.get("c"); got.Cache != 100 || got.Value != 7 {
		t.Fatalf("after set value: %+v", got)
	}
	a.do(CounterSet{ID: "c", Cache: ptr(int64(0))})
	if got := a.get("c"); got.Cache != 0 {
		t.Fatalf("after cache 0: %+v", got)
	}
}

func TestCounterSetWithoutCacheEncodesAsBefore(t *testing.T) {
	// Sets from before caching existed must decode, and fingerprint, the
	// same: the field is written only when given.
	old := CounterSet{ID: "c", Value: ptr(int64(1))}
	data, err := Encode(Command{Payload: old, IdempotencyKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var e encoder
	e.string("c")
	e.optInt(ptr(int64(1)))
	e.optInt(nil)
	e.optInt(nil)
	e.optBool(nil)
	e.optInt(nil)
	if !bytes.HasSuffix(data, e.buf) {
		t.Fatalf("a set without cache encodes differently from before")
	}
	got, err := decode(data)
	if err != nil || got.Payload.(CounterSet).Cache != nil {
		t.Fatalf("decode: %+v %v", got.Payload, err)
	}
	withCache, _ := Encode(Command{Payload: CounterSet{ID: "c", Cache: ptr(int64(5))}})
	got, err = decode(withCache)
	if err != nil || *got.Payload.(CounterSet).Cache != 5 {
		t.Fatalf("decode with cache: %+v %v", got.Payload, err)
	}
}

func TestCounterCacheSurvivesSnapshotsAndReplays(t *testing.T) {
	a := newApplier(t)
	a.doKey(CounterSet{ID: "cached", Cache: ptr(int64(1000))}, "set-key")
	a.do(CounterSet{ID: "dense", Value: ptr(int64(3))})
	var snap bytes.Buffer
	if _, err := a.s.Snapshot().WriteTo(&snap); err != nil {
		t.Fatal(err)
	}
	restored := New()
	if err := restored.Restore(bytes.NewReader(snap.Bytes())); err != nil {
		t.Fatal(err)
	}
	if c, _, _ := restored.Counter("cached"); c.Cache != 1000 {
		t.Fatalf("restored cached counter: %+v", c)
	}
	if c, _, _ := restored.Counter("dense"); c.Cache != 0 || c.Value != 3 {
		t.Fatalf("restored dense counter: %+v", c)
	}
	// The remembered result of the set keeps its cache through the snapshot.
	a.s = restored
	r := a.doKey(CounterSet{ID: "cached", Cache: ptr(int64(1000))}, "set-key")
	if c := resultOf[Counter](t, "replayed set", r); !r.Replayed || c.Cache != 1000 {
		t.Fatalf("replayed set: %+v replayed %t", c, r.Replayed)
	}
}
