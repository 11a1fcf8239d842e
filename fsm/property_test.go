package fsm

// Model-based property test for counters and the idempotency window.
//
// propModel below is a deliberately naive re-implementation of the rules in
// SPEC.md ("Counters — signed 64-bit", "Idempotency", "Counters."): a map of
// counters, a map of idempotency keys compared structurally, and math/big for
// next and add so it shares none of the FSM's overflow tricks. Random command
// sequences run against both; every result, every read, and the state after a
// snapshot round trip must agree.
//
// The seed is fixed so runs are reproducible; COUNTD_PROP_SEED overrides it.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	propDefaultSeed = 20260101
	propSequences   = 300
	propSteps       = 200 // commands per sequence before the snapshot
	propContinue    = 60  // commands per sequence after the snapshot
	propBaseTime    = int64(1_767_225_600_000_000_000)
)

var (
	propNames    = []string{"a", "b", "c.d", "x:y@z-1"}
	propBadNames = []string{"", ".", "..", "a b", "a/b", "é", "a\x00", strings.Repeat("n", MaxNameLen+1)}
	propKeys     = []string{"k1", "k2", "k3", "k4", " ~", strings.Repeat("K", MaxIdempotencyKeyLen)}
	propBadKeys  = []string{strings.Repeat("k", MaxIdempotencyKeyLen+1), "k\n", "\x7f", "ké"}
	propWindows  = []time.Duration{0, time.Nanosecond, time.Millisecond, time.Second, 10 * time.Second, time.Minute, 10 * time.Minute}
)

// ---------------------------------------------------------------------------
// The model.

type propCounter struct {
	value, increment, offset int64
	monotonic                bool
	index                    uint64
}

func propDefaultCounter() propCounter { return propCounter{increment: 1} }

func (c propCounter) view(id string) *Counter {
	return &Counter{ID: id, Value: c.value, Increment: c.increment, Offset: c.offset, Monotonic: c.monotonic, Index: c.index}
}

// propResult is what the model expects Apply to return.
type propResult struct {
	index    uint64
	value    any // *Counter, *Mint or nil
	code     Code
	current  *Counter // for conflict
	replayed bool
}

type propKey struct {
	payload Payload // compared with reflect.DeepEqual: op (dynamic type) + fields
	expires int64
	result  propResult
}

type propModel struct {
	counters map[string]propCounter
	keys     map[string]propKey
	applied  uint64
}

func newPropModel() *propModel {
	return &propModel{counters: map[string]propCounter{}, keys: map[string]propKey{}}
}

