package fsm

// Model-based property test for every object kind: counters, queues, tenant
// item counts and documents, with the idempotency window, backup restores
// (merged, forced, advanced, corrupt; see property_restore_test.go) and a
// snapshot round trip in the middle of each sequence.
//
// propModel below is a deliberately naive re-implementation of the rules in
// SPEC.md ("Counters — signed 64-bit", "Queues", "Tenant item counts",
// "Documents", and the Details paragraphs Counters., Queues., Items.,
// Documents., Idempotency.): maps of counters, queues, tenants and documents,
// a map of idempotency keys compared structurally, math/big for next and add
// so it shares none of the FSM's overflow tricks, queues as a list of
// members in join order with a linear scan for the lowest free counter,
// and documents as Go values decoded with UseNumber, patched by the model's
// own RFC 7386 merge patch and compared semantically. Random command
// sequences run against both; every result, every read (periodically all of
// them), the document change history a watcher would get (with a small
// WatchHistory, and none kept across a restore), and the state after a
// snapshot round trip must agree. Values reads returned earlier must not
// change as the state moves on; they and the snapshot are read from another
// goroutine while commands apply, so -race catches memory still shared with
// the state. The run fails if it stops reaching any outcome in
// propMustCover.
//
// The seed is fixed so runs are reproducible; COUNTD_PROP_SEED overrides it.
// A failure prints the seed, the sequence and its last commands.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
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

	// propWatchHistory is the states' WatchHistory: small, so that watchers
	// resuming from an older version get a reset.
	propWatchHistory = 5
	// propFullEvery is how often (in commands) every read is compared, not
	// only the counters.
	propFullEvery = 16
)

var (
	propNames      = []string{"a", "b", "c.d", "x:y@z-1"} // mostly counters
	propQueueNames = []string{"q", "q.2"}                 // mostly queues; same name space as counters
	propObjNames   = append(append([]string{}, propNames...), propQueueNames...)
	propBadNames   = []string{"", ".", "..", "a b", "a/b", "é", "a\x00", strings.Repeat("n", MaxNameLen+1)}
	propKeys       = []string{"k1", "k2", "k3", "k4", " ~", strings.Repeat("K", MaxIdempotencyKeyLen)}
	propBadKeys    = []string{strings.Repeat("k", MaxIdempotencyKeyLen+1), "k\n", "\x7f", "ké"}
	propWindows    = []time.Duration{0, time.Nanosecond, time.Millisecond, time.Second, 10 * time.Second, time.Minute, 10 * time.Minute}

	propProcs      = []string{"p1", "p2", "p3", "p4", "zk-1.example.com:2888"}
	propBadProcs   = []string{"", "..", "p/1", "p 1"}
	propTagKeys    = []string{"role", "zone", "k.1"}
	propTagValues  = []string{"", "leader", "<&>", strings.Repeat("v", MaxTagValueLen)}
	propTenants    = []string{"a", "t1", "t-2"} // "a" is also a counter and a document: separate name spaces
	propItemIDs    = []string{"i1", "i2", "i3", "dir/i4", "x:5@y"}
	propBadItemIDs = []string{"", ".", "..", "a b", "é", strings.Repeat("i", MaxNameLen+1)}
	propDocNames   = []string{"a", "d1", "cfg.main"}
	propDocKeys    = []string{"a", "b", "c"}
	propInnerKeys  = []string{"x", "y"}
	propNumbers    = []string{"0", "1", "-7", "42", "12345678901234567890123", "0.5", "-2.25", "1e3"}
	propStrings    = []string{"", "s", "<&>", "ü", `a"b\c`, "\u2028"}
	propBadBodies  = []string{"", "null", "[]", "[1]", "3", `"s"`, "{", "{} {}", `{"a":1} x`, `{"a":}`, `{"a" 1}`}
)

// ---------------------------------------------------------------------------
// The model.

type propCounter struct {
	value, increment, offset, cache int64
	monotonic                       bool
	index                           uint64
}

func propDefaultCounter() propCounter { return propCounter{increment: 1} }

func (c propCounter) view(id string) *Counter {
	return &Counter{ID: id, Value: c.value, Increment: c.increment, Offset: c.offset, Monotonic: c.monotonic, Cache: c.cache, Index: c.index}
}

type propMember struct {
	process string
	counter int64
	tags    map[string]string // never mutated once stored
	token   uint64            // the queue's token after this member joined
	index   uint64
}

// propQueue keeps its members in join order; everything that depends on
// counter order is computed by scanning.
type propQueue struct {
	min, max int64
	reuse    bool
	token    uint64
	used     bool  // a counter was ever handed out
	high     int64 // the highest counter ever handed out, when used
	members  []propMember
	index    uint64
}

func newPropQueue() *propQueue { return &propQueue{min: 1, max: math.MaxInt64} }

func (q *propQueue) find(process string) (propMember, bool) {
	for _, m := range q.members {
		if m.process == process {
			return m, true
		}
	}
	return propMember{}, false
}

func (q *propQueue) holds(c int64) bool {
	for _, m := range q.members {
		if m.counter == c {
			return true
		}
	}
	return false
}

// free is the counter the next join gets: with reuse, the lowest value in
// [min, max] nobody holds; without, the value after the highest ever handed
// out (never below min).
func (q *propQueue) free() (int64, bool) {
	if q.reuse {
		for c := q.min; c <= q.max; c++ {
			if !q.holds(c) {
				return c, true
			}
			if c == math.MaxInt64 {
				break
			}
		}
		return 0, false
	}
	c := q.min
	if q.used && q.high >= c {
		if q.high == math.MaxInt64 {
			return 0, false
		}
		c = q.high + 1
	}
	return c, c <= q.max
}

func (q *propQueue) ticket(id string, m propMember) *Ticket {
	pos := 0
	for _, o := range q.members {
		if o.counter < m.counter {
			pos++
		}
	}
	return &Ticket{Queue: id, ProcessID: m.process, Counter: m.counter, Position: pos, Tags: m.tags, FencingToken: m.token, Index: m.index}
}

func (q *propQueue) view(id string) *Queue {
	v := &Queue{ID: id, FencingToken: q.token, Config: QueueConfig{Min: q.min, Max: q.max, Reuse: q.reuse}, Index: q.index, Members: []*Ticket{}}
	for _, m := range q.members {
		v.Members = append(v.Members, q.ticket(id, m))
	}
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].Position < v.Members[j].Position })
	return v
}

type propTenant struct {
	items map[string]bool
	index uint64
}

type propDoc struct {
	version uint64
	index   uint64
	value   map[string]any // nil when absent; never mutated once stored
	raw     []byte         // value encoded (by encoding/json), nil when absent
	// changes holds every version's change: changes[i].Version == i+1.
	changes []*Change
}

// propResult is what the model expects Apply to return.
type propResult struct {
	index    uint64
	value    any // *Counter, *Mint, *Ticket, *Leave, *Queue, *ItemsAdded, *Document or nil
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
	queues   map[string]*propQueue
	tenants  map[string]*propTenant
	docs     map[string]*propDoc
	keys     map[string]propKey
	applied  uint64
	// now is the leader time of the command being applied.
	now int64
	// backups are the sequence's backups a restore can use; floors holds,
	// per document, the version up to which the last command left no
	// change history (a restore that takes a document as it is).
	backups []propBackup
	floors  map[string]uint64
	// cover, when set, counts the outcomes the sequence reached, so the
	// test can insist that the generator still reaches every one.
	cover map[string]int
}

func (m *propModel) note(outcome string) {
	if m.cover != nil {
		m.cover[outcome]++
	}
}

func propOpName(pl Payload) string { return strings.TrimPrefix(fmt.Sprintf("%T", pl), "fsm.") }

func newPropModel() *propModel {
	return &propModel{
		counters: map[string]propCounter{},
		queues:   map[string]*propQueue{},
		tenants:  map[string]*propTenant{},
		docs:     map[string]*propDoc{},
		keys:     map[string]propKey{},
	}
}

