package e2e

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// acked collects what the server acknowledged, across kill rounds.
type acked struct {
	mu     sync.Mutex
	ids    []int64    // single mints on "ids"
	ranges []api.Mint // --count 100 mints on "ranges"
	errs   []error    // failures while the node was up
}

func (a *acked) counts() (int, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.ids), len(a.ranges)
}

// TestCrashKeepsAcknowledgedIDs kill -9s a single node while goroutines mint
// as fast as they can (single IDs on one counter, ranges of 100 on another),
// three times. After each restart the counters must cover every
// acknowledged ID, new mints must be above all of them, and no acknowledged
// ID may have been handed out twice.
func TestCrashKeepsAcknowledgedIDs(t *testing.T) {
	c := newCluster(t, 1, false)
	n := c.Nodes[0]
	n.MustStart(t)
	c.MustWaitConverged(t, c.Nodes, 1, 30*time.Second)

	const (
		singleWorkers = 4
		rangeWorkers  = 4
		rangeCount    = 100
	)
	var a acked
	for round := 1; round <= 3; round++ {
		cl, err := client.New(client.Config{Addrs: []string{n.URL()}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		worker := func(counter string, count int64) {
			defer wg.Done()
			for ctx.Err() == nil {
				m, err := cl.Next(ctx, counter, count)
				if err != nil {
					if ctx.Err() == nil {
						a.mu.Lock()
						a.errs = append(a.errs, fmt.Errorf("next %s while the node was up: %w", counter, err))
						a.mu.Unlock()
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				a.mu.Lock()
				if count == 1 {
					a.ids = append(a.ids, m.Value)
				} else {
					a.ranges = append(a.ranges, *m)
				}
				a.mu.Unlock()
			}
		}
		beforeIDs, beforeRanges := a.counts()
		for range singleWorkers {
			wg.Add(1)
			go worker("ids", 1)
		}
		for range rangeWorkers {
			wg.Add(1)
			go worker("ranges", rangeCount)
		}

		// Kill while they are minting, once both kinds made progress.
		deadline := time.Now().Add(30 * time.Second)
		for {
			i, r := a.counts()
			if i-beforeIDs >= 300 && r-beforeRanges >= 30 {
				break
			}
			if time.Now().After(deadline) {
				cancel()
				wg.Wait()
				t.Fatalf("round %d: minting too slow: %d single and %d range mints in 30s; errors: %v", round, i-beforeIDs, r-beforeRanges, a.errs)
			}
			time.Sleep(5 * time.Millisecond)
		}
		n.MustKill(t)
		cancel() // calls in flight fail: their IDs were never acknowledged
		wg.Wait()

		a.mu.Lock()
		maxID := slices.Max(a.ids)
		var maxRange int64
		for _, m := range a.ranges {
			maxRange = max(maxRange, m.Value)
		}
		roundIDs, roundRanges := len(a.ids)-beforeIDs, len(a.ranges)-beforeRanges
		a.mu.Unlock()

		restart := time.Now()
		n.MustStart(t)
		c.MustWaitConverged(t, c.Nodes, 1, 30*time.Second)
		cl, err = client.New(client.Config{Addrs: []string{n.URL()}})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
		ids, err := cl.Counter(rctx, "ids")
		if err != nil {
			rcancel()
			t.Fatalf("round %d: read ids after restart: %v", round, err)
		}
		ranges, err := cl.Counter(rctx, "ranges")
		if err != nil {
			rcancel()
			t.Fatalf("round %d: read ranges after restart: %v", round, err)
		}
		if ids.Value < maxID {
			t.Errorf("LOST ACKNOWLEDGED WRITES (round %d): after kill -9 and restart counter ids = %d, but ID %d was acknowledged", round, ids.Value, maxID)
		}
		if ranges.Value < maxRange {
			t.Errorf("LOST ACKNOWLEDGED WRITES (round %d): after kill -9 and restart counter ranges = %d, but a range up to %d was acknowledged", round, ranges.Value, maxRange)
		}
		next, err := cl.Next(rctx, "ids", 1)
		if err != nil {
			rcancel()
			t.Fatalf("round %d: mint after restart: %v", round, err)
		}
		nextRange, err := cl.Next(rctx, "ranges", rangeCount)
		rcancel()
		if err != nil {
			t.Fatalf("round %d: range mint after restart: %v", round, err)
		}
		if next.Value <= maxID {
			t.Errorf("DUPLICATE (round %d): first mint after restart returned %d, but %d was acknowledged before the crash", round, next.Value, maxID)
		}
		if nextRange.First <= maxRange {
			t.Errorf("DUPLICATE (round %d): first range after restart is %d..%d, but a range up to %d was acknowledged before the crash", round, nextRange.First, nextRange.Value, maxRange)
		}
		a.mu.Lock()
		a.ids = append(a.ids, next.Value)
		a.ranges = append(a.ranges, *nextRange)
		a.mu.Unlock()
		t.Logf("round %d: kill -9 after %d single and %d range mints; max acknowledged ids=%d ranges=%d; after restart (%v) ids=%d ranges=%d; next mints %d and %d..%d",
			round, roundIDs, roundRanges, maxID, maxRange, time.Since(restart).Round(time.Millisecond), ids.Value, ranges.Value, next.Value, nextRange.First, nextRange.Value)
	}

	for _, err := range a.errs {
		t.Errorf("unexpected error while the node was up: %v", err)
	}
	checkNoDuplicates(t, a.ids, a.ranges)
}

func checkNoDuplicates(t *testing.T, ids []int64, ranges []api.Mint) {
	t.Helper()
	seen := make(map[int64]bool, len(ids))
	dups := 0
	for _, v := range ids {
		if seen[v] {
			dups++
			if dups <= 20 {
				t.Errorf("DUPLICATE acknowledged ID %d on counter ids", v)
			}
		}
		seen[v] = true
	}
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b api.Mint) int { return cmp.Compare(a.First, b.First) })
	var errs []error
	for i, m := range rs {
		if m.Count != 100 || m.Step != 1 || m.Value-m.First != (m.Count-1)*m.Step {
			errs = append(errs, fmt.Errorf("malformed range %+v", m))
		}
		if i > 0 && m.First <= rs[i-1].Value {
			errs = append(errs, fmt.Errorf("DUPLICATE: acknowledged ranges %d..%d and %d..%d overlap", rs[i-1].First, rs[i-1].Value, m.First, m.Value))
		}
	}
	for i, err := range errs {
		if i == 20 {
			break
		}
		t.Error(err)
	}
	if err := errors.Join(errs...); err != nil || dups > 0 {
		t.Errorf("%d duplicate single IDs, %d range problems", dups, len(errs))
	}
	t.Logf("%d acknowledged single IDs and %d acknowledged ranges (%d IDs) checked: distinct", len(ids), len(ranges), len(ranges)*100)
}