func propValidName(s string) bool {
	if len(s) < 1 || len(s) > 256 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:@-", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func propValidKey(k string) bool {
	if len(k) < 1 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

// validate returns the code of input rejected before the log (400), or "".
// Precedence among several problems in one command follows the FSM (the SPEC
// only says each is a 400): key, then name, then the other fields.
func (m *propModel) validate(c Command) Code {
	if c.Payload == nil {
		return CodeBadRequest
	}
	if c.IdempotencyKey != "" && !propValidKey(c.IdempotencyKey) {
		return CodeBadRequest
	}
	var name string
	switch p := c.Payload.(type) {
	case CounterNext:
		name = p.ID
	case CounterAdd:
		name = p.ID
	case CounterSet:
		name = p.ID
	case CounterDelete:
		name = p.ID
	}
	if !propValidName(name) {
		return CodeInvalidName
	}
	switch p := c.Payload.(type) {
	case CounterNext:
		if p.Count < 1 || p.Count > 1_000_000 {
			return CodeBadRequest
		}
	case CounterSet:
		if p.Value == nil && p.Increment == nil && p.Offset == nil && p.Monotonic == nil {
			return CodeBadRequest
		}
		if p.Increment != nil && (*p.Increment < 1 || *p.Increment > 1<<62) {
			return CodeBadRequest
		}
	}
	return ""
}

// apply returns the expected result and whether the command reached the log
// (and so consumed the index).
func (m *propModel) apply(c Command, index uint64) (propResult, bool) {
	if code := m.validate(c); code != "" {
		return propResult{code: code}, false
	}
	m.applied = index
	if c.IdempotencyKey != "" {
		if k, ok := m.keys[c.IdempotencyKey]; ok && k.expires > c.Time {
			if !reflect.DeepEqual(k.payload, c.Payload) {
				return propResult{index: index, code: CodeIdempotencyMismatch}, true
			}
			r := k.result
			r.replayed = true
			return r, true
		}
		delete(m.keys, c.IdempotencyKey) // expired: forgotten
	}
	r := m.exec(c.Payload, index)
	if c.IdempotencyKey != "" {
		m.keys[c.IdempotencyKey] = propKey{payload: c.Payload, expires: c.Time + int64(c.KeyWindow), result: r}
	}
	return r, true
}

func (m *propModel) get(id string) propCounter {
	if c, ok := m.counters[id]; ok {
		return c
	}
	return propDefaultCounter()
}

var (
	propBigMax = big.NewInt(math.MaxInt64)
	propBigMin = big.NewInt(math.MinInt64)
)

func propFits(x *big.Int) bool { return x.Cmp(propBigMin) >= 0 && x.Cmp(propBigMax) <= 0 }

// propNext is the SPEC rule computed with unbounded integers: first is the
// smallest v > value with v ≡ offset (mod increment).
func propNext(c propCounter, count int64) (first, last int64, ok bool) {
	v := big.NewInt(c.value)
	inc := big.NewInt(c.increment)
	r := new(big.Int).Sub(big.NewInt(c.offset), v)
	r.Mod(r, inc) // Euclidean: 0 <= r < inc
	if r.Sign() == 0 {
		r.Set(inc)
	}
	f := new(big.Int).Add(v, r)
	l := new(big.Int).Mul(big.NewInt(count-1), inc)
	l.Add(l, f)
	if !propFits(f) || !propFits(l) {
		return 0, 0, false
	}
	return f.Int64(), l.Int64(), true
}

func (m *propModel) exec(pl Payload, index uint64) propResult {
	refuse := func(code Code) propResult { return propResult{index: index, code: code} }
	switch p := pl.(type) {
	case CounterNext:
		c := m.get(p.ID)
		first, last, ok := propNext(c, p.Count)
		if !ok {
			return refuse(CodeOverflow)
		}
		c.value, c.index = last, index
		m.counters[p.ID] = c
		return propResult{index: index, value: &Mint{ID: p.ID, First: first, Last: last, Count: p.Count, Step: c.increment, Index: index}}
	case CounterAdd:
		c, exists := m.counters[p.ID]
		if !exists {
			c = propDefaultCounter()
			if p.Default != nil {
				c.value = *p.Default
			}
		}
		if c.monotonic && p.Delta < 0 {
			return refuse(CodeNotMonotonic)
		}
		sum := new(big.Int).Add(big.NewInt(c.value), big.NewInt(p.Delta))
		if !propFits(sum) {
			return refuse(CodeOverflow)
		}
		c.value, c.index = sum.Int64(), index
		m.counters[p.ID] = c
		return propResult{index: index, value: c.view(p.ID)}
	case CounterSet:
		c := m.get(p.ID)
		if p.IfValue != nil && *p.IfValue != c.value {
			return propResult{index: index, code: CodeConflict, current: c.view(p.ID)}
		}
		if c.monotonic && p.Monotonic != nil && !*p.Monotonic {
			return refuse(CodeNotMonotonic)
		}
		if c.monotonic && p.Value != nil && *p.Value < c.value {
			return refuse(CodeNotMonotonic)
		}
		if p.Value != nil {
			c.value = *p.Value
		}
		if p.Increment != nil {
			c.increment = *p.Increment
		}
		if p.Offset != nil {
			c.offset = *p.Offset
		}
		if p.Monotonic != nil {
			c.monotonic = *p.Monotonic
		}
		c.index = index
		m.counters[p.ID] = c
		return propResult{index: index, value: c.view(p.ID)}
	case CounterDelete:
		c, exists := m.counters[p.ID]
		if !exists {
			return propResult{index: index}
		}
		if c.monotonic && !p.Force {
			return refuse(CodeNotMonotonic)
		}
		delete(m.counters, p.ID)
		return propResult{index: index}
	}
	panic(fmt.Sprintf("model: unknown payload %T", pl))
}

func (m *propModel) list(prefix string) []*Counter {
	names := make([]string, 0, len(m.counters))
	for name := range m.counters {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make([]*Counter, 0, len(names))
	for _, name := range names {
		out = append(out, m.counters[name].view(name))
	}
	return out
}

// ---------------------------------------------------------------------------
// The generator.

type propGen struct {
	r      *rand.Rand
	now    int64
	recent []Command // recent commands that carried a key, for retries
}

func (g *propGen) pick(n int) int { return g.r.IntN(n) }

func (g *propGen) chance(pct int) bool { return g.r.IntN(100) < pct }

func (g *propGen) int64() int64 {
	switch g.pick(9) {
	case 0, 1, 2:
		return g.r.Int64N(41) - 20
	case 3:
		return math.MaxInt64 - g.r.Int64N(20)
	case 4:
		return math.MinInt64 + g.r.Int64N(20)
	case 5:
		return int64(g.r.Uint64())
	case 6:
		return (1<<62)*(g.r.Int64N(3)-1) + g.r.Int64N(9) - 4
	case 7:
		return math.MaxInt64 - 1<<62 + g.r.Int64N(9) - 4
	default:
		return g.r.Int64N(2001) - 1000
	}
}

func (g *propGen) increment() int64 {
	switch g.pick(10) {
	case 0:
		bad := []int64{0, -1, -5, 1<<62 + 1, math.MaxInt64, math.MinInt64, -(1 << 62)}
		return bad[g.pick(len(bad))]
	case 1:
		return 1<<62 - g.r.Int64N(2)
	case 2:
		return 1 + g.r.Int64N(1<<62)
	case 3:
		return 1_000_000_007
	default:
		return 1 + g.r.Int64N(7)
	}
}

func (g *propGen) count() int64 {
	switch g.pick(12) {
	case 0:
		bad := []int64{0, -1, 1_000_001, math.MinInt64, math.MaxInt64}
		return bad[g.pick(len(bad))]
	case 1:
		return 1_000_000 - g.r.Int64N(2)
	case 2:
		return 1 + g.r.Int64N(1_000_000)
	default:
		return 1 + g.r.Int64N(5)
	}
}

func (g *propGen) name() string {
	if g.chance(3) {
		return propBadNames[g.pick(len(propBadNames))]
	}
	return propNames[g.pick(len(propNames))]
}

func (g *propGen) key() string {
	if g.chance(3) {
		return propBadKeys[g.pick(len(propBadKeys))]
	}
	return propKeys[g.pick(len(propKeys))]
}

func (g *propGen) window() time.Duration {
	if g.chance(50) {
		return 10 * time.Minute
	}
	return propWindows[g.pick(len(propWindows))]
}

func (g *propGen) advance() {
	switch g.pick(20) {
	case 0, 1, 2, 3, 4, 5: // same instant
	case 6, 7, 8, 9, 10, 11:
		g.now += g.r.Int64N(int64(time.Second))
	case 12, 13, 14:
		g.now += g.r.Int64N(int64(2 * time.Minute))
	case 15, 16:
		// Around the default window.
		g.now += int64(10*time.Minute) + g.r.Int64N(int64(time.Minute)) - int64(30*time.Second)
	default:
		// Exactly on (or just before) a recent key's expiry. Time never goes
		// backwards: the SPEC decides expiry with the leader's clock and says
		// nothing about clocks that step back.
		if len(g.recent) == 0 {
			return
		}
		c := g.recent[g.pick(len(g.recent))]
		if t := c.Time + int64(c.KeyWindow) - g.r.Int64N(2); t > g.now {
			g.now = t
		}
	}
}

func (g *propGen) payload(m *propModel) Payload {
	if g.pick(1000) == 0 {
		return nil
	}
	id := g.name()
	switch g.pick(20) {
	case 0, 1, 2, 3, 4, 5:
		return CounterNext{ID: id, Count: g.count()}
	case 6, 7, 8, 9, 10:
		p := CounterAdd{ID: id, Delta: g.int64()}
		if g.chance(40) {
			p.Delta = g.r.Int64N(11) - 5
		}
		if g.chance(30) {
			p.Default = propPtr(g.int64())
		}
		return p
	case 11, 12, 13, 14, 15, 16:
		cur := m.get(id).value
		p := CounterSet{ID: id}
		if g.chance(40) {
			switch g.pick(3) {
			case 0:
				p.Value = propPtr(g.int64())
			default: // near the current value: exercises monotonic lowering
				p.Value = propPtr(cur + g.r.Int64N(3) - 1)
			}
		}
		if g.chance(35) {
			p.Increment = propPtr(g.increment())
		}
		if g.chance(35) {
			p.Offset = propPtr(g.int64())
		}
		if g.chance(35) {
			p.Monotonic = propPtr(g.chance(60))
		}
		switch g.pick(4) {
		case 0:
			p.IfValue = propPtr(cur)
		case 1:
			if g.chance(50) {
				p.IfValue = propPtr(cur + 1)
			} else {
				p.IfValue = propPtr(g.int64())
			}
		}
		return p
	default:
		return CounterDelete{ID: id, Force: g.chance(50)}
	}
}

func (g *propGen) command(m *propModel) Command {
	g.advance()
	switch x := g.pick(100); {
	case x < 15 && len(g.recent) > 0:
		// A retry of an earlier request: same key and payload, new leader
		// time, usually the same window.
		c := g.recent[g.pick(len(g.recent))]
		c.Time = g.now
		if g.chance(25) {
			c.KeyWindow = g.window()
		}
		return c
	case x < 22 && len(g.recent) > 0:
		// The same key for a new request (a mismatch unless it expired).
		c := g.recent[g.pick(len(g.recent))]
		return Command{Payload: g.payload(m), IdempotencyKey: c.IdempotencyKey, Time: g.now, KeyWindow: g.window()}
	}
	c := Command{Payload: g.payload(m), Time: g.now, KeyWindow: g.window()}
	if g.chance(50) {
		c.IdempotencyKey = g.key()
	}
	if c.IdempotencyKey != "" {
		if len(g.recent) == 8 {
			g.recent = append(g.recent[:0], g.recent[1:]...)
		}
		g.recent = append(g.recent, c)
	}
	return c
}

func propPtr[T any](v T) *T { return &v }

// ---------------------------------------------------------------------------
// The checks.

var propSentinels = map[Code]error{
	CodeBadRequest:          ErrBadRequest,
	CodeInvalidName:         ErrInvalidName,
	CodeConflict:            ErrConflict,
	CodeOverflow:            ErrOverflow,
	CodeNotMonotonic:        ErrNotMonotonic,
	CodeIdempotencyMismatch: ErrIdempotencyMismatch,
}

func propOpt[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func propDescribe(c Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=+%v", time.Duration(c.Time-propBaseTime))
	if c.IdempotencyKey != "" {
		fmt.Fprintf(&b, " key=%q window=%v", c.IdempotencyKey, c.KeyWindow)
	}
	switch p := c.Payload.(type) {
	case CounterNext:
		fmt.Fprintf(&b, " next(%q, count=%d)", p.ID, p.Count)
	case CounterAdd:
		fmt.Fprintf(&b, " add(%q, delta=%d, default=%s)", p.ID, p.Delta, propOpt(p.Default))
	case CounterSet:
		fmt.Fprintf(&b, " set(%q, value=%s, increment=%s, offset=%s, monotonic=%s, if_value=%s)",
			p.ID, propOpt(p.Value), propOpt(p.Increment), propOpt(p.Offset), propOpt(p.Monotonic), propOpt(p.IfValue))
	case CounterDelete:
		fmt.Fprintf(&b, " delete(%q, force=%v)", p.ID, p.Force)
	default:
		fmt.Fprintf(&b, " %#v", p)
	}
	return b.String()
}

func propFormatResult(r Result) string {
	s := fmt.Sprintf("{Index:%d Replayed:%v", r.Index, r.Replayed)
	switch v := r.Value.(type) {
	case nil:
	case *Counter:
		s += fmt.Sprintf(" Value:%+v", *v)
	case *Mint:
		s += fmt.Sprintf(" Value:%+v", *v)
	default:
		s += fmt.Sprintf(" Value:%#v", v)
	}
	if r.Err != nil {
		var fe *Error
		if errors.As(r.Err, &fe) {
			s += fmt.Sprintf(" Err:{%s %q", fe.Code, fe.Message)
			if c, ok := fe.Current.(*Counter); ok {
				s += fmt.Sprintf(" Current:%+v", *c)
			} else if fe.Current != nil {
				s += fmt.Sprintf(" Current:%#v", fe.Current)
			}
			s += "}"
		} else {
			s += fmt.Sprintf(" Err:%T %v", r.Err, r.Err)
		}
	}
	return s + "}"
}

func propFormatWant(w propResult) string {
	s := fmt.Sprintf("{Index:%d Replayed:%v", w.index, w.replayed)
	switch v := w.value.(type) {
	case *Counter:
		s += fmt.Sprintf(" Value:%+v", *v)
	case *Mint:
		s += fmt.Sprintf(" Value:%+v", *v)
	}
	if w.code != "" {
		s += " Err:" + string(w.code)
		if w.current != nil {
			s += fmt.Sprintf(" Current:%+v", *w.current)
		}
	}
	return s + "}"
}

type propRun struct {
	t       *testing.T
	seed    uint64
	seq     int
	phase   string
	history []propEntry
}

// propEntry is one generated command and what state 0 made of it; it is
// formatted only when a check fails.
type propEntry struct {
	index    uint64
	cmd      Command
	rejected Code // refused before the log
	got      Result
}

func (e propEntry) String() string {
	s := fmt.Sprintf("[%d] %s  -> ", e.index, propDescribe(e.cmd))
	if e.rejected != "" {
		return s + "rejected before the log: " + string(e.rejected)
	}
	return s + propFormatResult(e.got)
}

func (p *propRun) fatalf(format string, args ...any) {
	p.t.Helper()
	h := p.history
	if len(h) > 40 {
		h = h[len(h)-40:]
	}
	lines := make([]string, len(h))
	for i, e := range h {
		lines[i] = e.String()
	}
	p.t.Fatalf("seed %d (COUNTD_PROP_SEED), sequence %d, %s, command %d: %s\nlast commands (the last one is the failing one):\n  %s",
		p.seed, p.seq, p.phase, len(p.history), fmt.Sprintf(format, args...), strings.Join(lines, "\n  "))
}

func (p *propRun) checkResult(label string, got Result, want propResult) {
	p.t.Helper()
	bad := func(what string) {
		p.t.Helper()
		p.fatalf("%s: %s\n got  %s\n want %s", label, what, propFormatResult(got), propFormatWant(want))
	}
	if got.Replayed != want.replayed {
		bad("Replayed differs")
	}
	if got.Index != want.index {
		bad("Index differs")
	}
	if want.code != "" {
		var fe *Error
		if !errors.As(got.Err, &fe) {
			bad("want a *fsm.Error")
		}
		if fe.Code != want.code {
			bad("error code differs")
		}
		if !errors.Is(got.Err, propSentinels[want.code]) {
			bad("errors.Is does not match the sentinel")
		}
		if got.Value != nil {
			bad("a refused command returned a value")
		}
		if want.current != nil {
			if !propSameValue(fe.Current, want.current) {
				bad("conflict's current counter differs")
			}
		} else if fe.Current != nil {
			bad("unexpected current object on the error")
		}
		return
	}
	if got.Err != nil {
		bad("unexpected error")
	}
	if !propSameValue(got.Value, want.value) {
		bad("value differs")
	}
}

func (p *propRun) checkState(label string, st *State, m *propModel) {
	p.t.Helper()
	list, applied := st.Counters("")
	if applied != m.applied {
		p.fatalf("%s: Counters reports applied index %d, want %d", label, applied, m.applied)
	}
	if want := m.list(""); !propSameList(list, want) {
		p.fatalf("%s: Counters(\"\") differs\n got  %s\n want %s", label, propFormatList(list), propFormatList(want))
	}
	if list, _ := st.Counters("c"); !propSameList(list, m.list("c")) {
		p.fatalf("%s: Counters(\"c\") differs\n got  %s\n want %s", label, propFormatList(list), propFormatList(m.list("c")))
	}
	for _, name := range propNames {
		c, idx, err := st.Counter(name)
		if err != nil {
			p.fatalf("%s: Counter(%q): %v", label, name, err)
		}
		if idx != m.applied {
			p.fatalf("%s: Counter(%q) reports applied index %d, want %d", label, name, idx, m.applied)
		}
		if want := m.get(name).view(name); c == nil || *c != *want {
			p.fatalf("%s: Counter(%q) = %+v, want %+v", label, name, *c, *want)
		}
	}
}

// propSameValue compares result values (*Counter, *Mint or nil) by content.
func propSameValue(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case *Counter:
		b, ok := b.(*Counter)
		return ok && a != nil && b != nil && *a == *b
	case *Mint:
		b, ok := b.(*Mint)
		return ok && a != nil && b != nil && *a == *b
	}
	return false
}

func propSameList(a, b []*Counter) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !propSameValue(a[i], b[i]) {
			return false
		}
	}
	return true
}

