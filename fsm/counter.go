package fsm

// Counter rules: signed 64-bit values that mint unique, increasing IDs with
// ticket-server offset/increment, add with a default, set with
// compare-and-set, a one-way monotonic switch, and refusal of overflow.

import (
	"fmt"
	"math"
	"math/bits"
)

// Limits on counter input.
const (
	// MaxMintCount is the most IDs one next call may mint.
	MaxMintCount = 1_000_000
	// MaxIncrement is the largest counter increment.
	MaxIncrement = 1 << 62
	// MaxCache is the largest block a cached counter reserves (SPEC §8).
	MaxCache = 1_000_000
)

// Counter is a counter's state as reads and writes return it.
type Counter struct {
	ID        string
	Value     int64
	Increment int64
	Offset    int64
	Monotonic bool
	// Cache, when not 0, makes the counter cached: the leader reserves
	// blocks of Cache values through the log and mints from memory
	// (cluster's mint cache). The state machine only stores it.
	Cache int64
	// Index is the log index of the last write to the counter, 0 if never
	// written.
	Index uint64
}

// Mint is the result of a next: Count IDs First, First+Step, …, Last.
type Mint struct {
	ID    string
	First int64
	Last  int64
	Count int64
	Step  int64
	Index uint64
}

// counter is the stored form. A counter that was never written is absent
// from the table and reads as value 0, increment 1, offset 0.
type counter struct {
	value     int64
	increment int64
	offset    int64
	monotonic bool
	cache     int64
	index     uint64
}

func (*counter) kind() Kind { return KindCounter }

func defaultCounter() counter { return counter{increment: 1} }

func (c *counter) view(id string) *Counter {
	return &Counter{ID: id, Value: c.value, Increment: c.increment, Offset: c.offset, Monotonic: c.monotonic, Cache: c.cache, Index: c.index}
}

// lookupCounter returns the stored counter, or a default one and false when
// the name was never written; wrong_type when the name holds another kind.
func (s *State) lookupCounter(id string) (counter, bool, error) {
	switch o := s.objects[id].(type) {
	case nil:
		return defaultCounter(), false, nil
	case *counter:
		return *o, true, nil
	default:
		return counter{}, false, wrongType(id, o.kind(), KindCounter)
	}
}

func (s *State) storeCounter(id string, c counter, index uint64) *Counter {
	c.index = index
	if o, ok := s.objects[id].(*counter); ok {
		*o = c
	} else {
		s.objects[id] = &c
	}
	return c.view(id)
}

// Counter reads one counter and the applied index the read reflects.
func (s *State) Counter(id string) (*Counter, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, _, err := s.lookupCounter(id)
	if err != nil {
		return nil, s.applied, err
	}
	return c.view(id), s.applied, nil
}

// CounterCache is the block size of counter id when it is cached, else 0
// (a dense counter, one never written, or another kind): what routes a
// next, without building the counter's view.
func (s *State) CounterCache(id string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.objects[id].(*counter); ok {
		return c.cache
	}
	return 0
}

// Counters lists the counters whose names start with prefix, sorted by name.
func (s *State) Counters(prefix string) ([]*Counter, uint64) {
	page, _, applied := s.CounterPage(prefix, "", math.MaxInt, nil)
	return page, applied
}

// CounterPage is one page of a list: up to limit counters whose IDs start
// with prefix and sort after after, leaving out those keep (when not nil)
// rejects; more reports whether a later page has any.
func (s *State) CounterPage(prefix, after string, limit int, keep func(id string) bool) (page []*Counter, more bool, applied uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names, more := pageOf(s.sortedNames(KindCounter, prefix), after, limit, keep)
	page = make([]*Counter, len(names))
	for i, name := range names {
		page[i] = s.objects[name].(*counter).view(name)
	}
	return page, more, s.applied
}

// CounterNext mints Count IDs (default 1): the smallest values above the
// current one that are congruent to the offset modulo the increment.
type CounterNext struct {
	ID    string
	Count int64
}

// Op implements Payload.
func (CounterNext) Op() Op { return OpCounterNext }

