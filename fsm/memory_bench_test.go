package fsm

import (
	"fmt"
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
		runtime.KeepAlive(cmds) // freed before the second reading, they would offset the growth
	}
}

// heapGrowth is how much live heap f leaves behind. Two collections
// empty sync.Pools too (encoding/json keeps its buffers in one), which
// would otherwise count as the document's.
func heapGrowth(f func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc)
}

// documentShapes are the documents the memory figures are given for, all
// near the default -max-doc-size (1 MiB): the worst shape for overhead (a
// top-level key per 8 bytes of JSON) and two ordinary ones.
var documentShapes = []struct {
	name      string
	keys, val int
}{
	{"tiny-keys", 95_000, 1},
	{"1KiB-values", 1_000, 1_000},
	{"one-value", 1, 1 << 20},
}

// BenchmarkDocumentMemory reports, as multiples of a document's JSON size,
// the heap a stored document costs (current value), one version of it in
// the change history (every key replaced), and an idempotency entry for a
// write of it. These are the README's per-document figures.
func BenchmarkDocumentMemory(b *testing.B) {
	for _, shape := range documentShapes {
		b.Run(shape.name, func(b *testing.B) {
			v1, v2 := bigValue(shape.keys, shape.val), bigValue(shape.keys, shape.val)
			for i := range v2 {
				if v2[i] == 'x' {
					v2[i] = 'y' // every value changes
				}
			}
			size := float64(len(v1))
			for i := 0; i < b.N; i++ {
				s := New()
				apply := func(p Payload, key string, index uint64) {
					data, err := Encode(Command{Payload: p, IdempotencyKey: key, Time: 1, KeyWindow: time.Hour, MaxDocSize: 2 << 20})
					if err != nil {
						b.Fatal(err)
					}
					if r := s.Apply(index, data); r.Err != nil {
						b.Fatal(r.Err)
					}
				}
				first := heapGrowth(func() { apply(DocPut{Name: "d", Value: v1}, "", 1) })
				version := heapGrowth(func() { apply(DocPut{Name: "d", Value: v2}, "", 2) })
				idem := heapGrowth(func() { apply(DocPut{Name: "d", Value: v1}, "key", 3) })
				// The third put is one more version besides its key.
				b.ReportMetric(float64(first)/size, "stored×size")
				b.ReportMetric(float64(version)/size, "version×size")
				b.ReportMetric(float64(idem-version)/size, "idemkey×size")
				b.ReportMetric(size, "doc-bytes")
				runtime.KeepAlive(s)
				runtime.KeepAlive(v1) // inputs freed inside heapGrowth would offset the growth
				runtime.KeepAlive(v2)
			}
		})
	}
}

// BenchmarkObjectMemory reports the heap one stored object of each small
// kind costs, with names of the length shown: the README's per-object
// figures. A counter is the 14-character "counter-000001" after one next; a
// queue member is "host-000001.example" with two short tags; a session has
// a 36-character ID and a short name; a token has one rule.
func BenchmarkObjectMemory(b *testing.B) {
	const n = 50_000
	kinds := []struct {
		name    string
		payload func(i int) Payload
	}{
		{"counter", func(i int) Payload { return CounterNext{ID: fmt.Sprintf("counter-%06d", i), Count: 1} }},
		{"queue-member", func(i int) Payload {
			return QueueJoin{ID: "members", ProcessID: fmt.Sprintf("host-%06d.example", i), Tags: map[string]string{"zone": "a", "role": "db"}}
		}},
		{"session", func(i int) Payload {
			return SessionCreate{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i), Name: "worker", TTL: 10 * time.Second}
		}},
		{"ephemeral-member", func(i int) Payload {
			return QueueJoin{ID: "members", ProcessID: fmt.Sprintf("host-%06d.example", i), Tags: map[string]string{"zone": "a", "role": "db"},
				Session: fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)}
		}},
		{"acl-token", func(i int) Payload {
			return ACLTokenCreate{Accessor: fmt.Sprintf("%036d", i), SecretHash: SecretHash{1, byte(i), byte(i >> 8), byte(i >> 16)},
				Description: "minter", Rules: []ACLRule{{Resource: "counters", Prefix: "orders-", Access: "write"}}}
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := New()
				var index uint64
				apply := func(p Payload) {
					data, err := Encode(Command{Payload: p, Time: 1, KeyWindow: time.Hour})
					if err != nil {
						b.Fatal(err)
					}
					index++
					if r := s.Apply(index, data); r.Err != nil {
						b.Fatal(r.Err)
					}
				}
				switch k.name {
				case "acl-token":
					apply(ACLBootstrap{Accessor: "boot", SecretHash: SecretHash{0xff}})
				case "ephemeral-member":
					// Each member in a session of its own, the sessions
					// not measured, and the session → queues index built
					// (as it is once any session has ended).
					for j := range n {
						apply(SessionCreate{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", j, j), Name: "worker", TTL: 10 * time.Second})
					}
					s.rebuildSessionQueues()
				}
				cmds := make([]Payload, n)
				for j := range cmds {
					cmds[j] = k.payload(j)
				}
				grew := heapGrowth(func() {
					for _, p := range cmds {
						apply(p)
					}
				})
				b.ReportMetric(float64(grew)/n, "bytes/object")
				runtime.KeepAlive(s)
				runtime.KeepAlive(cmds) // freed inside heapGrowth, they would offset the growth
			}
		})
	}
}