// propSameResult compares two FSM results completely, messages included.
func propSameResult(a, b Result) bool {
	if a.Index != b.Index || a.Replayed != b.Replayed || !propSameValue(a.Value, b.Value) {
		return false
	}
	if a.Err == nil || b.Err == nil {
		return a.Err == nil && b.Err == nil
	}
	var ea, eb *Error
	if !errors.As(a.Err, &ea) || !errors.As(b.Err, &eb) {
		return false
	}
	return ea.Code == eb.Code && ea.Message == eb.Message && propSameValue(ea.Current, eb.Current)
}

func propFormatList(cs []*Counter) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%+v", *c)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// step applies c to the model and to every state at index, checks every
// result and read, and reports whether the command reached the log.
func (p *propRun) step(m *propModel, states []*State, c Command, index uint64) bool {
	p.t.Helper()
	p.history = append(p.history, propEntry{index: index, cmd: c})
	entry := &p.history[len(p.history)-1]
	want, logged := m.apply(c, index)
	data, err := Encode(c)
	if !logged {
		var fe *Error
		if !errors.As(err, &fe) {
			p.fatalf("Encode accepted input the model rejects with %s (err %v)", want.code, err)
		}
		if fe.Code != want.code {
			p.fatalf("Encode refused with %s (%s), model says %s", fe.Code, fe.Message, want.code)
		}
		entry.rejected = fe.Code
		return false
	}
	if err != nil {
		p.fatalf("Encode refused input the model accepts: %v", err)
	}
	var first Result
	for i, st := range states {
		label := "state 0"
		if i > 0 {
			label = "restored state"
		}
		got := st.Apply(index, data)
		p.checkResult(label, got, want)
		if i == 0 {
			first = got
			entry.got = got
		} else if !propSameResult(got, first) {
			p.fatalf("restored state returned %s, original returned %s", propFormatResult(got), propFormatResult(first))
		}
		p.checkState(label, st, m)
	}
	return true
}

