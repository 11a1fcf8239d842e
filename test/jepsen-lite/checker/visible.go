package checker

import (
	"github.com/countd/countd/test/jepsen-lite/history"
)

// ackedVisible checks the final reads, taken after every fault was
// healed, against every acknowledged write: a counter is at least the
// value any acknowledged write left it at (the workload never lowers a
// counter), a document at least at the last acknowledged version (holding
// that write's token if exactly at it), a queue holds every process whose
// join was acknowledged and that never tried to leave and none whose leave
// was acknowledged, and a tenant counts at least every acknowledged item.
// An object with acknowledged writes and no final read is a violation too:
// nothing shows its writes survived.
func ackedVisible(h *history.History, res *Result) {
	final := map[history.F]map[string]history.Op{}
	for _, op := range h.Ops {
		if op.In.Final && op.Outcome == history.OK {
			if final[op.F] == nil {
				final[op.F] = map[string]history.Op{}
			}
			final[op.F][op.Key] = op
		}
	}
	countersVisible(h, final[history.FGet], res)
	docsVisible(h, final[history.FDocGet], res)
	queuesVisible(h, final[history.FQueueGet], res)
	itemsVisible(h, final[history.FItemsCount], res)
}

func countersVisible(h *history.History, final map[string]history.Op, res *Result) {
	highest := map[string]history.Op{} // the acknowledged write that left the highest value
	after := func(op history.Op) int64 {
		if op.F == history.FNext {
			return op.Out.Last
		}
		return op.Out.Value
	}
	for _, op := range h.Ops {
		if op.Outcome != history.OK || (op.F != history.FNext && op.F != history.FAdd && op.F != history.FCAS) {
			continue
		}
		if best, ok := highest[op.Key]; !ok || after(op) > after(best) {
			highest[op.Key] = op
		}
	}
	for _, key := range sortedKeys(highest) {
		w := highest[key]
		r, ok := final[key]
		switch {
		case !ok:
			res.add(CheckAckedVisible, key, "counter %s has acknowledged writes but no final read", key)
		case r.Out.Value < after(w):
			res.add(CheckAckedVisible, key, "lost acknowledged write: op %d (%s, process %d) left counter %s at %d, the final read says %d",
				w.ID, w.F, w.Process, key, after(w), r.Out.Value)
		}
	}
}

func docsVisible(h *history.History, final map[string]history.Op, res *Result) {
	highest := map[string]history.Op{}
	byVersion := map[string]map[uint64]history.Op{}
	for _, op := range h.Ops {
		if op.F != history.FDocCAS || op.Outcome != history.OK {
			continue
		}
		if best, ok := highest[op.Key]; !ok || op.Out.Version > best.Out.Version {
			highest[op.Key] = op
		}
		if byVersion[op.Key] == nil {
			byVersion[op.Key] = map[uint64]history.Op{}
		}
		byVersion[op.Key][op.Out.Version] = op
	}
	for _, key := range sortedKeys(highest) {
		w := highest[key]
		r, ok := final[key]
		if !ok {
			res.add(CheckAckedVisible, key, "document %s has acknowledged writes but no final read", key)
			continue
		}
		if r.Out.Version < w.Out.Version {
			res.add(CheckAckedVisible, key, "lost acknowledged write: op %d (process %d) made document %s version %d, the final read says version %d",
				w.ID, w.Process, key, w.Out.Version, r.Out.Version)
			continue
		}
		if at, ok := byVersion[key][r.Out.Version]; ok && at.In.Doc != r.Out.Doc {
			res.add(CheckAckedVisible, key, "document %s version %d holds %q, but op %d (process %d) was acknowledged as writing %q at that version",
				key, r.Out.Version, r.Out.Doc, at.ID, at.Process, at.In.Doc)
		}
	}
}

func queuesVisible(h *history.History, final map[string]history.Op, res *Result) {
	type proc struct {
		okJoin, okLeave   *history.Op
		joins, leaveTries []history.Op // joins that may have happened; leaves that may have
	}
	queues := map[string]map[string]*proc{}
	written := map[string]bool{}
	for _, op := range h.Ops {
		if (op.F != history.FJoin && op.F != history.FLeave) || op.Outcome == history.Failed {
			continue
		}
		if queues[op.Key] == nil {
			queues[op.Key] = map[string]*proc{}
		}
		p := queues[op.Key][op.In.Process]
		if p == nil {
			p = &proc{}
			queues[op.Key][op.In.Process] = p
		}
		if op.Outcome == history.OK {
			written[op.Key] = true
		}
		switch op.F {
		case history.FJoin:
			p.joins = append(p.joins, op)
			if op.Outcome == history.OK {
				p.okJoin = &op
			}
		case history.FLeave:
			p.leaveTries = append(p.leaveTries, op)
			if op.Outcome == history.OK {
				p.okLeave = &op
			}
		}
	}
	for _, key := range sortedKeys(queues) {
		r, ok := final[key]
		if !ok {
			if written[key] {
				res.add(CheckAckedVisible, key, "queue %s has acknowledged writes but no final read", key)
			}
			continue
		}
		members := map[string]bool{}
		for _, m := range r.Out.Members {
			members[m.Process] = true
			if queues[key][m.Process] == nil || len(queues[key][m.Process].joins) == 0 {
				res.add(CheckAckedVisible, key, "queue %s's final read has member %s, whose join never happened or was refused", key, m.Process)
			}
		}
		for _, name := range sortedKeys(queues[key]) {
			p := queues[key][name]
			joinedLater := p.okLeave != nil && anyInvokedAfter(p.joins, p.okLeave.Invoke)
			switch {
			case p.okJoin != nil && len(p.leaveTries) == 0 && !members[name]:
				res.add(CheckAckedVisible, key, "lost acknowledged join: op %d (process %d) put %s into queue %s; it never left, but the final read does not list it",
					p.okJoin.ID, p.okJoin.Process, name, key)
			case p.okLeave != nil && !joinedLater && members[name]:
				res.add(CheckAckedVisible, key, "lost acknowledged leave: op %d (process %d) took %s out of queue %s, but the final read still lists it",
					p.okLeave.ID, p.okLeave.Process, name, key)
			}
		}
	}
}

func anyInvokedAfter(ops []history.Op, t int64) bool {
	for _, op := range ops {
		if op.Invoke > t {
			return true
		}
	}
	return false
}

func itemsVisible(h *history.History, final map[string]history.Op, res *Result) {
	acked := map[string]map[string]bool{}
	for _, op := range h.Ops {
		if op.F != history.FItemsAdd || op.Outcome != history.OK {
			continue
		}
		if acked[op.Key] == nil {
			acked[op.Key] = map[string]bool{}
		}
		for _, id := range op.In.Items {
			acked[op.Key][id] = true
		}
	}
	for _, tenant := range sortedKeys(acked) {
		r, ok := final[tenant]
		switch {
		case !ok:
			res.add(CheckAckedVisible, tenant, "tenant %s has acknowledged items but no final count", tenant)
		case r.Out.Count < int64(len(acked[tenant])):
			res.add(CheckAckedVisible, tenant, "lost acknowledged items: %d distinct item IDs of tenant %s were acknowledged, the final count is %d",
				len(acked[tenant]), tenant, r.Out.Count)
		}
	}
}