// Validate implements Payload.
func (p CounterNext) Validate() error {
	if err := CheckName("counter name", p.ID); err != nil {
		return err
	}
	if p.Count < 1 || p.Count > MaxMintCount {
		return errorf(CodeBadRequest, "count must be between 1 and %d, got %d", MaxMintCount, p.Count)
	}
	return nil
}

func (p CounterNext) encode(e *encoder) { e.string(p.ID); e.varint(p.Count) }

func (p CounterNext) apply(s *State, index uint64) (any, error) {
	c, _, err := s.lookupCounter(p.ID)
	if err != nil {
		return nil, err
	}
	first, ok := nextAfter(c.value, c.increment, c.offset)
	var last int64
	if ok {
		last, ok = rangeEnd(first, p.Count, c.increment)
	}
	if !ok {
		return nil, errorf(CodeOverflow, "minting %d more IDs from counter %s (value %d, increment %d) would pass %d",
			p.Count, p.ID, c.value, c.increment, int64(math.MaxInt64))
	}
	c.value = last
	s.storeCounter(p.ID, c, index)
	return &Mint{ID: p.ID, First: first, Last: last, Count: p.Count, Step: c.increment, Index: index}, nil
}

// CounterAdd adds Delta to a counter. A counter that was never written
// starts at Default (0 when nil).
type CounterAdd struct {
	ID      string
	Delta   int64
	Default *int64
}

// Op implements Payload.
func (CounterAdd) Op() Op { return OpCounterAdd }

// Validate implements Payload.
func (p CounterAdd) Validate() error { return CheckName("counter name", p.ID) }

func (p CounterAdd) encode(e *encoder) { e.string(p.ID); e.varint(p.Delta); e.optInt(p.Default) }

func (p CounterAdd) apply(s *State, index uint64) (any, error) {
	c, exists, err := s.lookupCounter(p.ID)
	if err != nil {
		return nil, err
	}
	if !exists && p.Default != nil {
		c.value = *p.Default
	}
	if p.Delta < 0 && c.monotonic {
		return nil, errorf(CodeNotMonotonic, "counter %s is monotonic; adding %d would lower it", p.ID, p.Delta)
	}
	v, ok := addChecked(c.value, p.Delta)
	if !ok {
		return nil, errorf(CodeOverflow, "adding %d to counter %s (value %d) overflows a signed 64-bit integer", p.Delta, p.ID, c.value)
	}
	c.value = v
	return s.storeCounter(p.ID, c, index), nil
}

// CounterSet sets any of a counter's fields. IfValue makes it a
// compare-and-set on the current value (0 for a counter never written).
type CounterSet struct {
	ID        string
	Value     *int64
	Increment *int64
	Offset    *int64
	Monotonic *bool
	IfValue   *int64
	// Cache sets the block size of a cached counter, 0 turns caching off.
	Cache *int64
}

// Op implements Payload.
func (CounterSet) Op() Op { return OpCounterSet }

// Validate implements Payload.
func (p CounterSet) Validate() error {
	if err := CheckName("counter name", p.ID); err != nil {
		return err
	}
	if p.Value == nil && p.Increment == nil && p.Offset == nil && p.Monotonic == nil && p.Cache == nil {
		return errorf(CodeBadRequest, "set needs at least one of value, increment, offset, monotonic or cache")
	}
	if p.Increment != nil && (*p.Increment < 1 || *p.Increment > MaxIncrement) {
		return errorf(CodeBadRequest, "increment must be between 1 and 2^62, got %d", *p.Increment)
	}
	if p.Cache != nil && (*p.Cache < 0 || *p.Cache > MaxCache) {
		return errorf(CodeBadRequest, "cache must be between 0 (off) and %d, got %d", MaxCache, *p.Cache)
	}
	return nil
}

func (p CounterSet) encode(e *encoder) {
	e.string(p.ID)
	e.optInt(p.Value)
	e.optInt(p.Increment)
	e.optInt(p.Offset)
	e.optBool(p.Monotonic)
	e.optInt(p.IfValue)
	// Written only when set, so that every set from before caching
	// existed encodes, and fingerprints, as it did.
	if p.Cache != nil {
		e.optInt(p.Cache)
	}
}