func propSeed(t *testing.T) uint64 {
	seed := uint64(propDefaultSeed)
	if s := os.Getenv("COUNTD_PROP_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("COUNTD_PROP_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (set COUNTD_PROP_SEED to override)", seed)
	return seed
}

func TestCountersMatchModel(t *testing.T) {
	seed := propSeed(t)
	for seq := 0; seq < propSequences; seq++ {
		propSequence(t, seed, seq)
	}
}

func propSequence(t *testing.T, seed uint64, seq int) {
	t.Helper()
	run := &propRun{t: t, seed: seed, seq: seq, phase: "before snapshot"}
	g := &propGen{r: rand.New(rand.NewPCG(seed, uint64(seq))), now: propBaseTime}
	m := newPropModel()
	orig := New()
	index := uint64(0)
	next := func() uint64 {
		// Indexes increase, with occasional gaps (entries that are not
		// commands, such as configuration changes).
		if g.chance(5) {
			return index + 2 + uint64(g.pick(3))
		}
		return index + 1
	}
	for range propSteps {
		i := next()
		if run.step(m, []*State{orig}, g.command(m), i) {
			index = i
		}
	}

	snap := orig.Snapshot()
	if snap.AppliedIndex() != m.applied {
		run.fatalf("snapshot applied index %d, want %d", snap.AppliedIndex(), m.applied)
	}
	var buf bytes.Buffer
	n, err := snap.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		run.fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, buf.Len())
	}
	encoded := bytes.Clone(buf.Bytes())

	restored := New()
	if seq%2 == 1 {
		// Restore must replace the whole state, including idempotency keys
		// the target already remembered.
		junk := &propGen{r: rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(seq))), now: propBaseTime}
		jm := newPropModel()
		for j := uint64(1); j <= 30; j++ {
			c := junk.command(jm)
			if jm.validate(c) != "" {
				continue
			}
			jm.apply(c, j)
			data, err := Encode(c)
			if err != nil {
				run.fatalf("junk Encode: %v", err)
			}
			restored.Apply(j, data)
		}
	}
	if err := restored.Restore(&buf); err != nil {
		run.fatalf("Restore: %v", err)
	}
	if !restored.Snapshot().Equal(snap) {
		run.fatalf("restored snapshot differs from the original")
	}
	if got := restored.AppliedIndex(); got != m.applied {
		run.fatalf("restored applied index %d, want %d", got, m.applied)
	}
	run.checkState("restored", restored, m)

	run.phase = "after snapshot"
	for range propContinue {
		i := next()
		if run.step(m, []*State{orig, restored}, g.command(m), i) {
			index = i
		}
	}
	if !orig.Snapshot().Equal(restored.Snapshot()) {
		run.fatalf("original and restored states diverged")
	}
	// A snapshot is a point-in-time copy: later applies do not change it.
	buf.Reset()
	if _, err := snap.WriteTo(&buf); err != nil {
		run.fatalf("second WriteTo: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), encoded) {
		run.fatalf("snapshot changed after later applies")
	}
}

