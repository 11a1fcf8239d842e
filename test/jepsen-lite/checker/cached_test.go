package checker

import (
	"testing"

	"github.com/countd/countd/test/jepsen-lite/history"
)

func next(first, last int64) opt { return out(history.Output{First: first, Last: last}) }
func count(n int64) opt          { return in(history.Input{Count: n}) }
func value(v int64) opt          { return out(history.Output{Value: v}) }

func TestCachedCounterAllowsGapsAndBlockEnds(t *testing.T) {
	b := &builder{}
	// Leader 1 mints from a block 1..20.
	b.add(0, history.FNext, "cc1", 0, 10, ok, count(1), next(1, 1))
	b.add(1, history.FNext, "cc1", 11, 20, ok, count(2), next(2, 3))
	b.add(0, history.FGet, "cc1", 21, 30, ok, value(3)) // the leader shows the last value minted
	// A new leader skips the rest of the block: reads show its end, then
	// mints start above it.
	b.add(1, history.FGet, "cc1", 31, 40, ok, value(20))
	b.add(0, history.FNext, "cc1", 41, 50, ok, count(1), next(21, 21))
	// A CAS that found the block's end leaves the floor; one aimed at it
	// wins and moves the counter there.
	b.add(1, history.FCAS, "cc1", 51, 60, failed, in(history.Input{IfValue: 21, Value: 23}), value(40), errText("conflict: value is 40"))
	b.add(1, history.FGet, "cc1", 61, 70, ok, value(21))
	b.add(1, history.FCAS, "cc1", 71, 80, ok, in(history.Input{IfValue: 40, Value: 42}), value(42))
	b.add(0, history.FAdd, "cc1", 81, 90, ok, in(history.Input{Delta: 3}), value(45))
	b.add(0, history.FNext, "cc1", 91, 100, ok, count(1), next(46, 46))
	// Unknown outcomes may or may not have happened.
	b.add(1, history.FNext, "cc1", 101, 110, unknown, count(5))
	b.add(0, history.FNext, "cc1", 111, 120, ok, count(1), next(80, 80))
	res := b.run(lin(""))
	wantClean(t, res)
	if len(res.Keys) != 1 || res.Keys[0].Kind != "cached-counter" {
		t.Fatalf("keys %+v, want one cached-counter", res.Keys)
	}
}

func TestCachedCounterFlagsWhatSPECForbids(t *testing.T) {
	for name, b := range map[string]*builder{
		// A next that began after another finished returned a smaller value.
		"a later next goes back": new(builder).
			add(0, history.FNext, "cc1", 0, 10, ok, count(1), next(5, 5)).
			add(1, history.FNext, "cc1", 20, 30, ok, count(1), next(3, 3)),
		// A read after a mint shows less than what was minted.
		"a read misses a mint": new(builder).
			add(0, history.FNext, "cc1", 0, 10, ok, count(1), next(7, 7)).
			add(1, history.FGet, "cc1", 20, 30, ok, value(6)),
		// A next after a read returns a value the read already covered.
		"a next below a read": new(builder).
			add(1, history.FGet, "cc1", 0, 10, ok, value(20)).
			add(0, history.FNext, "cc1", 20, 30, ok, count(1), next(15, 15)),
		// An add's answer below what was minted before it.
		"an add below a mint": new(builder).
			add(0, history.FNext, "cc1", 0, 10, ok, count(1), next(7, 7)).
			add(1, history.FAdd, "cc1", 20, 30, ok, in(history.Input{Delta: 1}), value(5)),
		// A range whose length differs from its count.
		"a short range": new(builder).
			add(0, history.FNext, "cc1", 0, 10, ok, count(3), next(1, 2)),
	} {
		t.Run(name, func(t *testing.T) {
			wantFlagged(t, b.run(lin("")), CheckLinearizable, "cached-counter cc1 is not linearizable")
		})
	}
	// Two mints of one value are flagged by the direct check too.
	dup := new(builder).
		add(0, history.FNext, "cc1", 0, 10, ok, count(1), next(4, 4)).
		add(1, history.FNext, "cc1", 5, 15, ok, count(1), next(4, 4))
	wantFlagged(t, dup.run(uniqueIDs), CheckUniqueIDs, "minted twice")
}
