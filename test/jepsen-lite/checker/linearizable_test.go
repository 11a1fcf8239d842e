package checker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/countd/countd/test/jepsen-lite/history"
)

const (
	ok      = history.OK
	failed  = history.Failed
	unknown = history.Unknown
)

func TestCounterLinearizable(t *testing.T) {
	b := &builder{}
	b.add(0, history.FNext, "c", 0, 10, ok, in(history.Input{Count: 1}), out(history.Output{First: 1, Last: 1}))
	b.add(1, history.FNext, "c", 5, 20, ok, in(history.Input{Count: 2}), out(history.Output{First: 2, Last: 3}))
	b.add(0, history.FAdd, "c", 21, 30, ok, in(history.Input{Delta: 5}), out(history.Output{Value: 8}))
	b.add(1, history.FGet, "c", 31, 40, ok, out(history.Output{Value: 8}))
	b.add(0, history.FCAS, "c", 41, 50, ok, in(history.Input{IfValue: 8, Value: 10}), out(history.Output{Value: 10}))
	b.add(1, history.FCAS, "c", 51, 60, failed, in(history.Input{IfValue: 8, Value: 12}), out(history.Output{Value: 10}), errText("conflict: value is 10"))
	// A refusal that is not a conflict did not happen and says nothing.
	b.add(1, history.FAdd, "c", 61, 62, failed, in(history.Input{Delta: 99}), errText("bad_request: no"))
	b.add(0, history.FGet, "c", 70, 80, ok, out(history.Output{Value: 10}))
	// Another key is checked on its own.
	b.add(2, history.FNext, "d", 0, 100, ok, in(history.Input{Count: 1}), out(history.Output{First: 1, Last: 1}))
	res := b.run(lin(""))
	wantClean(t, res)
	if len(res.Keys) != 2 || res.Keys[0].Result != "Ok" {
		t.Errorf("key results %+v, want two keys checked Ok", res.Keys)
	}
}

func TestStaleReadIsNotLinearizable(t *testing.T) {
	dir := t.TempDir()
	b := &builder{}
	b.add(0, history.FNext, "c", 0, 10, ok, in(history.Input{Count: 1}), out(history.Output{First: 1, Last: 1}))
	// Invoked after the next completed, yet sees the value before it.
	b.add(1, history.FGet, "c", 20, 30, ok, in(history.Input{Stale: true, Node: "n3"}), out(history.Output{Value: 0}))
	res := b.run(lin(dir))
	wantFlagged(t, res, CheckLinearizable, "counter c is not linearizable")
	if len(res.Visualizations) != 1 {
		t.Fatalf("want one visualisation, got %v", res.Visualizations)
	}
	html, err := os.ReadFile(res.Visualizations[0])
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(res.Visualizations[0]) != dir || !strings.Contains(string(html), "<html") {
		t.Errorf("visualisation %s is not an HTML page in %s", res.Visualizations[0], dir)
	}
}

func TestCounterRejectsWrongAnswers(t *testing.T) {
	for name, b := range map[string]*builder{
		"next skips a value": new(builder).
			add(0, history.FNext, "c", 0, 10, ok, in(history.Input{Count: 1}), out(history.Output{First: 1, Last: 1})).
			add(0, history.FNext, "c", 20, 30, ok, in(history.Input{Count: 1}), out(history.Output{First: 3, Last: 3})),
		"add miscounts": new(builder).
			add(0, history.FAdd, "c", 0, 10, ok, in(history.Input{Delta: 2}), out(history.Output{Value: 3})),
		"cas applied on a mismatch": new(builder).
			add(0, history.FCAS, "c", 0, 10, ok, in(history.Input{IfValue: 4, Value: 9}), out(history.Output{Value: 9})),
		"conflict reports a value it could not have seen": new(builder).
			add(0, history.FCAS, "c", 0, 10, failed, in(history.Input{IfValue: 4, Value: 9}), out(history.Output{Value: 7}), errText("conflict: x")),
		"conflict although the value matched": new(builder).
			add(0, history.FCAS, "c", 0, 10, failed, in(history.Input{IfValue: 0, Value: 9}), out(history.Output{Value: 0}), errText("conflict: x")),
		"read of a value nobody wrote after an unknown next": new(builder).
			add(0, history.FNext, "c", 0, 10, unknown, in(history.Input{Count: 1})).
			add(1, history.FGet, "c", 20, 30, ok, out(history.Output{Value: 5})),
		"unknown next seen, then unseen": new(builder).
			add(0, history.FNext, "c", 0, 10, unknown, in(history.Input{Count: 1})).
			add(1, history.FGet, "c", 20, 30, ok, out(history.Output{Value: 1})).
			add(1, history.FGet, "c", 40, 50, ok, out(history.Output{Value: 0})),
	} {
		t.Run(name, func(t *testing.T) {
			wantFlagged(t, b.run(lin("")), CheckLinearizable, "not linearizable")
		})
	}
}

