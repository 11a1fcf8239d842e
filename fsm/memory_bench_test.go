package fsm

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkIdempotencyKeyMemory reports the heap each remembered
// Idempotency-Key costs: a 32-character key (what countctl and the client
// send) on a next, with its stored result.
func BenchmarkIdempotencyKeyMemory(b *testing.B) {
	const keys = 200_000
	for i := 0; i < b.N; i++ {
		s := New()
		cmds := make([][]byte, keys)
		for k := range cmds {
			key := strconv.FormatInt(int64(k), 16)
			for len(key) < 32 {
				key = "0" + key
			}
			data, err := Encode(Command{Payload: CounterNext{ID: "orders", Count: 1}, IdempotencyKey: key, Time: 1, KeyWindow: time.Hour})
			if err != nil {
				b.Fatal(err)
			}
			cmds[k] = data
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for k, data := range cmds {
			s.Apply(uint64(k+1), data)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "bytes/key")
		runtime.KeepAlive(s)
	}
}
