package checker

import (
	"sort"

	"github.com/countd/countd/test/jepsen-lite/history"
)

// CheckLock is the name of the lock check.
const CheckLock = "lock"

// locks checks every lock key's acknowledged holds: no two clients ever
// believed they held the lock at the same time (their HeldFrom..HeldUntil
// intervals must not overlap), and each new holder's fencing token is
// larger than every earlier holder's.
func locks(h *history.History, res *Result) {
	byKey := map[string][]history.Op{}
	for _, op := range h.Ops {
		if op.F == history.FHold && op.Outcome == history.OK {
			byKey[op.Key] = append(byKey[op.Key], op)
		}
	}
	for _, key := range sortedKeys(byKey) {
		holds := byKey[key]
		sort.SliceStable(holds, func(i, j int) bool { return holds[i].Out.HeldFrom < holds[j].Out.HeldFrom })
		for i, b := range holds {
			if b.Out.HeldUntil < b.Out.HeldFrom {
				res.add(CheckLock, key, "op %d held the lock from %d to %d: it ends before it begins", b.ID, b.Out.HeldFrom, b.Out.HeldUntil)
			}
			if i == 0 {
				continue
			}
			a := holds[i-1]
			if b.Out.HeldFrom < a.Out.HeldUntil {
				res.add(CheckLock, key, "two holders at once: op %d (process %d, token %d) held it until %d, op %d (process %d, token %d) from %d",
					a.ID, a.Process, a.Out.Token, a.Out.HeldUntil, b.ID, b.Process, b.Out.Token, b.Out.HeldFrom)
			}
			if b.Out.Token <= a.Out.Token {
				res.add(CheckLock, key, "fencing token did not rise: op %d held it with token %d, the next holder op %d with token %d",
					a.ID, a.Out.Token, b.ID, b.Out.Token)
			}
		}
	}
}