func (p CounterSet) apply(s *State, index uint64) (any, error) {
	c, _, err := s.lookupCounter(p.ID)
	if err != nil {
		return nil, err
	}
	if p.IfValue != nil && *p.IfValue != c.value {
		return nil, &Error{
			Code:    CodeConflict,
			Message: "counter " + p.ID + " does not hold the expected value",
			Current: c.view(p.ID),
		}
	}
	if c.monotonic {
		if p.Monotonic != nil && !*p.Monotonic {
			return nil, errorf(CodeNotMonotonic, "counter %s is monotonic; that switch cannot be turned off", p.ID)
		}
		if p.Value != nil && *p.Value < c.value {
			return nil, errorf(CodeNotMonotonic, "counter %s is monotonic; setting %d would lower it from %d", p.ID, *p.Value, c.value)
		}
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
	return s.storeCounter(p.ID, c, index), nil
}

// CounterDelete resets a counter to its defaults by removing it. A monotonic
// counter is only deleted with Force, because deleting it lets old values be
// minted again.
type CounterDelete struct {
	ID    string
	Force bool
}

// Op implements Payload.
func (CounterDelete) Op() Op { return OpCounterDelete }

// Validate implements Payload.
func (p CounterDelete) Validate() error { return CheckName("counter name", p.ID) }

func (p CounterDelete) encode(e *encoder) { e.string(p.ID); e.bool(p.Force) }

func (p CounterDelete) apply(s *State, _ uint64) (any, error) {
	c, exists, err := s.lookupCounter(p.ID)
	if err != nil || !exists {
		return nil, err
	}
	if c.monotonic && !p.Force {
		return nil, errorf(CodeNotMonotonic, "counter %s is monotonic; deleting it would let old values be minted again (use force)", p.ID)
	}
	delete(s.objects, p.ID)
	return nil, nil
}

func init() {
	register(OpCounterNext, "counter.next", func(d *decoder) Payload {
		return CounterNext{ID: d.string(), Count: d.varint()}
	})
	register(OpCounterAdd, "counter.add", func(d *decoder) Payload {
		return CounterAdd{ID: d.string(), Delta: d.varint(), Default: d.optInt()}
	})
	register(OpCounterSet, "counter.set", func(d *decoder) Payload {
		p := CounterSet{ID: d.string(), Value: d.optInt(), Increment: d.optInt(), Offset: d.optInt(), Monotonic: d.optBool(), IfValue: d.optInt()}
		if d.more() {
			p.Cache = d.optInt()
		}
		return p
	})
	register(OpCounterDelete, "counter.delete", func(d *decoder) Payload {
		return CounterDelete{ID: d.string(), Force: d.bool()}
	})
	registerSection(section{name: "counter", tag: recCounter, copy: copyCounters, read: readCounter})
	registerResult(valCounter, encodeCounter, decodeCounter)
	registerResult(valCachedCounter, encodeCachedCounter, decodeCachedCounter)
	registerResult(valMint, encodeMint, decodeMint)
}

// NextAfter is the first value a next mints from a counter at value with
// this increment and offset; false when it would pass MaxInt64.
func NextAfter(value, increment, offset int64) (int64, bool) {
	return nextAfter(value, increment, offset)
}

// nextAfter is the smallest v > value with v ≡ offset (mod increment), and
// false if it does not fit in an int64. Reducing both operands first keeps
// every intermediate in range.
func nextAfter(value, increment, offset int64) (int64, bool) {
	d := mod(offset, increment) - mod(value, increment)
	if d <= 0 {
		d += increment
	}
	return addChecked(value, d)
}

func mod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}

