package checker

import (
	"sort"

	"github.com/countd/countd/test/jepsen-lite/history"
)

// items checks every successful count of a tenant against the batches
// around it: it must include every distinct item ID of the batches
// acknowledged before the count was asked, and may include at most the
// distinct IDs of the batches (acknowledged or of unknown outcome) asked
// before it answered. For the final counts this is "exact, plus at most
// the unknown ones".
func items(h *history.History, res *Result) {
	batches := map[string][]history.Op{}
	counts := map[string][]history.Op{}
	for _, op := range h.Ops {
		switch {
		case op.F == history.FItemsAdd && op.Outcome != history.Failed:
			batches[op.Key] = append(batches[op.Key], op)
		case op.F == history.FItemsCount && op.Outcome == history.OK:
			counts[op.Key] = append(counts[op.Key], op)
		}
	}
	for _, tenant := range sortedKeys(counts) {
		lowerBounds(tenant, batches[tenant], counts[tenant], res)
		upperBounds(tenant, batches[tenant], counts[tenant], res)
	}
}

// lowerBounds: a count sees every item acknowledged before it was asked.
func lowerBounds(tenant string, batches, counts []history.Op, res *Result) {
	acked := make([]history.Op, 0, len(batches))
	for _, b := range batches {
		if b.Outcome == history.OK {
			acked = append(acked, b)
		}
	}
	sort.SliceStable(acked, func(i, j int) bool { return acked[i].Complete < acked[j].Complete })
	counts = append([]history.Op(nil), counts...)
	sort.SliceStable(counts, func(i, j int) bool { return counts[i].Invoke < counts[j].Invoke })
	seen := map[string]bool{}
	next := 0
	for _, c := range counts {
		for ; next < len(acked) && acked[next].Complete < c.Invoke; next++ {
			for _, id := range acked[next].In.Items {
				seen[id] = true
			}
		}
		if c.Out.Count < int64(len(seen)) {
			res.add(CheckItems, tenant, "count op %d (process %d) says %d, but %d distinct items of tenant %s were acknowledged before it was asked",
				c.ID, c.Process, c.Out.Count, len(seen), tenant)
		}
	}
}

// upperBounds: a count sees no item that nobody had tried to add before it
// answered.
func upperBounds(tenant string, batches, counts []history.Op, res *Result) {
	batches = append([]history.Op(nil), batches...)
	sort.SliceStable(batches, func(i, j int) bool { return batches[i].Invoke < batches[j].Invoke })
	counts = append([]history.Op(nil), counts...)
	sort.SliceStable(counts, func(i, j int) bool { return counts[i].Complete < counts[j].Complete })
	tried := map[string]bool{}
	next := 0
	for _, c := range counts {
		for ; next < len(batches) && batches[next].Invoke < c.Complete; next++ {
			for _, id := range batches[next].In.Items {
				tried[id] = true
			}
		}
		if c.Out.Count > int64(len(tried)) {
			res.add(CheckItems, tenant, "count op %d (process %d) says %d, but only %d distinct items of tenant %s had been sent (acknowledged or unknown) when it answered",
				c.ID, c.Process, c.Out.Count, len(tried), tenant)
		}
	}
}
