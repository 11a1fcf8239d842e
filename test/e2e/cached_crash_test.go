package e2e

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/harness"
)

// TestCachedCounterSurvivesKillingEveryNode mints from a cached counter
// (values from the leader's memory, blocks of 50 reserved in the log) with
// eight clients and kill -9s all three nodes at once, twice. After each
// restart the first mint must be above every acknowledged value, and no
// acknowledged value may have been handed out twice: whatever the leader
// held in memory is lost, and only gaps may show it.
func TestCachedCounterSurvivesKillingEveryNode(t *testing.T) {
	c := formCluster(t)
	cl := newClient(t, c)
	setup, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	cache := int64(50)
	if _, err := cl.Set(setup, "cached", api.SetRequest{Cache: &cache}); err != nil {
		t.Fatal(err)
	}
	cancel()

	var (
		mu  sync.Mutex
		ids []int64
	)
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(ids) }
	for round := 1; round <= 2; round++ {
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					m, err := cl.Next(ctx, "cached", 1)
					if err != nil {
						continue // unacknowledged: at most a gap
					}
					mu.Lock()
					ids = append(ids, m.Value)
					mu.Unlock()
				}
			}()
		}
		before := count()
		harness.WaitFor(t, 30*time.Second, "500 cached mints", func() bool { return count()-before >= 500 })
		for _, n := range c.Nodes {
			n.MustKill(t)
		}
		stop()
		wg.Wait()
		mu.Lock()
		maxAcked := slices.Max(ids)
		mu.Unlock()

		if err := c.StartAll(); err != nil {
			t.Fatal(err)
		}
		c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
		cl = newClient(t, c)
		rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
		ctr, err := cl.Counter(rctx, "cached")
		if err != nil {
			rcancel()
			t.Fatalf("round %d: read after restart: %v", round, err)
		}
		m, err := cl.Next(rctx, "cached", 1)
		rcancel()
		if err != nil {
			t.Fatalf("round %d: mint after restart: %v", round, err)
		}
		if ctr.Value < maxAcked || m.Value <= maxAcked {
			t.Fatalf("DUPLICATE (round %d): after every node was killed the counter reads %d and mints %d, but %d was acknowledged",
				round, ctr.Value, m.Value, maxAcked)
		}
		mu.Lock()
		ids = append(ids, m.Value)
		mu.Unlock()
		t.Logf("round %d: kill -9 of all 3 nodes after %d cached mints (highest %d); after restart the counter reads %d and the next mint is %d",
			round, count()-before, maxAcked, ctr.Value, m.Value)
	}
	seen := make(map[int64]bool, len(ids))
	for _, v := range ids {
		if seen[v] {
			t.Fatalf("DUPLICATE acknowledged value %d", v)
		}
		seen[v] = true
	}
}