// TestPropModelSelfCheck pins the model to a few SPEC examples, so a model
// that drifted into agreeing with a broken FSM would be caught here.
func TestPropModelSelfCheck(t *testing.T) {
	m := newPropModel()
	c := propCounter{value: -7, increment: 5, offset: 2}
	if first, last, ok := propNext(c, 2); !ok || first != -3 || last != 2 {
		t.Fatalf("next from -7, increment 5, offset 2 = %d..%d (%v), SPEC says first -3", first, last, ok)
	}
	if first, _, ok := propNext(propDefaultCounter(), 1); !ok || first != 1 {
		t.Fatalf("fresh counter mints %d, want 1", first)
	}
	if _, _, ok := propNext(propCounter{value: math.MaxInt64 - 1, increment: 1}, 2); ok {
		t.Fatalf("minting past MaxInt64 did not overflow")
	}
	if first, last, ok := propNext(propCounter{value: math.MaxInt64 - 2, increment: 1}, 2); !ok || last != math.MaxInt64 || first != math.MaxInt64-1 {
		t.Fatalf("minting up to MaxInt64 = %d..%d (%v)", first, last, ok)
	}
	cmd := Command{Payload: CounterAdd{ID: "a", Delta: 1}, IdempotencyKey: "k", Time: 100, KeyWindow: 10}
	if r, _ := m.apply(cmd, 1); r.code != "" || r.value.(*Counter).Value != 1 {
		t.Fatalf("add: %+v", r)
	}
	cmd.Time = 109
	if r, _ := m.apply(cmd, 2); !r.replayed || r.index != 1 {
		t.Fatalf("retry inside the window: %+v", r)
	}
	cmd.Payload = CounterAdd{ID: "a", Delta: 2}
	if r, _ := m.apply(cmd, 3); r.code != CodeIdempotencyMismatch {
		t.Fatalf("different request under the same key: %+v", r)
	}
	cmd.Time = 110
	if r, _ := m.apply(cmd, 4); r.replayed || r.value.(*Counter).Value != 3 {
		t.Fatalf("after the window: %+v", r)
	}
}
