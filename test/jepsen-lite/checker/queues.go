package checker

import (
	"sort"

	"github.com/countd/countd/test/jepsen-lite/history"
)

// queues checks every queue's invariants:
//   - each successful read lists members in counter order with distinct
//     counters and dense positions 0..n-1;
//   - no two processes' acknowledged joins got the same counter (the
//     workload never configures reuse, so counters are never handed out
//     twice);
//   - fencing tokens follow real time: an acknowledged join or leave
//     invoked after another acknowledged queue operation completed carries
//     a strictly larger token, a read an equal or larger one. (Every
//     acknowledged join and leave of the workload is effective: each
//     process joins once and leaves at most once, after its join was
//     acknowledged.)
func queues(h *history.History, res *Result) {
	byKey := map[string][]history.Op{}
	for _, op := range h.Ops {
		if op.Outcome != history.OK {
			continue
		}
		switch op.F {
		case history.FJoin, history.FLeave, history.FQueueGet:
			byKey[op.Key] = append(byKey[op.Key], op)
		}
	}
	for _, key := range sortedKeys(byKey) {
		ops := byKey[key]
		queueReads(key, ops, res)
		queueCounters(key, ops, res)
		fencing(key, ops, res)
	}
}

func queueReads(key string, ops []history.Op, res *Result) {
	for _, op := range ops {
		if op.F != history.FQueueGet {
			continue
		}
		for i, m := range op.Out.Members {
			if m.Position != i {
				res.add(CheckQueue, key, "read op %d (process %d): member %s is at position %d, want %d (positions must be 0..%d in order)",
					op.ID, op.Process, m.Process, m.Position, i, len(op.Out.Members)-1)
			}
			if i > 0 && m.Counter <= op.Out.Members[i-1].Counter {
				res.add(CheckQueue, key, "read op %d (process %d): member %s has counter %d after %s with counter %d (counters must be distinct and ascending)",
					op.ID, op.Process, m.Process, m.Counter, op.Out.Members[i-1].Process, op.Out.Members[i-1].Counter)
			}
		}
	}
}

func queueCounters(key string, ops []history.Op, res *Result) {
	owner := map[int64]history.Op{}
	for _, op := range ops {
		if op.F != history.FJoin {
			continue
		}
		if o, ok := owner[op.Out.Counter]; ok && o.In.Process != op.In.Process {
			res.add(CheckQueue, key, "counter %d handed to two processes: %s (op %d) and %s (op %d)",
				op.Out.Counter, o.In.Process, o.ID, op.In.Process, op.ID)
		}
		owner[op.Out.Counter] = op
	}
}

func fencing(key string, ops []history.Op, res *Result) {
	byComplete := append([]history.Op(nil), ops...)
	sort.SliceStable(byComplete, func(i, j int) bool { return byComplete[i].Complete < byComplete[j].Complete })
	byInvoke := append([]history.Op(nil), ops...)
	sort.SliceStable(byInvoke, func(i, j int) bool { return byInvoke[i].Invoke < byInvoke[j].Invoke })
	// top is the completed op with the largest token so far.
	var top *history.Op
	next := 0
	for _, b := range byInvoke {
		for ; next < len(byComplete) && byComplete[next].Complete < b.Invoke; next++ {
			if top == nil || byComplete[next].Out.Token > top.Out.Token {
				top = &byComplete[next]
			}
		}
		if top == nil {
			continue
		}
		switch {
		case b.F != history.FQueueGet && b.Out.Token <= top.Out.Token:
			res.add(CheckQueue, key, "fencing token went backwards: %s op %d (process %d) got token %d, but %s op %d (process %d) had already completed with token %d",
				b.F, b.ID, b.Process, b.Out.Token, top.F, top.ID, top.Process, top.Out.Token)
		case b.F == history.FQueueGet && b.Out.Token < top.Out.Token:
			res.add(CheckQueue, key, "stale queue read: op %d (process %d) saw token %d, but %s op %d (process %d) had already completed with token %d",
				b.ID, b.Process, b.Out.Token, top.F, top.ID, top.Process, top.Out.Token)
		}
	}
}
