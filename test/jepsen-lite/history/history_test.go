package history

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestWriteRead(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	f := w.FaultStart(Fault{Kind: "kill", Nodes: []string{"n1"}, Leader: true})
	next := w.Invoke(0, FNext, "c", Input{Count: 3})
	cas := w.Invoke(1, FCAS, "c", Input{IfValue: 7, Value: 9})
	w.Invoke(2, FAdd, "c", Input{Delta: 1}) // never completes: the campaign "died"
	timeout := w.Invoke(3, FJoin, "q", Input{Process: "p"})
	next.OK(Output{First: 1, Last: 3})
	cas.Fail(&Output{Value: 3}, errors.New("conflict"))
	timeout.Info(errors.New("deadline exceeded"))
	f.End(nil)
	if err := w.Err(); err != nil {
		t.Fatal(err)
	}

	h, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) != 4 || len(h.Faults) != 1 {
		t.Fatalf("got %d ops and %d faults, want 4 and 1", len(h.Ops), len(h.Faults))
	}
	byF := map[F]Op{}
	for i, op := range h.Ops {
		if i > 0 && op.Invoke < h.Ops[i-1].Invoke {
			t.Errorf("ops not sorted by invocation: %d before %d", h.Ops[i-1].Invoke, op.Invoke)
		}
		byF[op.F] = op
	}
	if op := byF[FNext]; op.Outcome != OK || op.Out.First != 1 || op.Out.Last != 3 || op.In.Count != 3 || op.Complete < op.Invoke {
		t.Errorf("next read back as %+v", op)
	}
	if op := byF[FCAS]; op.Outcome != Failed || op.Out.Value != 3 || op.Error != "conflict" {
		t.Errorf("cas read back as %+v", op)
	}
	if op := byF[FAdd]; op.Outcome != Unknown || op.Complete != h.End {
		t.Errorf("an invoke without completion must be unknown, ending at the history's end; got %+v (end %d)", op, h.End)
	}
	if op := byF[FJoin]; op.Outcome != Unknown || op.Error != "deadline exceeded" {
		t.Errorf("info read back as %+v", op)
	}
	if fs := h.Faults[0]; fs.Kind != "kill" || !fs.Leader || fs.End < fs.Start || fs.Nodes[0] != "n1" {
		t.Errorf("fault read back as %+v", fs)
	}
}

func TestConcurrentWritesStayWholeLines(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				w.Invoke(p, FGet, "c", Input{}).OK(Output{Value: int64(p)})
			}
		}()
	}
	wg.Wait()
	h, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Ops) != 800 {
		t.Fatalf("read %d ops, want 800", len(h.Ops))
	}
	for _, op := range h.Ops {
		if op.Outcome != OK || op.Out.Value != int64(op.Process) {
			t.Fatalf("op mangled: %+v", op)
		}
	}
}

func TestReadRejectsBrokenHistories(t *testing.T) {
	for name, text := range map[string]string{
		"not json":           "{",
		"completion of none": `{"type":"ok","process":0,"op":4,"time":1}`,
		"invoked twice":      `{"type":"invoke","op":1,"time":1}` + "\n" + `{"type":"invoke","op":1,"time":2}`,
		"unknown type":       `{"type":"maybe","op":1,"time":1}`,
		"fault end of none":  `{"type":"fault-end","process":-1,"op":9,"time":1}`,
	} {
		if _, err := Read(strings.NewReader(text)); err == nil {
			t.Errorf("%s: Read accepted %q", name, text)
		}
	}
}
