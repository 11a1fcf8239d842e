package checker

import (
	"sort"
	"strings"
	"testing"

	"github.com/countd/countd/test/jepsen-lite/history"
)

// builder makes hand-written histories: each op is given its process,
// function, key, invocation and completion times and outcome.
type builder struct {
	h  history.History
	id int64
}

type opt func(*history.Op)

func in(i history.Input) opt   { return func(o *history.Op) { o.In = i } }
func out(x history.Output) opt { return func(o *history.Op) { o.Out = x } }
func errText(s string) opt     { return func(o *history.Op) { o.Error = s } }
func final() opt               { return func(o *history.Op) { o.In.Final = true } }

func (b *builder) add(p int, f history.F, key string, invoke, complete int64, oc history.Outcome, opts ...opt) *builder {
	b.id++
	op := history.Op{Process: p, ID: b.id, F: f, Key: key, Invoke: invoke, Complete: complete, Outcome: oc}
	for _, o := range opts {
		o(&op)
	}
	b.h.Ops = append(b.h.Ops, op)
	b.h.End = max(b.h.End, complete)
	return b
}

func (b *builder) history() *history.History {
	h := b.h
	h.Ops = append([]history.Op(nil), b.h.Ops...)
	sort.SliceStable(h.Ops, func(i, j int) bool { return h.Ops[i].Invoke < h.Ops[j].Invoke })
	return &h
}

// run runs one check function on the built history.
func (b *builder) run(check func(*history.History, *Result)) *Result {
	res := &Result{}
	check(b.history(), res)
	return res
}

func wantClean(t *testing.T, res *Result) {
	t.Helper()
	if len(res.Violations) > 0 {
		t.Errorf("want no violations, got:\n%s", violations(res))
	}
}

// wantFlagged asserts a violation of check whose message contains part.
func wantFlagged(t *testing.T, res *Result, check, part string) {
	t.Helper()
	for _, v := range res.Violations {
		if v.Check == check && strings.Contains(v.Message, part) {
			return
		}
	}
	t.Errorf("want a %s violation mentioning %q, got:\n%s", check, part, violations(res))
}

func violations(res *Result) string {
	if len(res.Violations) == 0 {
		return "  (none)"
	}
	var s []string
	for _, v := range res.Violations {
		s = append(s, "  "+v.String())
	}
	return strings.Join(s, "\n")
}

func lin(dir string) func(*history.History, *Result) {
	return func(h *history.History, res *Result) { linearizability(h, dir, 0, res) }
}