func propValidName(s string, slash bool) bool {
	if len(s) < 1 || len(s) > 256 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:@-", c) >= 0 || slash && c == '/'
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

// propParseObject is the model's reading of a document body or merge patch:
// exactly one JSON value, an object, numbers kept as written.
func propParseObject(raw []byte) (map[string]any, bool) {
	v, ok := propDecodeJSON(raw)
	if !ok {
		return nil, false
	}
	obj, ok := v.(map[string]any)
	return obj, ok
}

// validate returns the code of input rejected before the log (400, 413), or
// "". Precedence among several problems in one command follows the FSM (the
// SPEC only says each is a 400): key, then names, then the other fields.
func (m *propModel) validate(c Command) Code {
	if c.Payload == nil {
		return CodeBadRequest
	}
	if c.IdempotencyKey != "" && !propValidKey(c.IdempotencyKey) {
		return CodeBadRequest
	}
	var precondition func(Precondition) Code
	// A put and a patch check the same: the name, the preconditions, and
	// that the body is a JSON object.
	docWrite := func(name string, pc Precondition, body []byte) Code {
		if !propValidName(name, false) {
			return CodeInvalidName
		}
		if code := precondition(pc); code != "" {
			return code
		}
		if _, ok := propParseObject(body); !ok {
			return CodeBadRequest
		}
		return ""
	}
	precondition = func(pc Precondition) Code {
		if pc.IfMatch != nil && *pc.IfMatch > 1<<62 || pc.IfMatch != nil && pc.IfNoneMatch {
			return CodeBadRequest
		}
		return ""
	}
	switch p := c.Payload.(type) {
	case RestoreBackup:
		return m.validateRestore(p)
	case CounterNext:
		if !propValidName(p.ID, false) {
			return CodeInvalidName
		}
		if p.Count < 1 || p.Count > 1_000_000 {
			return CodeBadRequest
		}
	case CounterAdd:
		if !propValidName(p.ID, false) {
			return CodeInvalidName
		}
	case CounterSet:
		if !propValidName(p.ID, false) {
			return CodeInvalidName
		}
		if p.Value == nil && p.Increment == nil && p.Offset == nil && p.Monotonic == nil && p.Cache == nil {
			return CodeBadRequest
		}
		if p.Increment != nil && (*p.Increment < 1 || *p.Increment > 1<<62) {
			return CodeBadRequest
		}
		if p.Cache != nil && (*p.Cache < 0 || *p.Cache > 1_000_000) {
			return CodeBadRequest
		}
	case CounterDelete:
		if !propValidName(p.ID, false) {
			return CodeInvalidName
		}
	case QueueJoin:
		if !propValidName(p.ID, false) || !propValidName(p.ProcessID, false) {
			return CodeInvalidName
		}
		if len(p.Tags) > 64 {
			return CodeBadRequest
		}
		for k, v := range p.Tags { // the generator puts at most one bad tag in a map
			if !propValidName(k, false) {
				return CodeInvalidName
			}
			if len(v) > 1024 {
				return CodeBadRequest
			}
		}
	case QueueLeave:
		if !propValidName(p.ID, false) || !propValidName(p.ProcessID, false) {
			return CodeInvalidName
		}
	case QueueConfigure:
		if !propValidName(p.ID, false) {
			return CodeInvalidName
		}
		if p.Min == nil && p.Max == nil && p.Reuse == nil ||
			p.Min != nil && *p.Min < 0 || p.Max != nil && *p.Max < 0 ||
			p.Min != nil && p.Max != nil && *p.Min > *p.Max {
			return CodeBadRequest
		}
	case QueueDelete:
		if !propValidName(p.ID, false) {
			return CodeInvalidName
		}
	case ItemsAdd:
		if len(p.Items) == 0 {
			return CodeBadRequest
		}
		if len(p.Items) > 1_000_000 {
			return CodeTooLarge
		}
		for _, it := range p.Items {
			if !propValidName(it.Tenant, false) || !propValidName(it.ID, true) {
				return CodeInvalidName
			}
		}
	case DocPut:
		return docWrite(p.Name, p.Precondition, p.Value)
	case DocPatch:
		return docWrite(p.Name, p.Precondition, p.Patch)
	case DocDelete:
		if !propValidName(p.Name, false) {
			return CodeInvalidName
		}
		if p.IfNoneMatch {
			return CodeBadRequest
		}
		if code := precondition(p.Precondition); code != "" {
			return code
		}
	default:
		panic(fmt.Sprintf("model: unknown payload %T", p))
	}
	return ""
}

// apply returns the expected result and whether the command reached the log
// (and so consumed the index).
func (m *propModel) apply(c Command, index uint64) (propResult, bool) {
	if code := m.validate(c); code != "" {
		m.note(propOpName(c.Payload) + " rejected before the log: " + string(code))
		return propResult{code: code}, false
	}
	m.applied, m.now = index, c.Time
	if c.IdempotencyKey != "" {
		if k, ok := m.keys[c.IdempotencyKey]; ok && k.expires > c.Time {
			if !reflect.DeepEqual(k.payload, c.Payload) {
				m.note("idempotency mismatch")
				return propResult{index: index, code: CodeIdempotencyMismatch}, true
			}
			m.note(propOpName(c.Payload) + " replayed")
			r := k.result
			r.replayed = true
			return r, true
		}
		// Expired: absent for lookups. The model keeps the entry, as the
		// FSM's table may until it reaches the front of its FIFO; only a
		// backup can tell (see addBackup).
	}
	r := m.exec(c.Payload, index)
	outcome := "ok"
	if r.code != "" {
		outcome = string(r.code)
	}
	m.note(propOpName(c.Payload) + " " + outcome)
	// A 400 decided in the log leaves the key unused, like one caught
	// before the log.
	if c.IdempotencyKey != "" && r.code != CodeBadRequest && r.code != CodeInvalidName && r.code != CodeTooLarge {
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
	ok := func(v any) propResult { return propResult{index: index, value: v} }
	isQueue := func(id string) bool { _, q := m.queues[id]; return q }
	counterNamed := func(id string) bool { _, c := m.counters[id]; return c }
	switch p := pl.(type) {
	case RestoreBackup:
		return m.restore(p, index)
	case CounterNext:
		if isQueue(p.ID) {
			return refuse(CodeWrongType)
		}
		c := m.get(p.ID)
		first, last, fits := propNext(c, p.Count)
		if !fits {
			return refuse(CodeOverflow)
		}
		c.value, c.index = last, index
		m.counters[p.ID] = c
		return ok(&Mint{ID: p.ID, First: first, Last: last, Count: p.Count, Step: c.increment, Index: index})
	case CounterAdd:
		if isQueue(p.ID) {
			return refuse(CodeWrongType)
		}
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
		return ok(c.view(p.ID))
	case CounterSet:
		if isQueue(p.ID) {
			return refuse(CodeWrongType)
		}
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
		if p.Cache != nil {
			c.cache = *p.Cache
		}
		c.index = index
		m.counters[p.ID] = c
		return ok(c.view(p.ID))
	case CounterDelete:
		if isQueue(p.ID) {
			return refuse(CodeWrongType)
		}
		c, exists := m.counters[p.ID]
		if !exists {
			return ok(nil)
		}
		if c.monotonic && !p.Force {
			return refuse(CodeNotMonotonic)
		}
		delete(m.counters, p.ID)
		return ok(nil)

	case QueueJoin:
		if counterNamed(p.ID) {
			return refuse(CodeWrongType)
		}
		q := m.queues[p.ID]
		if q == nil {
			q = newPropQueue()
		} else if mem, queued := q.find(p.ProcessID); queued {
			// A re-join: the stored ticket with the current token; not a write.
			t := q.ticket(p.ID, mem)
			t.FencingToken = q.token
			m.note("queue re-join")
			return ok(t)
		}
		c, free := q.free()
		if !free {
			return refuse(CodeQueueFull)
		}
		if q.reuse && q.used && c < q.high {
			m.note("queue join reuses a lower counter")
		}
		q.token++
		mem := propMember{process: p.ProcessID, counter: c, token: q.token, index: index}
		if len(p.Tags) > 0 {
			mem.tags = maps.Clone(p.Tags)
		}
		q.members = append(q.members, mem)
		if !q.used || c > q.high {
			q.used, q.high = true, c
		}
		q.index = index
		m.queues[p.ID] = q
		return ok(q.ticket(p.ID, mem))
	case QueueLeave:
		if counterNamed(p.ID) {
			return refuse(CodeWrongType)
		}
		q := m.queues[p.ID]
		if q == nil {
			return refuse(CodeNotFound)
		}
		if _, queued := q.find(p.ProcessID); !queued {
			return refuse(CodeNotFound)
		}
		var rest []propMember
		for _, mem := range q.members {
			if mem.process != p.ProcessID {
				rest = append(rest, mem)
			}
		}
		q.members = rest
		q.token++
		q.index = index
		return ok(&Leave{Queue: p.ID, FencingToken: q.token, Index: index})
	case QueueConfigure:
		if counterNamed(p.ID) {
			return refuse(CodeWrongType)
		}
		q := m.queues[p.ID]
		if q == nil {
			q = newPropQueue()
		}
		lo, hi, reuse := q.min, q.max, q.reuse
		if p.Min != nil {
			lo = *p.Min
		}
		if p.Max != nil {
			hi = *p.Max
		}
		if p.Reuse != nil {
			reuse = *p.Reuse
		}
		if lo > hi {
			// Only knowable against the stored config, so it reaches the log.
			return refuse(CodeBadRequest)
		}
		q.min, q.max, q.reuse, q.index = lo, hi, reuse, index
		m.queues[p.ID] = q
		return ok(q.view(p.ID))
	case QueueDelete:
		if counterNamed(p.ID) {
			return refuse(CodeWrongType)
		}
		delete(m.queues, p.ID)
		return ok(nil)

	case ItemsAdd:
		res := &ItemsAdded{Index: index}
		for _, it := range p.Items {
			t := m.tenants[it.Tenant]
			if t == nil {
				t = &propTenant{items: map[string]bool{}}
				m.tenants[it.Tenant] = t
			}
			if t.items[it.ID] {
				res.Duplicates++
				continue
			}
			t.items[it.ID] = true
			t.index = index
			res.Added++
		}
		if res.Duplicates > 0 {
			m.note("items: duplicates")
		}
		if len(p.Items) > 1 && res.Added+res.Duplicates == int64(len(p.Items)) {
			seen := map[Item]bool{}
			for _, it := range p.Items {
				if seen[it] {
					m.note("items: duplicate inside one batch")
					break
				}
				seen[it] = true
			}
		}
		return ok(res)

	case DocPut:
		if code := m.docPrecondition(p.Name, p.Precondition); code != "" {
			return refuse(code)
		}
		obj, _ := propParseObject(p.Value)
		return ok(m.writeDoc(p.Name, obj, index))
	case DocPatch:
		if code := m.docPrecondition(p.Name, p.Precondition); code != "" {
			return refuse(code)
		}
		patch, _ := propParseObject(p.Patch)
		var cur any = map[string]any{}
		if d := m.docs[p.Name]; d != nil && d.value != nil {
			cur = d.value
		}
		if propNestedRemoval(cur, patch, 0) {
			m.note("merge patch removes a nested key")
		}
		return ok(m.writeDoc(p.Name, propMergePatch(cur, patch).(map[string]any), index))
	case DocDelete:
		if code := m.docPrecondition(p.Name, p.Precondition); code != "" {
			return refuse(code)
		}
		if d := m.docs[p.Name]; d != nil && d.value != nil {
			m.writeDoc(p.Name, nil, index)
		}
		return ok(nil)
	}
	panic(fmt.Sprintf("model: unknown payload %T", pl))
}

func (m *propModel) docPrecondition(name string, pc Precondition) Code {
	d := m.docs[name]
	exists := d != nil && d.value != nil
	if pc.IfNoneMatch && exists {
		return CodePreconditionFailed
	}
	if pc.IfMatch != nil && (!exists || *pc.IfMatch != 0 && *pc.IfMatch != d.version) {
		return CodePreconditionFailed
	}
	return ""
}

// writeDoc makes value (nil: absent) the document's next version.
func (m *propModel) writeDoc(name string, value map[string]any, index uint64) *Document {
	d := m.docs[name]
	if d == nil {
		d = &propDoc{}
		m.docs[name] = d
	}
	if d.value == nil && d.version > 0 {
		m.note("document re-created after a delete")
	}
	d.changes = append(d.changes, &Change{Version: d.version + 1, Index: index, Keys: propDiff(d.value, value)})
	d.version, d.index, d.value, d.raw = d.version+1, index, value, nil
	if value != nil {
		d.raw = propJSON(value)
	}
	return m.docView(name)
}

func (m *propModel) docView(name string) *Document {
	d := m.docs[name]
	if d == nil {
		return &Document{Name: name}
	}
	return &Document{Name: name, Version: d.version, Index: d.index, Value: d.raw}
}

// since is what a watcher of name that has seen version since should get
// next from a state that keeps propWatchHistory versions and has no history
// for versions up to floor (the document's version when the state was
// restored).
func (m *propModel) since(name string, since, floor uint64) (*Document, []*Change) {
	d := m.docs[name]
	if d == nil {
		d = &propDoc{}
	}
	switch {
	case since == d.version:
		return nil, nil
	case since > d.version:
		return m.docView(name), nil
	}
	kept := floor // versions kept: (kept, version]
	if d.version > propWatchHistory && d.version-propWatchHistory > kept {
		kept = d.version - propWatchHistory
	}
	if since < kept {
		return m.docView(name), nil
	}
	return nil, d.changes[since:d.version]
}

// propNestedRemoval reports whether patch removes a key below the top
// level of target (for coverage only).
func propNestedRemoval(target, patch any, depth int) bool {
	p, ok := patch.(map[string]any)
	t, ok2 := target.(map[string]any)
	if !ok || !ok2 {
		return false
	}
	for k, v := range p {
		if _, had := t[k]; had && v == nil && depth > 0 || propNestedRemoval(t[k], v, depth+1) {
			return true
		}
	}
	return false
}

// propMergePatch is RFC 7386 section 2, written out without mutating its
// arguments.
func propMergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	out := map[string]any{}
	if t, ok := target.(map[string]any); ok {
		for k, v := range t {
			out[k] = v
		}
	}
	for k, v := range p {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = propMergePatch(out[k], v)
		}
	}
	return out
}

