package main

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// defaultGCPercent trades memory for CPU: countd's heap is small and most
// of it is short-lived request garbage, and on a small host GC work competes
// with the fsyncs and network writes every write waits for.
const defaultGCPercent = 400

// defaultMemoryLimit is -memory-limit's default.
const defaultMemoryLimit = 512 << 20

// memoryTuneEvery is how often the soft memory limit follows the live heap.
const memoryTuneEvery = time.Second

// gcTuner keeps GOGC=400's CPU saving without its memory: GOGC=400 lets
// the heap grow to five times what is live, which under a burst of large
// documents took a node's resident memory past 700 MiB with 120 MiB live.
// A soft memory limit (-memory-limit) caps that growth. A fixed limit
// below the live heap would make the collector run back to back, so the
// limit follows the live heap: never below twice what is live, which is
// Go's own default pacing (GOGC=100). Small heaps are collected lazily, up
// to the limit; large ones as Go would by default.
type gcTuner struct {
	base int64            // -memory-limit
	live []metrics.Sample // the live heap, read each round
}

// startGCTuner applies GOGC=400 and the memory limit unless the
// environment sets GOGC or GOMEMLIMIT (the operator's choice wins), and
// keeps the limit above twice the live heap for as long as the process
// runs.
func startGCTuner(base int64) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(defaultGCPercent)
	t := &gcTuner{base: base, live: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.tune()
	go func() {
		for range time.Tick(memoryTuneEvery) {
			t.tune()
		}
	}()
}

func (t *gcTuner) tune() {
	metrics.Read(t.live)
	var live int64
	if v := t.live[0].Value; v.Kind() == metrics.KindUint64 {
		live = int64(v.Uint64())
	}
	debug.SetMemoryLimit(limitFor(t.base, live))
}

// limitFor is the soft memory limit for a live heap of live bytes.
func limitFor(base, live int64) int64 { return max(base, 2*live+64<<20) }
