package checker

// Porcupine models of a counter and of a document, one key each.
//
// Unknown outcomes follow Jepsen: such an operation may or may not have
// happened. Its completion is set to +∞ (after every other event), so the
// checker may linearize it anywhere after its invocation — including after
// every operation that observed anything, which is the same as never
// happening. The model then only has to say what the operation does if it
// did happen; "did not happen" is the placement at the end. A nondeterministic
// model (apply and skip) would accept exactly the same histories but
// multiply the states porcupine must track by two per unknown operation.

import (
	"fmt"

	"github.com/anishathalye/porcupine"

	"github.com/countd/countd/test/jepsen-lite/history"
)

// counterIn is a counter operation's input in the model.
type counterIn struct {
	f       history.F
	count   int64
	delta   int64
	ifValue int64
	value   int64
}

// counterOut is a counter operation's output in the model.
type counterOut struct {
	outcome history.Outcome
	first   int64
	last    int64
	value   int64
}

// counterModel: the state is the counter's value (int64). The workload
// keeps increment 1 and offset 0, so next mints value+1 … value+count.
var counterModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(int64), input.(counterIn), output.(counterOut)
		unknown := out.outcome == history.Unknown
		switch in.f {
		case history.FGet:
			return out.value == s, s
		case history.FNext:
			if unknown {
				return true, s + in.count
			}
			return out.first == s+1 && out.last == s+in.count, out.last
		case history.FAdd:
			if unknown {
				return true, s + in.delta
			}
			return out.value == s+in.delta, out.value
		case history.FCAS:
			switch {
			case unknown && s == in.ifValue:
				return true, in.value
			case unknown:
				return true, s
			case out.outcome == history.Failed:
				// A conflict: the value it found differs from if_value and
				// is the value at that point.
				return s != in.ifValue && out.value == s, s
			default:
				return s == in.ifValue && out.value == in.value, in.value
			}
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(counterIn), output.(counterOut)
		res := ""
		switch {
		case out.outcome == history.Unknown:
			res = "?"
		case in.f == history.FNext:
			res = fmt.Sprintf("%d..%d", out.first, out.last)
		case out.outcome == history.Failed:
			res = fmt.Sprintf("conflict (was %d)", out.value)
		default:
			res = fmt.Sprint(out.value)
		}
		switch in.f {
		case history.FNext:
			return fmt.Sprintf("next(%d) → %s", in.count, res)
		case history.FAdd:
			return fmt.Sprintf("add(%d) → %s", in.delta, res)
		case history.FCAS:
			return fmt.Sprintf("cas(%d→%d) → %s", in.ifValue, in.value, res)
		}
		return "get → " + res
	},
}

// docState is a document's version (0: absent) and the token it holds.
type docState struct {
	version uint64
	doc     string
}

type docIn struct {
	f         history.F
	ifVersion uint64
	doc       string
}

type docOut struct {
	outcome history.Outcome
	version uint64
	doc     string
}

// docModel: reads see the version and token of the last write; a CAS
// write applies only at its If-Match version and makes the next version.
var docModel = porcupine.Model{
	Init: func() any { return docState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(docState), input.(docIn), output.(docOut)
		if in.f == history.FDocGet {
			return out.version == s.version && out.doc == s.doc, s
		}
		next := docState{version: in.ifVersion + 1, doc: in.doc}
		switch out.outcome {
		case history.Unknown:
			if s.version == in.ifVersion {
				return true, next
			}
			return true, s
		case history.Failed:
			return s.version != in.ifVersion, s
		}
		return s.version == in.ifVersion && out.version == next.version, next
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(docIn), output.(docOut)
		res := fmt.Sprintf("v%d %s", out.version, out.doc)
		switch out.outcome {
		case history.Unknown:
			res = "?"
		case history.Failed:
			res = "precondition failed"
		}
		if in.f == history.FDocGet {
			return "read → " + res
		}
		return fmt.Sprintf("put(if v%d, %s) → %s", in.ifVersion, in.doc, res)
	},
	DescribeState: func(state any) string {
		s := state.(docState)
		return fmt.Sprintf("v%d %s", s.version, s.doc)
	},
}

// CachedCounterPrefix starts the keys of cached counters (SPEC §8) in a
// history: they are checked with cachedCounterModel.
const CachedCounterPrefix = "cc"

// cachedCounterModel is counterModel for a cached counter, whose nexts may
// skip values (the rest of a block at a leader change or after another
// write) and whose reads on a new leader may jump to the end of the last
// block reserved. The state is a floor: no value at or below it may be
// minted again, and no read may show less. What must hold is what SPEC §8
// promises: a next that begins after another finished returns a larger
// value, a read shows at least every value minted before it began, and
// every write's effect is the counter's value as the log holds it (the
// workload's writes only ever raise it). An unknown write raises the floor
// by what it certainly did if it happened; the direct duplicate check
// (uniqueIDs) does not depend on the floor.
var cachedCounterModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		f, in, out := state.(int64), input.(counterIn), output.(counterOut)
		unknown := out.outcome == history.Unknown
		switch in.f {
		case history.FGet:
			return out.value >= f, out.value
		case history.FNext:
			if unknown {
				return true, f + in.count
			}
			return out.first > f && out.last == out.first+in.count-1, out.last
		case history.FAdd:
			if unknown {
				return true, f + in.delta
			}
			// The log's value, at least the floor, plus delta.
			return out.value >= f+in.delta, out.value
		case history.FCAS:
			switch {
			case unknown:
				return true, f
			case out.outcome == history.Failed:
				// The value it found is the log's, the end of the block:
				// at least the floor, but reads on the leader may still
				// show less, so the floor stays.
				return out.value != in.ifValue && out.value >= f, f
			default:
				return in.ifValue >= f && out.value == in.value, in.value
			}
		}
		return false, f
	},
	DescribeOperation: counterModel.DescribeOperation,
	DescribeState:     func(state any) string { return fmt.Sprintf("floor %d", state.(int64)) },
}
