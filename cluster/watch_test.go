package cluster

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/countd/countd/fsm"
)

func counterKey(i int) fsm.Key { return fsm.Key{Kind: fsm.KindQueue, Name: fmt.Sprint("q", i)} }

// isClosed reports whether ch is closed (a receive that is not a value).
func isClosed(ch <-chan struct{}) bool {
	select {
	case _, open := <-ch:
		return !open
	default:
		return false
	}
}

// TestWatchHubForgetsKeys: a key's entry lives exactly as long as its
// watches. Before, every key ever waited on kept a map entry and a channel
// (about 490 bytes) for good.
func TestWatchHubForgetsKeys(t *testing.T) {
	h := newWatchHub(10)
	for i := range 1000 {
		w := h.watch(counterKey(i))
		_ = w.Changed()
		w.Close()
		w.Close() // twice is harmless
	}
	if n := h.watched(); n != 0 {
		t.Fatalf("%d keys still held after every watch closed", n)
	}

	// Two watches of one key: a change wakes both; the entry stays while
	// one is open and a new wait gets a new channel.
	a, b := h.watch(counterKey(1)), h.watch(counterKey(1))
	ca, cb := a.Changed(), b.Changed()
	if ca != cb || isClosed(ca) {
		t.Fatal("watches of one key must share one open channel")
	}
	h.changed([]fsm.Key{counterKey(2)})
	if isClosed(ca) {
		t.Fatal("a change to another key woke the watch")
	}
	h.changed([]fsm.Key{counterKey(1)})
	if !isClosed(ca) {
		t.Fatal("a change did not wake the watch")
	}
	a.Close()
	if h.watched() != 1 {
		t.Fatal("the entry went while a watch was still open")
	}
	next := b.Changed()
	if isClosed(next) {
		t.Fatal("a new wait after a change got a closed channel")
	}
	h.changed(nil) // a restore wakes everyone
	if !isClosed(next) {
		t.Fatal("a restore did not wake the watch")
	}
	b.Close()
	if h.watched() != 0 {
		t.Fatal("the entry outlived its last watch")
	}
	h.close()
	if w := h.watch(counterKey(3)); !isClosed(w.Changed()) {
		t.Fatal("a watch on a stopped node must return at once")
	}
}

// BenchmarkWatchHubDistinctKeys waits on a million distinct keys, one
// after another, and reports the heap the hub keeps afterwards
// (retained-B, after GC): it must return to where it started.
func BenchmarkWatchHubDistinctKeys(b *testing.B) {
	const keys = 1_000_000
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for b.Loop() {
		h := newWatchHub(keys)
		before := heap()
		for i := range keys {
			w := h.watch(counterKey(i))
			_ = w.Changed()
			w.Close()
		}
		after := heap()
		retained := int64(after) - int64(before)
		b.ReportMetric(float64(retained), "retained-B")
		b.ReportMetric(float64(retained)/keys, "retained-B/key")
		if h.watched() != 0 || retained > 1<<20 {
			b.Fatalf("after %d keys the hub holds %d entries and %d more heap bytes", keys, h.watched(), retained)
		}
		runtime.KeepAlive(h)
	}
}