// propDiff is the change between two versions: one entry per top-level key
// that appeared, disappeared or changed value, sorted by key.
func propDiff(old, cur map[string]any) []KeyChange {
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var out []KeyChange
	for _, k := range sorted {
		ov, inOld := old[k]
		nv, inNew := cur[k]
		switch {
		case inOld && !inNew:
			out = append(out, KeyChange{Type: Removed, Key: k, Old: propJSON(ov)})
		case !inOld && inNew:
			out = append(out, KeyChange{Type: Added, Key: k, New: propJSON(nv)})
		case !propJSONEqual(ov, nv):
			out = append(out, KeyChange{Type: Modified, Key: k, Old: propJSON(ov), New: propJSON(nv)})
		}
	}
	return out
}

func propJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("model: marshal %#v: %v", v, err))
	}
	return b
}

// propJSONEqual compares decoded JSON values; numbers by their text (the
// generator only writes each number one way).
func propJSONEqual(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case json.Number:
		b, ok := b.(json.Number)
		return ok && a == b
	case string:
		b, ok := b.(string)
		return ok && a == b
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !propJSONEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !propJSONEqual(av, bv) {
				return false
			}
		}
		return true
	}
	panic(fmt.Sprintf("propJSONEqual: unexpected %T", a))
}

// propSameJSON compares two encodings semantically; nil (absent) only
// equals nil.
func propSameJSON(a, b []byte) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if bytes.Equal(a, b) && json.Valid(a) {
		return true
	}
	va, oka := propDecodeJSON(a)
	vb, okb := propDecodeJSON(b)
	return oka && okb && propJSONEqual(va, vb)
}

func propDecodeJSON(raw []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	var extra any
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, false
	}
	return v, true
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

func propOneOf[T any](g *propGen, xs []T) T { return xs[g.pick(len(xs))] }

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

// name is a counter name: mostly counters, sometimes a name that is usually
// a queue (wrong_type), rarely invalid.
func (g *propGen) name() string { return g.ownName(propNames, propQueueNames, 12) }

// queueName is the other way round.
func (g *propGen) queueName() string { return g.ownName(propQueueNames, propNames, 17) }

// ownName is one of own, or in otherPct of 100 draws one of other (a name
// of the kind sharing the name space), or in 3 of 100 an invalid name.
func (g *propGen) ownName(own, other []string, otherPct int) string {
	switch x := g.pick(100); {
	case x < 3:
		return propOneOf(g, propBadNames)
	case x < 3+otherPct:
		return propOneOf(g, other)
	}
	return propOneOf(g, own)
}

