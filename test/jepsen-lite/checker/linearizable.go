package checker

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/countd/countd/api"
	"github.com/countd/countd/test/jepsen-lite/history"
)

// CheckLinearizable is the name of the porcupine check.
const CheckLinearizable = "linearizable"

// keyHistory is one key's operations in porcupine's form.
type keyHistory struct {
	kind  string // "counter" or "doc"
	key   string
	model porcupine.Model
	ops   []porcupine.Operation
}

// linearizableHistories splits h by key into porcupine histories. Reads
// without an answer tell nothing and are left out, as are writes that
// certainly did not happen (except a CAS conflict, whose answer says what
// the value was). Unknown writes complete at +∞.
func linearizableHistories(h *history.History) []*keyHistory {
	infinity := h.End + 1
	byKey := map[string]*keyHistory{}
	get := func(kind, key string, m porcupine.Model) *keyHistory {
		k := kind + "/" + key
		if byKey[k] == nil {
			byKey[k] = &keyHistory{kind: kind, key: key, model: m}
		}
		return byKey[k]
	}
	for _, op := range h.Ops {
		if op.Outcome == history.Unknown && !op.F.IsWrite() {
			continue
		}
		ret := op.Complete
		if op.Outcome == history.Unknown {
			ret = infinity
		}
		po := porcupine.Operation{ClientId: op.Process, Call: op.Invoke, Return: ret, Metadata: opLabel(op)}
		switch op.F {
		case history.FNext, history.FAdd, history.FGet, history.FCAS:
			if op.Outcome == history.Failed && !(op.F == history.FCAS && isConflict(op)) {
				continue
			}
			po.Input = counterIn{f: op.F, count: op.In.Count, delta: op.In.Delta, ifValue: op.In.IfValue, value: op.In.Value}
			po.Output = counterOut{outcome: op.Outcome, first: op.Out.First, last: op.Out.Last, value: op.Out.Value}
			kind, model := "counter", counterModel
			if strings.HasPrefix(op.Key, CachedCounterPrefix) {
				kind, model = "cached-counter", cachedCounterModel
			}
			kh := get(kind, op.Key, model)
			kh.ops = append(kh.ops, po)
		case history.FDocGet, history.FDocCAS:
			if op.Outcome == history.Failed && !(op.F == history.FDocCAS && op.Code() == string(api.CodePreconditionFailed)) {
				continue
			}
			po.Input = docIn{f: op.F, ifVersion: op.In.IfVersion, doc: op.In.Doc}
			po.Output = docOut{outcome: op.Outcome, version: op.Out.Version, doc: op.Out.Doc}
			kh := get("doc", op.Key, docModel)
			kh.ops = append(kh.ops, po)
		}
	}
	out := make([]*keyHistory, 0, len(byKey))
	for _, kh := range byKey {
		out = append(out, kh)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].kind != out[j].kind {
			return out[i].kind < out[j].kind
		}
		return out[i].key < out[j].key
	})
	return out
}

// isConflict tells a CAS refused because the value differed (which the
// model checks) from other refusals.
func isConflict(op history.Op) bool { return op.Code() == string(api.CodeConflict) }

func opLabel(op history.Op) string {
	s := fmt.Sprintf("op %d, process %d, %s", op.ID, op.Process, op.Outcome)
	if op.In.Stale {
		s += ", stale read from " + op.In.Node
	}
	if op.In.Final {
		s += ", final read"
	}
	if op.Error != "" {
		s += ": " + op.Error
	}
	return s
}

// linearizability runs porcupine on every key. On a violation it writes
// the key's visualisation into dir (when dir is not empty).
func linearizability(h *history.History, dir string, timeout time.Duration, res *Result) {
	for _, kh := range linearizableHistories(h) {
		verdict, info := porcupine.CheckOperationsVerbose(kh.model, kh.ops, timeout)
		res.Keys = append(res.Keys, KeyResult{Kind: kh.kind, Key: kh.key, Ops: len(kh.ops), Result: string(verdict)})
		switch verdict {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			res.add(CheckLinearizable, kh.key, "porcupine could not decide %s %s's %d operations within %v", kh.kind, kh.key, len(kh.ops), timeout)
			continue
		}
		msg := fmt.Sprintf("%s %s is not linearizable (%d operations)", kh.kind, kh.key, len(kh.ops))
		if dir != "" {
			path := filepath.Join(dir, "linearizability-"+kh.kind+"-"+fileSafe(kh.key)+".html")
			if err := porcupine.VisualizePath(kh.model, info, path); err != nil {
				msg += fmt.Sprintf("; writing the visualisation failed: %v", err)
			} else {
				msg += "; see " + path
				res.Visualizations = append(res.Visualizations, path)
			}
		}
		res.add(CheckLinearizable, kh.key, "%s", msg)
	}
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

func fileSafe(s string) string { return unsafeFileChars.ReplaceAllString(s, "_") }