func addChecked(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// rangeEnd is first + (count-1)*step, and false if it passes MaxInt64. The
// span may exceed MaxInt64 on its own while the end still fits (first is
// negative), so it is computed in unsigned 128-bit arithmetic.
func rangeEnd(first, count, step int64) (int64, bool) {
	hi, span := bits.Mul64(uint64(count-1), uint64(step))
	if hi != 0 {
		return 0, false // span ≥ 2^64: past MaxInt64 from any int64
	}
	room := uint64(math.MaxInt64) - uint64(first) // exact: MaxInt64-first is in [0, 2^64)
	if span > room {
		return 0, false
	}
	return int64(uint64(first) + span), true
}

// Snapshot record and result tags of counters. Persisted; do not renumber.
const (
	recCounter       byte = 2
	valCounter       byte = 1
	valMint          byte = 2
	valCachedCounter byte = 11
)

// copyCounters is the counters' part of a snapshot, in name order.
func copyCounters(s *State) func(*recordWriter) error {
	return copyEach(recCounter, s.sortedNames(KindCounter, ""), func(name string) *Counter {
		return s.objects[name].(*counter).view(name)
	}, encodeCounterRecord)
}

// encodeCounterRecord is a counter's snapshot record: its fields, then its
// cache only when it has one, so a snapshot without cached counters reads
// the same in a build that predates them.
func encodeCounterRecord(e *encoder, c *Counter) {
	encodeCounter(e, c)
	if c.Cache != 0 {
		e.varint(c.Cache)
	}
}

func readCounter(d *decoder) func(*State) error {
	c := decodeCounter(d)
	if d.more() {
		c.Cache = d.varint()
	}
	return func(st *State) error { return addRestoredCounter(st, c) }
}

// addRestoredCounter adds a restored counter to st, held to the rules
// Apply enforces: an increment of 0 would divide by zero on the next mint.
func addRestoredCounter(st *State, c *Counter) error {
	_, dup := st.objects[c.ID]
	if err := checkRestored("counter", c.ID, dup, "", 0); err != nil {
		return err
	}
	if c.Increment < 1 || c.Increment > MaxIncrement {
		return fmt.Errorf("counter %s has increment %d, outside 1..2^62", c.ID, c.Increment)
	}
	if c.Cache < 0 || c.Cache > MaxCache {
		return fmt.Errorf("counter %s has cache %d, outside 0..%d", c.ID, c.Cache, MaxCache)
	}
	st.objects[c.ID] = &counter{value: c.Value, increment: c.Increment, offset: c.Offset, monotonic: c.Monotonic, cache: c.Cache, index: c.Index}
	return nil
}

func encodeCounter(e *encoder, c *Counter) {
	e.string(c.ID)
	e.varint(c.Value)
	e.varint(c.Increment)
	e.varint(c.Offset)
	e.bool(c.Monotonic)
	e.uvarint(c.Index)
}

func decodeCounter(d *decoder) *Counter {
	return &Counter{ID: d.string(), Value: d.varint(), Increment: d.varint(), Offset: d.varint(), Monotonic: d.bool(), Index: d.uvarint()}
}

// cachedCounter is how the idempotency table keeps a *Counter result that
// has a cache (remembered), under its own result tag: valCounter's
// encoding predates the field and is kept as it was.
type cachedCounter Counter

func encodeCachedCounter(e *encoder, c *cachedCounter) {
	encodeCounter(e, (*Counter)(c))
	e.varint(c.Cache)
}

func decodeCachedCounter(d *decoder) *cachedCounter {
	c := decodeCounter(d)
	c.Cache = d.varint()
	return (*cachedCounter)(c)
}

func encodeMint(e *encoder, m *Mint) {
	e.string(m.ID)
	e.varint(m.First)
	e.varint(m.Last)
	e.varint(m.Count)
	e.varint(m.Step)
	e.uvarint(m.Index)
}

func decodeMint(d *decoder) *Mint {
	return &Mint{ID: d.string(), First: d.varint(), Last: d.varint(), Count: d.varint(), Step: d.varint(), Index: d.uvarint()}
}

// mergeCounter restores a backed-up counter without moving it backwards
// (see restore.go): it keeps the larger value and the backup's increment
// and offset. The monotonic switch only ever turns on: turning it off is a
// write the rules refuse.
func (s *State) mergeCounter(name string, bak *counter, index uint64) {
	c := *bak
	if cur, ok := s.objects[name].(*counter); ok {
		c.value = max(cur.value, bak.value)
		c.monotonic = cur.monotonic || bak.monotonic
		c.index = cur.index
		if c == *cur {
			return
		}
	}
	c.index = index
	s.objects[name] = &c
}
