package fsm

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkItemMemory reports the heap each stored item ID costs: 1,000,000
// IDs of the shape "item-%07d" added through log entries of 10,000 items,
// into one tenant and spread over 20 tenants.
func BenchmarkItemMemory(b *testing.B) {
	const (
		items     = 1_000_000
		batchSize = 10_000
	)
	for _, tenants := range []int{1, 20} {
		b.Run("tenants="+strconv.Itoa(tenants), func(b *testing.B) {
			names := make([]string, tenants)
			for i := range names {
				names[i] = fmt.Sprintf("tenant-%02d", i)
			}
			for i := 0; i < b.N; i++ {
				s := New()
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				index := uint64(0)
				for first := 0; first < items; first += batchSize {
					p := ItemsAdd{Items: make([]Item, 0, batchSize)}
					for k := first; k < first+batchSize; k++ {
						p.Items = append(p.Items, Item{Tenant: names[k%tenants], ID: fmt.Sprintf("item-%07d", k)})
					}
					data, err := Encode(Command{Payload: p, Time: 1, KeyWindow: time.Minute})
					if err != nil {
						b.Fatal(err)
					}
					index++
					if r := s.Apply(index, data); r.Err != nil || r.Value.(*ItemsAdded).Added != batchSize {
						b.Fatalf("batch %d: %+v", index, r)
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				var total int64
				for _, name := range names {
					tc, _ := s.TenantCount(name)
					total += tc.Count
				}
				if total != items {
					b.Fatalf("stored %d items, want %d", total, items)
				}
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/items, "B/item")
				runtime.KeepAlive(s)
			}
		})
	}
}
