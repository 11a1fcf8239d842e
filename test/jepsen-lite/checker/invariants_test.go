package checker

import (
	"testing"

	"github.com/countd/countd/test/jepsen-lite/history"
)

func mint(b *builder, p int, key string, t, first, last int64) *builder {
	return b.add(p, history.FNext, key, t, t+5, ok, in(history.Input{Count: last - first + 1}), out(history.Output{First: first, Last: last}))
}

func TestUniqueIDs(t *testing.T) {
	good := &builder{}
	mint(good, 0, "a", 0, 1, 1)
	mint(good, 1, "a", 10, 2, 4)
	mint(good, 0, "a", 20, 5, 5)
	mint(good, 1, "b", 0, 1, 3) // another counter mints its own 1, 2, 3
	good.add(2, history.FNext, "a", 30, 40, unknown, in(history.Input{Count: 2}))
	wantClean(t, good.run(uniqueIDs))

	for name, tc := range map[string]struct {
		b    *builder
		part string
	}{
		"same ID twice":            {mint(mint(new(builder), 0, "a", 0, 1, 1), 1, "a", 10, 1, 1), "ID 1 minted twice"},
		"overlapping ranges":       {mint(mint(new(builder), 0, "a", 0, 1, 2), 1, "a", 10, 2, 3), "ID 2 minted twice"},
		"range inside a range":     {mint(mint(mint(new(builder), 0, "a", 0, 1, 5), 1, "a", 10, 6, 6), 2, "a", 20, 3, 3), "ID 3 minted twice"},
		"range of the wrong width": {new(builder).add(0, history.FNext, "a", 0, 5, ok, in(history.Input{Count: 3}), out(history.Output{First: 1, Last: 2})), "asked for 3 IDs"},
	} {
		t.Run(name, func(t *testing.T) { wantFlagged(t, tc.b.run(uniqueIDs), CheckUniqueIDs, tc.part) })
	}
}

func TestAckedWritesVisibleInFinalReads(t *testing.T) {
	base := func() *builder {
		b := &builder{}
		mint(b, 0, "c", 0, 1, 3)
		b.add(1, history.FAdd, "c", 10, 20, unknown, in(history.Input{Delta: 4}))
		b.add(0, history.FDocCAS, "d", 0, 10, ok, in(history.Input{IfVersion: 0, Doc: "x"}), out(history.Output{Version: 1, Doc: "x"}))
		b.add(0, history.FJoin, "q", 0, 10, ok, in(history.Input{Process: "p1"}), out(history.Output{Token: 1, Counter: 1}))
		b.add(0, history.FJoin, "q", 11, 20, ok, in(history.Input{Process: "p2"}), out(history.Output{Token: 2, Counter: 2}))
		b.add(0, history.FLeave, "q", 21, 30, ok, in(history.Input{Process: "p2"}), out(history.Output{Token: 3}))
		b.add(1, history.FJoin, "q", 21, 30, unknown, in(history.Input{Process: "p3"}))
		b.add(1, history.FItemsAdd, "t", 0, 10, ok, in(history.Input{Items: []string{"i1", "i2", "i2"}}))
		return b
	}
	finals := func(b *builder, counter int64, version uint64, doc string, members []history.Member, items int64) *builder {
		b.add(9, history.FGet, "c", 100, 110, ok, final(), out(history.Output{Value: counter}))
		b.add(9, history.FDocGet, "d", 100, 110, ok, final(), out(history.Output{Version: version, Doc: doc}))
		b.add(9, history.FQueueGet, "q", 100, 110, ok, final(), out(history.Output{Token: 3, Members: members}))
		b.add(9, history.FItemsCount, "t", 100, 110, ok, final(), out(history.Output{Count: items}))
		return b
	}
	p1 := history.Member{Process: "p1", Counter: 1}
	p2 := history.Member{Process: "p2", Counter: 2, Position: 1}
	p3 := history.Member{Process: "p3", Counter: 3, Position: 1}
	ghost := history.Member{Process: "ghost", Counter: 9, Position: 1}

	// The unknown add and join may or may not show.
	wantClean(t, finals(base(), 3, 1, "x", []history.Member{p1}, 2).run(ackedVisible))
	wantClean(t, finals(base(), 7, 1, "x", []history.Member{p1, p3}, 2).run(ackedVisible))

	for name, tc := range map[string]struct {
		b    *builder
		part string
	}{
		"lost next":         {finals(base(), 2, 1, "x", []history.Member{p1}, 2), "lost acknowledged write: op 1 (next"},
		"lost doc version":  {finals(base(), 3, 0, "", []history.Member{p1}, 2), "made document d version 1"},
		"wrong doc content": {finals(base(), 3, 1, "y", []history.Member{p1}, 2), `holds "y"`},
		"lost join":         {finals(base(), 3, 1, "x", nil, 2), "lost acknowledged join"},
		"lost leave":        {finals(base(), 3, 1, "x", []history.Member{p1, p2}, 2), "lost acknowledged leave"},
		"phantom member":    {finals(base(), 3, 1, "x", []history.Member{p1, ghost}, 2), "member ghost"},
		"lost items":        {finals(base(), 3, 1, "x", []history.Member{p1}, 1), "lost acknowledged items"},
		"no final reads":    {base(), "no final read"},
	} {
		t.Run(name, func(t *testing.T) { wantFlagged(t, tc.b.run(ackedVisible), CheckAckedVisible, tc.part) })
	}
}