// An operation of unknown outcome may or may not have happened; both
// histories must be accepted.
func TestUnknownOutcomesMayOrMayNotHaveHappened(t *testing.T) {
	for name, b := range map[string]*builder{
		"unknown next happened": new(builder).
			add(0, history.FNext, "c", 0, 10, unknown, in(history.Input{Count: 3})).
			add(1, history.FNext, "c", 20, 30, ok, in(history.Input{Count: 1}), out(history.Output{First: 4, Last: 4})).
			add(1, history.FGet, "c", 40, 50, ok, out(history.Output{Value: 4})),
		"unknown next did not happen": new(builder).
			add(0, history.FNext, "c", 0, 10, unknown, in(history.Input{Count: 3})).
			add(1, history.FNext, "c", 20, 30, ok, in(history.Input{Count: 1}), out(history.Output{First: 1, Last: 1})).
			add(1, history.FGet, "c", 40, 50, ok, out(history.Output{Value: 1})),
		"unknown next happened late, after a later op": new(builder).
			add(0, history.FNext, "c", 0, 10, unknown, in(history.Input{Count: 3})).
			add(1, history.FGet, "c", 20, 30, ok, out(history.Output{Value: 0})).
			add(1, history.FGet, "c", 40, 50, ok, out(history.Output{Value: 3})),
		"unknown add and cas": new(builder).
			add(0, history.FAdd, "c", 0, 10, unknown, in(history.Input{Delta: 2})).
			add(1, history.FCAS, "c", 5, 15, unknown, in(history.Input{IfValue: 2, Value: 7})).
			add(1, history.FGet, "c", 40, 50, ok, out(history.Output{Value: 7})),
		"unknown cas that did not apply": new(builder).
			add(1, history.FCAS, "c", 5, 15, unknown, in(history.Input{IfValue: 2, Value: 7})).
			add(1, history.FGet, "c", 40, 50, ok, out(history.Output{Value: 0})),
		"unknown read says nothing": new(builder).
			add(0, history.FNext, "c", 0, 10, ok, in(history.Input{Count: 1}), out(history.Output{First: 1, Last: 1})).
			add(1, history.FGet, "c", 20, 30, unknown),
	} {
		t.Run(name, func(t *testing.T) { wantClean(t, b.run(lin(""))) })
	}
}

func TestDocumentLinearizable(t *testing.T) {
	b := &builder{}
	b.add(0, history.FDocGet, "d", 0, 5, ok, out(history.Output{Version: 0}))
	b.add(0, history.FDocCAS, "d", 10, 20, ok, in(history.Input{IfVersion: 0, Doc: "a"}), out(history.Output{Version: 1, Doc: "a"}))
	b.add(1, history.FDocGet, "d", 21, 30, ok, out(history.Output{Version: 1, Doc: "a"}))
	b.add(0, history.FDocCAS, "d", 31, 40, ok, in(history.Input{IfVersion: 1, Doc: "b"}), out(history.Output{Version: 2, Doc: "b"}))
	b.add(1, history.FDocCAS, "d", 41, 50, failed, in(history.Input{IfVersion: 1, Doc: "c"}), errText("precondition_failed: v2"))
	b.add(2, history.FDocCAS, "d", 41, 50, unknown, in(history.Input{IfVersion: 2, Doc: "u"}))
	b.add(1, history.FDocGet, "d", 60, 70, ok, out(history.Output{Version: 3, Doc: "u"}))
	wantClean(t, b.run(lin("")))

	for name, b := range map[string]*builder{
		"stale read after an acknowledged write": new(builder).
			add(0, history.FDocCAS, "d", 10, 20, ok, in(history.Input{IfVersion: 0, Doc: "a"}), out(history.Output{Version: 1, Doc: "a"})).
			add(1, history.FDocGet, "d", 30, 40, ok, out(history.Output{Version: 0})),
		"write applied at the wrong version": new(builder).
			add(0, history.FDocCAS, "d", 10, 20, ok, in(history.Input{IfVersion: 3, Doc: "a"}), out(history.Output{Version: 4, Doc: "a"})),
		"precondition failed although it matched": new(builder).
			add(0, history.FDocCAS, "d", 10, 20, failed, in(history.Input{IfVersion: 0, Doc: "a"}), errText("precondition_failed: x")),
		"read of a token nobody wrote": new(builder).
			add(0, history.FDocCAS, "d", 10, 20, ok, in(history.Input{IfVersion: 0, Doc: "a"}), out(history.Output{Version: 1, Doc: "a"})).
			add(1, history.FDocGet, "d", 30, 40, ok, out(history.Output{Version: 1, Doc: "z"})),
	} {
		t.Run(name, func(t *testing.T) {
			wantFlagged(t, b.run(lin("")), CheckLinearizable, "doc d is not linearizable")
		})
	}
}
