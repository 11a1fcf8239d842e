package checker

import (
	"maps"
	"slices"
	"sort"

	"github.com/countd/countd/test/jepsen-lite/history"
)

// uniqueIDs checks that no two acknowledged nexts minted the same ID: the
// ranges [First, Last] of every key's successful nexts must not overlap.
// IDs are per counter, so an ID is the pair (key, value); every key is
// checked.
func uniqueIDs(h *history.History, res *Result) {
	byKey := map[string][]history.Op{}
	for _, op := range h.Ops {
		if op.F == history.FNext && op.Outcome == history.OK {
			byKey[op.Key] = append(byKey[op.Key], op)
		}
	}
	for _, key := range sortedKeys(byKey) {
		ops := byKey[key]
		for _, op := range ops {
			if op.Out.Last < op.Out.First || op.Out.Last-op.Out.First+1 != op.In.Count {
				res.add(CheckUniqueIDs, key, "op %d asked for %d IDs but got the range %d..%d", op.ID, op.In.Count, op.Out.First, op.Out.Last)
			}
		}
		sort.SliceStable(ops, func(i, j int) bool { return ops[i].Out.First < ops[j].Out.First })
		// reach is the op whose range ends furthest among those seen so far.
		for i, reach := 1, 0; i < len(ops); i++ {
			if ops[i].Out.First <= ops[reach].Out.Last {
				a, b := ops[reach], ops[i]
				res.add(CheckUniqueIDs, key, "ID %d minted twice: op %d (process %d) got %d..%d and op %d (process %d) got %d..%d",
					b.Out.First, a.ID, a.Process, a.Out.First, a.Out.Last, b.ID, b.Process, b.Out.First, b.Out.Last)
			}
			if ops[i].Out.Last > ops[reach].Out.Last {
				reach = i
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