func TestQueueInvariants(t *testing.T) {
	join := func(b *builder, p int, proc string, t0, t1 int64, counter int64, token uint64) *builder {
		return b.add(p, history.FJoin, "q", t0, t1, ok, in(history.Input{Process: proc}), out(history.Output{Counter: counter, Token: token}))
	}
	read := func(b *builder, t0, t1 int64, token uint64, ms ...history.Member) *builder {
		return b.add(5, history.FQueueGet, "q", t0, t1, ok, out(history.Output{Token: token, Members: ms}))
	}
	good := &builder{}
	join(good, 0, "a", 0, 10, 1, 1)
	join(good, 1, "b", 5, 15, 2, 2) // concurrent with a's join
	read(good, 20, 30, 2, history.Member{Process: "a", Counter: 1}, history.Member{Process: "b", Counter: 2, Position: 1})
	good.add(0, history.FLeave, "q", 31, 40, ok, in(history.Input{Process: "a"}), out(history.Output{Token: 3}))
	read(good, 35, 45, 2, history.Member{Process: "a", Counter: 1}, history.Member{Process: "b", Counter: 2, Position: 1}) // concurrent with the leave
	read(good, 50, 60, 3, history.Member{Process: "b", Counter: 2})
	join(good, 0, "c", 61, 70, 3, 4)
	wantClean(t, good.run(queues))

	for name, tc := range map[string]struct {
		b    *builder
		part string
	}{
		"positions with a hole":  {read(new(builder), 0, 10, 2, history.Member{Process: "a", Counter: 1}, history.Member{Process: "b", Counter: 2, Position: 2}), "at position 2, want 1"},
		"duplicate counters":     {read(new(builder), 0, 10, 2, history.Member{Process: "a", Counter: 1}, history.Member{Process: "b", Counter: 1, Position: 1}), "counters must be distinct"},
		"counter handed twice":   {join(join(new(builder), 0, "a", 0, 10, 1, 1), 1, "b", 20, 30, 1, 2), "counter 1 handed to two processes"},
		"token did not rise":     {join(join(new(builder), 0, "a", 0, 10, 1, 1), 1, "b", 20, 30, 2, 1), "fencing token went backwards"},
		"stale read of a token":  {read(join(new(builder), 0, "a", 0, 10, 1, 1), 20, 30, 0), "stale queue read"},
		"leave with a low token": {join(new(builder), 0, "a", 0, 10, 1, 5).add(0, history.FLeave, "q", 20, 30, ok, in(history.Input{Process: "a"}), out(history.Output{Token: 4})), "fencing token went backwards"},
	} {
		t.Run(name, func(t *testing.T) { wantFlagged(t, tc.b.run(queues), CheckQueue, tc.part) })
	}
}

func TestItemCounts(t *testing.T) {
	batch := func(b *builder, t0, t1 int64, oc history.Outcome, ids ...string) *builder {
		return b.add(0, history.FItemsAdd, "t", t0, t1, oc, in(history.Input{Items: ids}))
	}
	count := func(b *builder, t0, t1 int64, n int64) *builder {
		return b.add(1, history.FItemsCount, "t", t0, t1, ok, out(history.Output{Count: n}))
	}
	base := func() *builder {
		b := &builder{}
		batch(b, 0, 10, ok, "a", "b")
		batch(b, 20, 30, ok, "b", "c") // b is a duplicate
		batch(b, 40, 50, unknown, "d")
		batch(b, 40, 50, failed, "e") // refused: never counted
		return b
	}
	wantClean(t, count(count(count(base(), 5, 15, 0), 35, 36, 3), 60, 70, 3).run(items))     // the unknown batch did not happen
	wantClean(t, count(count(count(base(), 5, 15, 2), 35, 36, 3), 60, 70, 4).run(items))     // it did
	wantClean(t, count(base(), 45, 46, 4).run(items))                                        // counted while in flight
	wantFlagged(t, count(base(), 35, 36, 2).run(items), CheckItems, "3 distinct items")      // lost c
	wantFlagged(t, count(base(), 60, 70, 5).run(items), CheckItems, "only 4 distinct items") // counted the refused e
	wantFlagged(t, count(base(), 1, 5, 3).run(items), CheckItems, "only 2 distinct items")   // counts c before anyone sent it
}
