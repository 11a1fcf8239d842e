package main

import "testing"

func TestMemoryLimitFollowsTheLiveHeap(t *testing.T) {
	const base = 512 << 20
	for _, c := range []struct{ live, want int64 }{
		{0, base},
		{100 << 20, base}, // small heap: GOGC=400 up to the limit
		{224 << 20, base}, // 2×224+64 = 512
		{400 << 20, 864 << 20},
		{4 << 30, 8<<30 + 64<<20}, // never below twice the live heap
	} {
		if got := limitFor(base, c.live); got != c.want {
			t.Errorf("live %d MiB: limit %d MiB, want %d", c.live>>20, got>>20, c.want>>20)
		}
	}
}
