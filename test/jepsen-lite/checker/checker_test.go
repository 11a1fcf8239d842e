package checker

import (
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/test/jepsen-lite/history"
)

func TestCheckAndSummarize(t *testing.T) {
	ms := int64(time.Millisecond)
	b := &builder{}
	mint(b, 0, "c", 0, 1, 1)
	b.add(1, history.FNext, "c", 100*ms, 900*ms, unknown, in(history.Input{Count: 1}))
	mint(b, 0, "c", 1000*ms, 2, 2)
	b.add(1, history.FAdd, "c", 1100*ms, 1200*ms, failed, in(history.Input{Delta: 1}), errText("bad_request: x"))
	b.add(9, history.FGet, "c", 2000*ms, 2001*ms, ok, final(), out(history.Output{Value: 2}))
	h := b.history()
	h.Faults = []history.FaultSpan{
		{Fault: history.Fault{Kind: "kill", Nodes: []string{"n1"}, Leader: true}, Start: 50 * ms, End: 500 * ms},
		{Fault: history.Fault{Kind: "leave", Unsupported: true}, Start: 1500 * ms, End: 1500 * ms},
	}
	res := Check(h, Options{})
	if !res.Valid {
		t.Fatalf("a good history is invalid:\n%s", violations(res))
	}
	s := Summarize(h, res)
	if len(s.Ops) != 2 || s.Ops[0] != (OpCount{F: history.FAdd, Failed: 1}) || s.Ops[1] != (OpCount{F: history.FNext, OK: 2, Unknown: 1}) {
		t.Errorf("ops table %+v", s.Ops)
	}
	if s.Availability != 0.5 || s.Answered != 0.75 {
		t.Errorf("availability %v and answered %v, want 0.5 and 0.75 (2 ok and 1 refusal of 4 client ops; final reads excluded)", s.Availability, s.Answered)
	}
	if len(s.LeaderFaults) != 1 || s.LeaderFaults[0].Unavailable != 950*time.Millisecond+5 {
		// From the kill at 50ms, the next success completed at 1000ms+5ns.
		t.Errorf("leader faults %+v, want one with 950ms+5ns unavailable", s.LeaderFaults)
	}
	var out strings.Builder
	if err := s.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"verdict: VALID", "availability: 50.0%", "950ms", "leave"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}

	// The same history with a duplicate ID is invalid, and says so.
	mint(b, 2, "c", 1500*ms, 2, 2)
	res = Check(b.history(), Options{})
	if res.Valid || !res.Failed(CheckUniqueIDs) || !res.Failed(CheckLinearizable) {
		t.Errorf("a duplicate ID must fail unique-ids and linearizability:\n%s", violations(res))
	}
	out.Reset()
	_ = Summarize(b.history(), res).WriteTable(&out)
	if !strings.Contains(out.String(), "verdict: INVALID") {
		t.Errorf("summary of a bad history:\n%s", out.String())
	}
}