func (g *propGen) proc() string    { return g.mostly(propProcs, propBadProcs) }
func (g *propGen) docName() string { return g.mostly(propDocNames, propBadNames) }
func (g *propGen) key() string     { return g.mostly(propKeys, propBadKeys) }

// mostly is one of good, or in 3 draws of 100 one of bad.
func (g *propGen) mostly(good, bad []string) string {
	if g.chance(3) {
		return propOneOf(g, bad)
	}
	return propOneOf(g, good)
}

func (g *propGen) window() time.Duration {
	if g.chance(50) {
		return 10 * time.Minute
	}
	return propOneOf(g, propWindows)
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

// tags are nil, a few valid tags, or (rarely) exactly one problem.
func (g *propGen) tags() map[string]string {
	if g.chance(55) {
		return nil
	}
	tags := map[string]string{}
	for range 1 + g.pick(3) {
		tags[propOneOf(g, propTagKeys)] = propOneOf(g, propTagValues)
	}
	switch g.pick(40) {
	case 0:
		tags[propOneOf(g, []string{"", "a b", "..", "k/1"})] = "x"
	case 1:
		tags[propOneOf(g, propTagKeys)] = strings.Repeat("v", MaxTagValueLen+1)
	case 2:
		for i := len(tags); i <= MaxTags; i++ {
			tags[fmt.Sprintf("t%d", i)] = "v"
		}
	}
	return tags
}

// queueBound is a small bound (so that ranges fill up), or one near the
// ends of the int64 range.
func (g *propGen) queueBound() int64 {
	switch g.pick(10) {
	case 0:
		return math.MaxInt64 - g.r.Int64N(3)
	case 1:
		return propOneOf(g, []int64{-1, math.MinInt64})
	default:
		return g.r.Int64N(7)
	}
}

func (g *propGen) items() []Item {
	// (A batch over MaxItemBatch is left to items_test.go: a million items
	// held by the generator would dominate this test's time under -race.)
	switch g.pick(100) {
	case 0:
		return nil
	case 1:
		return []Item{}
	}
	items := make([]Item, 1+g.pick(5))
	for i := range items {
		items[i] = Item{Tenant: propOneOf(g, propTenants), ID: propOneOf(g, propItemIDs)}
		if g.chance(2) {
			items[i].Tenant = propOneOf(g, propBadNames)
		}
		if g.chance(2) {
			items[i].ID = propOneOf(g, propBadItemIDs)
		}
	}
	return items
}

// jsonValue is a random JSON value, nested at most depth objects deep.
func (g *propGen) jsonValue(depth int) any {
	switch g.pick(12) {
	case 0:
		return nil
	case 1:
		return g.chance(50)
	case 2, 3:
		return json.Number(propOneOf(g, propNumbers))
	case 4, 5:
		return propOneOf(g, propStrings)
	case 6:
		arr := make([]any, g.pick(3))
		for i := range arr {
			arr[i] = g.jsonValue(depth - 1)
		}
		return arr
	}
	if depth <= 0 {
		return propOneOf(g, propStrings)
	}
	obj := map[string]any{}
	for range g.pick(3) {
		obj[propOneOf(g, propInnerKeys)] = g.jsonValue(depth - 1)
	}
	return obj
}

// patchValue is a merge-patch member: often null (remove) or an object
// patch whose own members may be null (nested removal).
func (g *propGen) patchValue(depth int) any {
	switch x := g.pick(10); {
	case x < 3:
		return nil
	case x < 8 && depth > 0:
		obj := map[string]any{}
		for range g.pick(3) {
			obj[propOneOf(g, propInnerKeys)] = g.patchValue(depth - 1)
		}
		return obj
	}
	return g.jsonValue(depth)
}

func (g *propGen) docObject(patch bool) map[string]any {
	obj := map[string]any{}
	for range g.pick(4) {
		switch {
		case patch:
			obj[propOneOf(g, propDocKeys)] = g.patchValue(2)
		case g.chance(40): // an object, for patches to recurse into
			inner := map[string]any{}
			for range 1 + g.pick(2) {
				inner[propOneOf(g, propInnerKeys)] = g.jsonValue(1)
			}
			obj[propOneOf(g, propDocKeys)] = inner
		default:
			obj[propOneOf(g, propDocKeys)] = g.jsonValue(2)
		}
	}
	return obj
}

// jsonText encodes v with object members in random order and random
// whitespace: the FSM must not care how a body is spelled.
func (g *propGen) jsonText(v any) []byte {
	var b bytes.Buffer
	var write func(v any)
	ws := func() {
		if g.chance(10) {
			b.WriteString(propOneOf(g, []string{" ", "\n", "\t ", "\r\n"}))
		}
	}
	write = func(v any) {
		ws()
		switch v := v.(type) {
		case map[string]any:
			b.WriteByte('{')
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for i, j := range g.r.Perm(len(keys)) {
				if i > 0 {
					b.WriteByte(',')
				}
				ws()
				b.Write(propJSON(keys[j]))
				ws()
				b.WriteByte(':')
				write(v[keys[j]])
			}
			ws()
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for i, e := range v {
				if i > 0 {
					b.WriteByte(',')
				}
				write(e)
			}
			b.WriteByte(']')
		default:
			b.Write(propJSON(v))
		}
		ws()
	}
	write(v)
	return b.Bytes()
}

func (g *propGen) docBody(patch bool) []byte {
	if g.chance(4) {
		return []byte(propOneOf(g, propBadBodies))
	}
	return g.jsonText(g.docObject(patch))
}

func (g *propGen) precondition(m *propModel, name string, del bool) Precondition {
	var version uint64
	if d := m.docs[name]; d != nil {
		version = d.version
	}
	switch x := g.pick(100); {
	case x < 45:
		return Precondition{}
	case x < 65:
		return Precondition{IfMatch: propPtr(version)}
	case x < 72:
		return Precondition{IfMatch: propPtr(uint64(0))} // "*"
	case x < 82:
		return Precondition{IfMatch: propPtr(version + 1 - uint64(2*g.pick(2)))} // stale or ahead
	case x < 85:
		bad := []Precondition{
			{IfMatch: propPtr(uint64(1<<62 + 1))},
			{IfMatch: propPtr(uint64(math.MaxUint64))},
			{IfMatch: propPtr(version), IfNoneMatch: true},
			{IfMatch: propPtr(uint64(1 << 62))}, // the largest valid one
		}
		return propOneOf(g, bad)
	default:
		if del && !g.chance(20) {
			return Precondition{}
		}
		return Precondition{IfNoneMatch: true}
	}
}

func (g *propGen) payload(m *propModel) Payload {
	if g.pick(1000) == 0 {
		return nil
	}
	if len(m.backups) > 0 && g.chance(3) {
		return g.restorePayload(m)
	}
	switch x := g.pick(100); {
	case x < 40:
		return g.counterPayload(m)
	case x < 68:
		return g.queuePayload()
	case x < 78:
		return ItemsAdd{Items: g.items()}
	default:
		return g.docPayload(m)
	}
}

func (g *propGen) counterPayload(m *propModel) Payload {
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
		if g.chance(20) {
			// Mostly valid block sizes, sometimes out of range.
			p.Cache = propPtr([]int64{0, 1, 10, 1_000_000, -1, 1_000_001}[g.pick(6)])
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

func (g *propGen) queuePayload() Payload {
	id := g.queueName()
	switch x := g.pick(100); {
	case x < 45:
		return QueueJoin{ID: id, ProcessID: g.proc(), Tags: g.tags()}
	case x < 75:
		return QueueLeave{ID: id, ProcessID: g.proc()}
	case x < 93:
		p := QueueConfigure{ID: id}
		switch g.pick(5) {
		case 0: // a small range, so that joins fill it up
			lo := g.r.Int64N(4)
			p.Min, p.Max = propPtr(lo), propPtr(lo+g.r.Int64N(4))
		case 1: // the top of the int64 range
			p.Min, p.Max = propPtr(math.MaxInt64-g.r.Int64N(3)), propPtr(int64(math.MaxInt64))
		default: // any subset, possibly crossing the stored bounds
			if g.chance(50) {
				p.Min = propPtr(g.queueBound())
			}
			if g.chance(50) {
				p.Max = propPtr(g.queueBound())
			}
		}
		if g.chance(50) {
			p.Reuse = propPtr(g.chance(50))
		}
		return p
	default:
		return QueueDelete{ID: id}
	}
}

func (g *propGen) docPayload(m *propModel) Payload {
	name := g.docName()
	switch x := g.pick(100); {
	case x < 40:
		return DocPut{Name: name, Value: g.docBody(false), Precondition: g.precondition(m, name, false)}
	case x < 85:
		return DocPatch{Name: name, Patch: g.docBody(true), Precondition: g.precondition(m, name, false)}
	default:
		return DocDelete{Name: name, Precondition: g.precondition(m, name, true)}
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
	CodeNotFound:            ErrNotFound,
	CodeWrongType:           ErrWrongType,
	CodeConflict:            ErrConflict,
	CodeOverflow:            ErrOverflow,
	CodeNotMonotonic:        ErrNotMonotonic,
	CodeQueueFull:           ErrQueueFull,
	CodePreconditionFailed:  ErrPreconditionFailed,
	CodeTooLarge:            ErrTooLarge,
	CodeIdempotencyMismatch: ErrIdempotencyMismatch,
}

func propOpt[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func propShort(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%q…(%d bytes)", s[:8], len(s))
	}
	return strconv.Quote(s)
}

func propFormatTags(tags map[string]string) string {
	if tags == nil {
		return "nil"
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 6 {
		return fmt.Sprintf("{%d tags}", len(keys))
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = propShort(k) + ":" + propShort(tags[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func propFormatPrecondition(p Precondition) string {
	s := ""
	if p.IfMatch != nil {
		s += fmt.Sprintf(", if-match=%d", *p.IfMatch)
	}
	if p.IfNoneMatch {
		s += ", if-none-match=*"
	}
	return s
}

func propDescribe(c Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "t=+%v", time.Duration(c.Time-propBaseTime))
	if c.IdempotencyKey != "" {
		fmt.Fprintf(&b, " key=%s window=%v", propShort(c.IdempotencyKey), c.KeyWindow)
	}
	switch p := c.Payload.(type) {
	case CounterNext:
		fmt.Fprintf(&b, " next(%q, count=%d)", p.ID, p.Count)
	case CounterAdd:
		fmt.Fprintf(&b, " add(%q, delta=%d, default=%s)", p.ID, p.Delta, propOpt(p.Default))
	case CounterSet:
		fmt.Fprintf(&b, " set(%q, value=%s, increment=%s, offset=%s, monotonic=%s, if_value=%s, cache=%s)",
			p.ID, propOpt(p.Value), propOpt(p.Increment), propOpt(p.Offset), propOpt(p.Monotonic), propOpt(p.IfValue), propOpt(p.Cache))
	case CounterDelete:
		fmt.Fprintf(&b, " delete(%q, force=%v)", p.ID, p.Force)
	case QueueJoin:
		fmt.Fprintf(&b, " join(%q, %q, tags=%s)", p.ID, p.ProcessID, propFormatTags(p.Tags))
	case QueueLeave:
		fmt.Fprintf(&b, " leave(%q, %q)", p.ID, p.ProcessID)
	case QueueConfigure:
		fmt.Fprintf(&b, " configure(%q, min=%s, max=%s, reuse=%s)", p.ID, propOpt(p.Min), propOpt(p.Max), propOpt(p.Reuse))
	case QueueDelete:
		fmt.Fprintf(&b, " queue-delete(%q)", p.ID)
	case ItemsAdd:
		if len(p.Items) > 10 {
			fmt.Fprintf(&b, " items(%d items)", len(p.Items))
			break
		}
		parts := make([]string, len(p.Items))
		for i, it := range p.Items {
			parts[i] = propShort(it.Tenant) + "/" + propShort(it.ID)
		}
		fmt.Fprintf(&b, " items[%s]", strings.Join(parts, " "))
	case DocPut:
		fmt.Fprintf(&b, " doc-put(%q, %s%s)", p.Name, propShort(string(p.Value)), propFormatPrecondition(p.Precondition))
	case DocPatch:
		fmt.Fprintf(&b, " doc-patch(%q, %s%s)", p.Name, propShort(string(p.Patch)), propFormatPrecondition(p.Precondition))
	case DocDelete:
		fmt.Fprintf(&b, " doc-delete(%q%s)", p.Name, propFormatPrecondition(p.Precondition))
	case RestoreBackup:
		fmt.Fprintf(&b, " restore(force=%v, advance=%d, %d bytes)", p.Force, p.Advance, len(p.Snapshot))
	default:
		fmt.Fprintf(&b, " %#v", p)
	}
	return b.String()
}

func propFormatTicket(t *Ticket) string {
	return fmt.Sprintf("{Queue:%s Process:%s Counter:%d Position:%d Tags:%s Token:%d Index:%d}",
		t.Queue, t.ProcessID, t.Counter, t.Position, propFormatTags(t.Tags), t.FencingToken, t.Index)
}

func propFormatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case *Counter:
		return fmt.Sprintf("%+v", *v)
	case *Mint:
		return fmt.Sprintf("%+v", *v)
	case *Ticket:
		return propFormatTicket(v)
	case *Leave:
		return fmt.Sprintf("%+v", *v)
	case *Queue:
		parts := make([]string, len(v.Members))
		for i, t := range v.Members {
			parts[i] = propFormatTicket(t)
		}
		return fmt.Sprintf("{ID:%s Token:%d Config:%+v Index:%d Members:[%s]}", v.ID, v.FencingToken, v.Config, v.Index, strings.Join(parts, " "))
	case *ItemsAdded:
		return fmt.Sprintf("%+v", *v)
	case *TenantCount:
		return fmt.Sprintf("%+v", *v)
	case *Document:
		val := "absent"
		if v.Value != nil {
			val = string(v.Value)
		}
		return fmt.Sprintf("{Name:%s Version:%d Index:%d Value:%s}", v.Name, v.Version, v.Index, val)
	}
	return fmt.Sprintf("%#v", v)
}

func propFormatChanges(cs []*Change) string {
	var b strings.Builder
	b.WriteString("[")
	for _, c := range cs {
		fmt.Fprintf(&b, "\n    v%d@%d:", c.Version, c.Index)
		for _, k := range c.Keys {
			fmt.Fprintf(&b, " %s %q", k.Type, k.Key)
			if k.Old != nil {
				fmt.Fprintf(&b, " old=%s", k.Old)
			}
			if k.New != nil {
				fmt.Fprintf(&b, " new=%s", k.New)
			}
			b.WriteString(";")
		}
	}
	b.WriteString("]")
	return b.String()
}

func propFormatResult(r Result) string {
	s := fmt.Sprintf("{Index:%d Replayed:%v", r.Index, r.Replayed)
	if r.Value != nil {
		s += " Value:" + propFormatValue(r.Value)
	}
	if r.Err != nil {
		var fe *Error
		if errors.As(r.Err, &fe) {
			s += fmt.Sprintf(" Err:{%s %q", fe.Code, fe.Message)
			if fe.Current != nil {
				s += " Current:" + propFormatValue(fe.Current)
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
	if w.value != nil {
		s += " Value:" + propFormatValue(w.value)
	}
	if w.code != "" {
		s += " Err:" + string(w.code)
		if w.current != nil {
			s += fmt.Sprintf(" Current:%+v", *w.current)
		}
	}
	return s + "}"
}

// propTarget is one state under test. floor holds, per document, the version
// up to which the state has no change history (a restore drops it).
type propTarget struct {
	label string
	st    *State
	floor map[string]uint64
	// held are values reads returned earlier, with what they held then: a
	// returned value belongs to the caller and must not change when the
	// state moves on (a watcher sends its changes outside the lock).
	held []propHeld
}

type propHeld struct {
	what              propWhat
	got, want         any       // a read's value and the model's, or
	changes, wantChgs []*Change // a watcher's changes and the model's
}

func (h propHeld) stable() bool {
	if h.changes != nil {
		return propSameChanges(h.changes, h.wantChgs)
	}
	return propSameValue(h.got, h.want)
}

// hold keeps a returned value for later re-checking, at most a few per
// target.
func (p *propRun) hold(tg *propTarget, h propHeld) {
	if len(tg.held) < 8 {
		tg.held = append(tg.held, h)
	} else if p.r.IntN(4) == 0 {
		tg.held[p.r.IntN(len(tg.held))] = h
	}
}

func (p *propRun) checkHeld(tg *propTarget) {
	for _, h := range tg.held {
		if !h.stable() {
			got, want := propFormatValue(h.got), propFormatValue(h.want)
			if h.changes != nil {
				got, want = propFormatChanges(h.changes), propFormatChanges(h.wantChgs)
			}
			p.fatalf("%s: the value it returned earlier has changed since\n now %s\n was %s", h.what, got, want)
		}
	}
}

type propRun struct {
	t       *testing.T
	seed    uint64
	seq     int
	phase   string
	r       *rand.Rand // for sampling reads; separate from the generator
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
	if len(h) > 60 {
		h = h[len(h)-60:]
	}
	lines := make([]string, len(h))
	for i, e := range h {
		lines[i] = e.String()
	}
	p.t.Fatalf("seed %d (COUNTD_PROP_SEED), sequence %d, %s, command %d: %s\nlast commands (the last one is the latest):\n  %s",
		p.seed, p.seq, p.phase, len(p.history), fmt.Sprintf(format, args...), strings.Join(lines, "\n  "))
}

func (p *propRun) checkResult(label string, got Result, want propResult) {
	bad := func(what string) {
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

// propWhat names a read in a failure message; it is formatted only then,
// keeping the checks cheap under the race detector.
type propWhat struct {
	format string
	args   []any
}

func (w propWhat) String() string { return fmt.Sprintf(w.format, w.args...) }

func propRead(format string, args ...any) propWhat { return propWhat{format, args} }

// checkErr checks a read's error against the code the model expects ("" for
// none).
func (p *propRun) checkErr(what propWhat, err error, want Code) {
	if got := codeOf(err); got != want {
		p.fatalf("%s: error %q (%v), want %q", what, got, err, want)
	}
	if want != "" && !errors.Is(err, propSentinels[want]) {
		p.fatalf("%s: errors.Is(%v, sentinel %s) is false", what, err, want)
	}
}

func (p *propRun) checkApplied(what propWhat, got uint64, m *propModel) {
	if got != m.applied {
		p.fatalf("%s reports applied index %d, want %d", what, got, m.applied)
	}
}

// checkState compares reads with the model: the counter list and the
// counter named touched always, every other read when full, and with all,
// every resume point of every document.
func (p *propRun) checkState(tg *propTarget, m *propModel, touched string, full, all bool) {
	st, label := tg.st, tg.label
	list, applied := st.Counters("")
	p.checkApplied(propRead("%s: Counters", label), applied, m)
	if want := m.list(""); !propSameList(list, want) {
		p.fatalf("%s: Counters(\"\") differs\n got  %s\n want %s", label, propFormatList(list), propFormatList(want))
	}
	names := propObjNames
	if !full {
		names = nil
		if touched != "" {
			names = []string{touched}
		}
	} else if list, _ := st.Counters("c"); !propSameList(list, m.list("c")) {
		p.fatalf("%s: Counters(\"c\") differs\n got  %s\n want %s", label, propFormatList(list), propFormatList(m.list("c")))
	}
	for _, name := range names {
		c, idx, err := st.Counter(name)
		what := propRead("%s: Counter(%q)", label, name)
		p.checkApplied(what, idx, m)
		if _, isQueue := m.queues[name]; isQueue {
			p.checkErr(what, err, CodeWrongType)
			continue
		}
		p.checkErr(what, err, "")
		if want := m.get(name).view(name); c == nil || *c != *want {
			p.fatalf("%s = %s, want %+v", what, propFormatValue(c), *want)
		}
	}
	if !full {
		return
	}

	for _, name := range propObjNames {
		_, isCounter := m.counters[name]
		mq := m.queues[name]
		if mq == nil {
			mq = newPropQueue()
		}
		q, idx, err := st.Queue(name)
		what := propRead("%s: Queue(%q)", label, name)
		p.checkApplied(what, idx, m)
		if isCounter {
			p.checkErr(what, err, CodeWrongType)
		} else {
			p.checkErr(what, err, "")
			if want := mq.view(name); !propSameValue(q, want) {
				p.fatalf("%s differs\n got  %s\n want %s", what, propFormatValue(q), propFormatValue(want))
			} else if len(want.Members) > 0 {
				p.hold(tg, propHeld{what: what, got: q, want: want})
			}
		}
		for _, proc := range propProcs {
			tk, idx, err := st.QueueMember(name, proc)
			what := propRead("%s: QueueMember(%q, %q)", label, name, proc)
			p.checkApplied(what, idx, m)
			mem, queued := mq.find(proc)
			switch {
			case isCounter:
				p.checkErr(what, err, CodeWrongType)
			case !queued:
				p.checkErr(what, err, CodeNotFound)
			default:
				p.checkErr(what, err, "")
				if want := mq.ticket(name, mem); !propSameValue(tk, want) {
					p.fatalf("%s = %s, want %s", what, propFormatValue(tk), propFormatValue(want))
				}
			}
		}
	}

	for _, name := range propTenants {
		tc, idx := st.TenantCount(name)
		what := propRead("%s: TenantCount(%q)", label, name)
		p.checkApplied(what, idx, m)
		want := &TenantCount{Tenant: name}
		if t := m.tenants[name]; t != nil {
			want.Count, want.Index = int64(len(t.items)), t.index
		}
		if tc == nil || *tc != *want {
			p.fatalf("%s = %s, want %+v", what, propFormatValue(tc), *want)
		}
	}

	for _, name := range propDocNames {
		d, idx := st.Document(name)
		what := propRead("%s: Document(%q)", label, name)
		p.checkApplied(what, idx, m)
		want := m.docView(name)
		if !propSameValue(d, want) {
			p.fatalf("%s = %s, want %s", what, propFormatValue(d), propFormatValue(want))
		}
		p.hold(tg, propHeld{what: what, got: d, want: want})
		version := int(want.Version)
		sinces := []int{p.r.IntN(version + 2), max(0, version-p.r.IntN(propWatchHistory+3))}
		if all {
			sinces = sinces[:0]
			for v := range version + 3 {
				sinces = append(sinces, v)
			}
		}
		for _, since := range sinces {
			p.checkSince(tg, m, name, uint64(since))
		}
	}
}

func (p *propRun) checkSince(tg *propTarget, m *propModel, name string, since uint64) {
	reset, changes, applied := tg.st.DocumentSince(name, since)
	what := propRead("%s: DocumentSince(%q, %d) (history floor %d)", tg.label, name, since, tg.floor[name])
	p.checkApplied(what, applied, m)
	wantReset, wantChanges := m.since(name, since, tg.floor[name])
	switch d := m.docs[name]; {
	case wantReset == nil && len(wantChanges) > 0:
		m.note("watch resumes with changes")
	case wantReset != nil && d != nil && since < d.version && since >= tg.floor[name]:
		m.note("watch reset: version left the history")
	case wantReset != nil && d != nil && since < d.version:
		m.note("watch reset: history dropped by a restore")
	case wantReset != nil:
		m.note("watch reset: resume point ahead")
	}
	if wantReset != nil {
		if reset == nil || len(changes) != 0 || !propSameValue(reset, wantReset) {
			p.fatalf("%s = reset %s, changes %s\n want reset %s", what, propFormatValue(reset), propFormatChanges(changes), propFormatValue(wantReset))
		}
		return
	}
	if reset != nil || !propSameChanges(changes, wantChanges) {
		p.fatalf("%s = reset %s, changes %s\n want changes %s", what, propFormatValue(reset), propFormatChanges(changes), propFormatChanges(wantChanges))
	}
	if len(changes) > 0 && p.r.IntN(8) == 0 {
		p.hold(tg, propHeld{what: what, changes: changes, wantChgs: wantChanges})
	}
}

// propSameValue compares result and read values by content; document
// values semantically (as JSON), tags as maps (nil and empty alike).
func propSameValue(a, b any) bool { return propSameValueMode(a, b, false) }

// propSameValueMode with exact compares document values byte for byte,
// which two replicas must agree on.
func propSameValueMode(a, b any, exact bool) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case *Counter:
		b, ok := b.(*Counter)
		return ok && a != nil && b != nil && *a == *b
	case *Mint:
		b, ok := b.(*Mint)
		return ok && a != nil && b != nil && *a == *b
	case *Ticket:
		b, ok := b.(*Ticket)
		return ok && propSameTicket(a, b)
	case *Leave:
		b, ok := b.(*Leave)
		return ok && a != nil && b != nil && *a == *b
	case *Queue:
		b, ok := b.(*Queue)
		if !ok || a == nil || b == nil || a.ID != b.ID || a.FencingToken != b.FencingToken || a.Config != b.Config ||
			a.Index != b.Index || len(a.Members) != len(b.Members) || (a.Members == nil) != (b.Members == nil) {
			return false
		}
		for i := range a.Members {
			if !propSameTicket(a.Members[i], b.Members[i]) {
				return false
			}
		}
		return true
	case *ItemsAdded:
		b, ok := b.(*ItemsAdded)
		return ok && a != nil && b != nil && *a == *b
	case *Restored:
		b, ok := b.(*Restored)
		return ok && a != nil && b != nil && *a == *b
	case *Document:
		b, ok := b.(*Document)
		if !ok || a == nil || b == nil || a.Name != b.Name || a.Version != b.Version || a.Index != b.Index {
			return false
		}
		if exact {
			return (a.Value == nil) == (b.Value == nil) && bytes.Equal(a.Value, b.Value)
		}
		return propSameJSON(a.Value, b.Value)
	}
	return false
}

func propSameTicket(a, b *Ticket) bool {
	return a != nil && b != nil && a.Queue == b.Queue && a.ProcessID == b.ProcessID && a.Counter == b.Counter &&
		a.Position == b.Position && a.FencingToken == b.FencingToken && a.Index == b.Index && maps.Equal(a.Tags, b.Tags)
}

func propSameChanges(a, b []*Change) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Version != b[i].Version || a[i].Index != b[i].Index || len(a[i].Keys) != len(b[i].Keys) {
			return false
		}
		for j, ka := range a[i].Keys {
			kb := b[i].Keys[j]
			if ka.Type != kb.Type || ka.Key != kb.Key || !propSameJSON(ka.Old, kb.Old) || !propSameJSON(ka.New, kb.New) {
				return false
			}
		}
	}
	return true
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
	if a.Index != b.Index || a.Replayed != b.Replayed || !propSameValueMode(a.Value, b.Value, true) {
		return false
	}
	if a.Err == nil || b.Err == nil {
		return a.Err == nil && b.Err == nil
	}
	var ea, eb *Error
	if !errors.As(a.Err, &ea) || !errors.As(b.Err, &eb) {
		return false
	}
	return ea.Code == eb.Code && ea.Message == eb.Message && propSameValueMode(ea.Current, eb.Current, true)
}

func propFormatList(cs []*Counter) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%+v", *c)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// step applies c to the model and to every target at index, checks every
// result and read, and reports whether the command reached the log.
func (p *propRun) step(m *propModel, targets []*propTarget, c Command, index uint64) bool {
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
	_, restore := c.Payload.(RestoreBackup)
	full := len(p.history)%propFullEvery == 0 || restore
	for _, tg := range targets {
		for name, floor := range m.floors {
			if tg.floor == nil {
				tg.floor = map[string]uint64{}
			}
			tg.floor[name] = floor
		}
	}
	m.floors = nil
	var first Result
	for i, tg := range targets {
		got := tg.st.Apply(index, data)
		p.checkResult(tg.label, got, want)
		if i == 0 {
			first = got
			entry.got = got
		} else if !propSameResult(got, first) {
			p.fatalf("%s returned %s, %s returned %s", tg.label, propFormatResult(got), targets[0].label, propFormatResult(first))
		}
		p.checkState(tg, m, propTouched(c.Payload), full, false)
	}
	return true
}

// propTouched is the counter or queue name a command acts on, if any: the
// payloads of counters and queues, and only those, name it in a field ID.
func propTouched(pl Payload) string {
	v := reflect.ValueOf(pl)
	if v.Kind() != reflect.Struct {
		return ""
	}
	f := v.FieldByName("ID")
	if !f.IsValid() || f.Kind() != reflect.String || !propValidName(f.String(), false) {
		return ""
	}
	return f.String()
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

// propMustCover are outcomes every run must reach, or the generator has
// drifted into testing less than it claims.
var propMustCover = []string{
	"CounterNext ok", "CounterNext overflow", "CounterNext wrong_type",
	"CounterAdd not_monotonic", "CounterSet conflict", "CounterDelete wrong_type",
	"QueueJoin ok", "QueueJoin queue_full", "QueueJoin wrong_type", "QueueJoin replayed",
	"QueueJoin rejected before the log: invalid_name", "QueueJoin rejected before the log: bad_request",
	"queue re-join", "queue join reuses a lower counter",
	"QueueLeave ok", "QueueLeave not_found", "QueueLeave wrong_type",
	"QueueConfigure ok", "QueueConfigure bad_request", "QueueConfigure rejected before the log: bad_request",
	"QueueDelete ok", "QueueDelete wrong_type",
	"ItemsAdd ok", "ItemsAdd replayed", "ItemsAdd rejected before the log: invalid_name", "ItemsAdd rejected before the log: bad_request",
	"DocPut ok", "DocPut precondition_failed", "DocPut rejected before the log: bad_request", "DocPut replayed",
	"DocPatch ok", "DocPatch precondition_failed", "DocPatch rejected before the log: bad_request",
	"DocDelete ok", "DocDelete precondition_failed", "DocDelete rejected before the log: bad_request",
	"merge patch removes a nested key", "idempotency mismatch", "document re-created after a delete",
	"items: duplicates", "items: duplicate inside one batch",
	"watch resumes with changes", "watch reset: version left the history",
	"watch reset: history dropped by a restore", "watch reset: resume point ahead",
	"RestoreBackup ok", "RestoreBackup wrong_type", "RestoreBackup overflow", "RestoreBackup replayed",
	"RestoreBackup rejected before the log: bad_request",
	"restore leaves a counter as it is", "restore keeps a larger counter", "restore moves a fencing token on",
	"restore takes a document as it is", "restore writes a document's next version", "forced restore drops a document",
	"restore advances",
}

func TestStateMatchesModel(t *testing.T) {
	seed := propSeed(t)
	cover := map[string]int{}
	for seq := 0; seq < propSequences; seq++ {
		propSequence(t, seed, seq, cover)
	}
	keys := make([]string, 0, len(cover))
	for k := range cover {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%7d  %s", cover[k], k)
	}
	for _, k := range propMustCover {
		if cover[k] == 0 {
			t.Errorf("no sequence reached %q: the generator no longer covers it", k)
		}
	}
}

func propNewState() *State { return NewWithOptions(Options{WatchHistory: propWatchHistory}) }

func propSequence(t *testing.T, seed uint64, seq int, cover map[string]int) {
	t.Helper()
	run := &propRun{t: t, seed: seed, seq: seq, phase: "before snapshot", r: rand.New(rand.NewPCG(seed^0x5bd1e995, uint64(seq)))}
	g := &propGen{r: rand.New(rand.NewPCG(seed, uint64(seq))), now: propBaseTime}
	m := newPropModel()
	m.cover = cover
	// The first backup is a stranger's state: its names may be of the other
	// kind here, and its documents ahead.
	foreign, fm := propJunk(run, seed^0x2545f4914f6cdd1d, seq)
	fm.addBackup(run, foreign)
	m.backups = fm.backups
	orig := &propTarget{label: "state 0", st: propNewState()}
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
		if run.step(m, []*propTarget{orig}, g.command(m), i) {
			index = i
		}
		if g.chance(4) {
			m.addBackup(run, orig.st)
		}
	}
	run.checkState(orig, m, "", true, true)

	snap := orig.st.Snapshot()
	if snap.AppliedIndex() != m.applied {
		run.fatalf("snapshot applied index %d, want %d", snap.AppliedIndex(), m.applied)
	}
	var buf bytes.Buffer
	n, err := snap.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		run.fatalf("WriteTo = %d, %v; wrote %d bytes", n, err, buf.Len())
	}
	encoded := bytes.Clone(buf.Bytes())

	restored := &propTarget{label: "restored state", st: propNewState(), floor: map[string]uint64{}}
	if seq%2 == 1 {
		// Restore must replace the whole state, including idempotency keys
		// and documents (with their histories) the target already held.
		restored.st, _ = propJunk(run, seed, seq)
	}
	if err := restored.st.Restore(&buf); err != nil {
		run.fatalf("Restore: %v", err)
	}
	// A restore keeps no change history: every document's versions so far
	// are only available as a reset.
	for name, d := range m.docs {
		restored.floor[name] = d.version
	}
	if !restored.st.Snapshot().Equal(snap) {
		run.fatalf("restored snapshot differs from the original")
	}
	if got := restored.st.AppliedIndex(); got != m.applied {
		run.fatalf("restored applied index %d, want %d", got, m.applied)
	}
	run.checkState(restored, m, "", true, true)

	run.phase = "after snapshot"
	// While the states move on, another goroutine writes the snapshot again
	// and reads the values reads returned before: the race detector flags
	// any memory they still share with the state. (The snapshot is written
	// outside the lock while Apply goes on, as Raft does.)
	held := slices.Clone(orig.held)
	type rewrite struct {
		data   []byte
		err    error
		stable []bool
	}
	done := make(chan rewrite)
	go func() {
		var out rewrite
		var b bytes.Buffer
		_, out.err = snap.WriteTo(&b)
		out.data = b.Bytes()
		for _, h := range held {
			out.stable = append(out.stable, h.stable())
		}
		done <- out
	}()
	for range propContinue {
		i := next()
		if run.step(m, []*propTarget{orig, restored}, g.command(m), i) {
			index = i
		}
	}
	rw := <-done
	run.checkState(orig, m, "", true, true)
	run.checkState(restored, m, "", true, true)
	run.checkHeld(orig)
	run.checkHeld(restored)
	if !orig.st.Snapshot().Equal(restored.st.Snapshot()) {
		run.fatalf("original and restored states diverged")
	}
	// A snapshot is a point-in-time copy: later applies do not change it.
	if rw.err != nil {
		run.fatalf("second WriteTo: %v", rw.err)
	}
	if !bytes.Equal(rw.data, encoded) {
		run.fatalf("snapshot changed after later applies")
	}
	for i, ok := range rw.stable {
		if !ok {
			run.fatalf("%s: the value it returned before the snapshot changed while the state moved on", held[i].what)
		}
	}
}

// TestPropModelSelfCheck pins the model to a few SPEC and RFC 7386 examples,
// so a model that drifted into agreeing with a broken FSM would be caught
// here.
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
	if r, _ := m.apply(Command{Payload: QueueJoin{ID: "a", ProcessID: "p"}}, 5); r.code != CodeWrongType {
		t.Fatalf("join on a counter: %+v", r)
	}

	// Queues: ZooKeeper ids 1…3 with reuse hand out the lowest free value;
	// without reuse a counter is never handed out twice.
	index := uint64(10)
	do := func(p Payload) propResult {
		t.Helper()
		index++
		r, logged := m.apply(Command{Payload: p}, index)
		if !logged {
			t.Fatalf("%#v rejected before the log: %s", p, r.code)
		}
		return r
	}
	counterOf := func(r propResult) int64 {
		t.Helper()
		tk, ok := r.value.(*Ticket)
		if !ok {
			t.Fatalf("want a ticket, got %s", propFormatWant(r))
		}
		return tk.Counter
	}
	do(QueueConfigure{ID: "zk", Min: propPtr(int64(1)), Max: propPtr(int64(3)), Reuse: propPtr(true)})
	for i, p := range []string{"p1", "p2", "p3"} {
		if got := counterOf(do(QueueJoin{ID: "zk", ProcessID: p})); got != int64(i+1) {
			t.Fatalf("join %s got %d", p, got)
		}
	}
	if r := do(QueueJoin{ID: "zk", ProcessID: "p4"}); r.code != CodeQueueFull {
		t.Fatalf("join of a full queue: %s", propFormatWant(r))
	}
	if r := do(QueueLeave{ID: "zk", ProcessID: "p2"}); r.value.(*Leave).FencingToken != 4 {
		t.Fatalf("leave: %s", propFormatWant(r))
	}
	if r := do(QueueJoin{ID: "zk", ProcessID: "p4"}); counterOf(r) != 2 || r.value.(*Ticket).Position != 1 || r.value.(*Ticket).FencingToken != 5 {
		t.Fatalf("join after a leave with reuse: %s", propFormatWant(r))
	}
	if r := do(QueueJoin{ID: "zk", ProcessID: "p1", Tags: map[string]string{"x": "y"}}); counterOf(r) != 1 || r.value.(*Ticket).FencingToken != 5 ||
		r.value.(*Ticket).Tags != nil || r.value.(*Ticket).Index != 12 {
		t.Fatalf("re-join: %s", propFormatWant(r))
	}
	do(QueueConfigure{ID: "zk", Reuse: propPtr(false), Max: propPtr(int64(5))})
	do(QueueLeave{ID: "zk", ProcessID: "p4"})
	if got := counterOf(do(QueueJoin{ID: "zk", ProcessID: "p5"})); got != 4 {
		t.Fatalf("join without reuse after counters up to 3 got %d", got)
	}
	if r := do(QueueConfigure{ID: "zk", Min: propPtr(int64(6))}); r.code != CodeBadRequest {
		t.Fatalf("min above the stored max: %s", propFormatWant(r))
	}
	do(QueueDelete{ID: "zk"})
	if r := do(QueueJoin{ID: "zk", ProcessID: "p1"}); counterOf(r) != 1 || r.value.(*Ticket).FencingToken != 1 {
		t.Fatalf("join of a re-created queue: %s", propFormatWant(r))
	}

	// RFC 7386, Appendix A.
	for _, tc := range rfc7386AppendixA {
		target, _ := propDecodeJSON([]byte(tc.target))
		patch, _ := propDecodeJSON([]byte(tc.patch))
		want, _ := propDecodeJSON([]byte(tc.want))
		if got := propMergePatch(target, patch); !propJSONEqual(got, want) {
			t.Fatalf("merge patch %s with %s = %s, want %s", tc.target, tc.patch, propJSON(got), tc.want)
		}
		if again, _ := propDecodeJSON([]byte(tc.target)); !propJSONEqual(again, target) {
			t.Fatalf("merge patch mutated its target %s", tc.target)
		}
	}

	// Documents: versions continue across a delete; a watcher gets the
	// recorded changes while they are kept and a reset otherwise.
	do(DocPut{Name: "d", Value: []byte(`{"a":1,"b":{"x":1}}`)})
	do(DocPatch{Name: "d", Patch: []byte(`{"a":null,"b":{"y":2},"c":"s"}`)})
	do(DocDelete{Name: "d"})
	if r := do(DocDelete{Name: "d"}); r.value != nil || r.code != "" {
		t.Fatalf("delete of an absent document: %s", propFormatWant(r))
	}
	if r := do(DocPatch{Name: "d", Patch: []byte(`{"z":true}`), Precondition: Precondition{IfMatch: propPtr(uint64(0))}}); r.code != CodePreconditionFailed {
		t.Fatalf("If-Match on an absent document: %s", propFormatWant(r))
	}
	r := do(DocPatch{Name: "d", Patch: []byte(`{"z":true}`), Precondition: Precondition{IfNoneMatch: true}})
	if d := r.value.(*Document); d.Version != 4 || !propSameJSON(d.Value, []byte(`{"z":true}`)) {
		t.Fatalf("patch re-creating the document: %s", propFormatWant(r))
	}
	_, ch := m.since("d", 1, 0)
	wantKinds := [][]ChangeType{{Removed, Modified, Added}, {Removed, Removed}, {Added}}
	if len(ch) != 3 {
		t.Fatalf("since 1: %s", propFormatChanges(ch))
	}
	for i, c := range ch {
		var kinds []ChangeType
		for _, k := range c.Keys {
			kinds = append(kinds, k.Type)
		}
		if c.Version != uint64(i+2) || !reflect.DeepEqual(kinds, wantKinds[i]) {
			t.Fatalf("since 1, change %d: %s", i, propFormatChanges(ch))
		}
	}
	if reset, _ := m.since("d", 1, 2); reset == nil || reset.Version != 4 {
		t.Fatalf("since 1 with no history up to 2 must reset, got %s", propFormatValue(reset))
	}
	for range propWatchHistory {
		do(DocPatch{Name: "d", Patch: []byte(`{}`)})
	}
	if reset, _ := m.since("d", 3, 0); reset == nil {
		t.Fatalf("since 3 after %d more versions must reset", propWatchHistory)
	}
	if reset, ch := m.since("d", 4, 0); reset != nil || len(ch) != propWatchHistory {
		t.Fatalf("since 4: reset %s, changes %s", propFormatValue(reset), propFormatChanges(ch))
	}
}
