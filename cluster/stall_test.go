package cluster

import (
	"testing"
	"time"
)

func TestStallWatch(t *testing.T) {
	w := newStallWatch(150*time.Millisecond, 150*time.Millisecond)
	if w.tick != 15*time.Millisecond || w.threshold != 75*time.Millisecond || w.window != 300*time.Millisecond {
		t.Fatalf("tick %v, threshold %v, window %v", w.tick, w.threshold, w.window)
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	w.lastTick.Store(0)
	// Ticks on time: no stall.
	for at := 15; at <= 150; at += 15 {
		w.observe(ms(at))
		if w.recentAt(ms(at + 5)) {
			t.Fatalf("a stall seen at %d ms with ticks every 15 ms", at+5)
		}
	}
	// Running again 100 ms after the last tick, before the ticker has
	// run: the read must not trust a heartbeat round.
	if !w.recentAt(ms(250)) {
		t.Fatal("a 100 ms gap the ticker has not seen yet is not a stall")
	}
	// The ticker sees it: a stall, and for the window after it.
	w.observe(ms(250))
	if w.stalls.Load() != 1 {
		t.Fatalf("%d stalls counted, want 1", w.stalls.Load())
	}
	for at := 265; at < 550; at += 15 {
		w.observe(ms(at))
		if !w.recentAt(ms(at)) {
			t.Fatalf("no stall seen %d ms after one ended (window 300 ms)", at-250)
		}
	}
	w.observe(ms(550))
	if w.recentAt(ms(551)) {
		t.Fatal("a stall still seen after its window")
	}
	// A gap just under the threshold is scheduling, not a stall.
	w.observe(ms(624))
	if w.recentAt(ms(625)) || w.stalls.Load() != 1 {
		t.Fatalf("a 74 ms gap counted as a stall (%d stalls)", w.stalls.Load())
	}
}
