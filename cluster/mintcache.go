package cluster

// The leader's mint cache for cached counters (SPEC §8). A counter with a
// cache of N has blocks of N values reserved through the log (an ordinary
// next of N), and the leader hands out values from the block in memory. A
// batch of requests waits for one confirmation of leadership that began
// after all of them arrived, the linearizable read's barrier; DESIGN.md,
// "Cached counters", says why that keeps next linearizable.

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/countd/countd/fsm"
)

// MaxCachedReplays bounds the leader's in-memory table of Idempotency-Keys
// used on cached mints: past it the oldest keys are forgotten, and a retry
// with one of them mints a fresh value (a gap, never a duplicate). About
// 200 bytes each: some 13 MiB when full.
const MaxCachedReplays = 1 << 16

// reserveAttempts is how many blocks one request may reserve before it is
// minted through the log instead: each attempt fails only when another
// write to the counter lands right after the reservation.
const reserveAttempts = 3

// mintRequest is one cached next waiting for a round.
type mintRequest struct {
	id    string
	count int64
	key   string
	done  chan mintOutcome // buffered: the round never blocks on a caller
}

type mintOutcome struct {
	res fsm.Result
	err error
}

// block is what is left of a counter's reservation.
type block struct {
	term uint64
	// at is the counter as the state machine held it right after the
	// reservation. Any later write to the counter (a next through the log,
	// add, set, delete, a restore) changes its index or fields, and the
	// block is then dead: it must not race a write that was acknowledged
	// before a mint began.
	at        fsm.Counter
	index     uint64 // the reservation's log index
	next      int64  // the next value to hand out
	remaining int64  // values left, next included
	// lastMinted is the last value handed out for this counter (before
	// the block's first, its predecessor in the counter's class).
	lastMinted int64
}

// take hands out count values from the block.
func (b *block) take(count, step int64) (first, last int64, ok bool) {
	if count > b.remaining {
		return 0, 0, false
	}
	first = b.next
	last = first + (count-1)*step // within the reserved range, so no overflow
	b.remaining -= count
	if b.remaining > 0 {
		b.next = last + step
	}
	b.lastMinted = last
	return first, last, true
}

// cachedReplay is a cached mint remembered for its Idempotency-Key.
type cachedReplay struct {
	id    string
	count int64
	res   fsm.Result
}

// mintCache serves cached nexts on the leader. One goroutine (run) owns
// the rounds; mu guards what requests and reads share with it.
type mintCache struct {
	n    *Node
	wake chan struct{}

	mu      sync.Mutex
	pending []*mintRequest
	blocks  map[string]*block // one entry per cached counter minted this term
	replays map[string]*cachedReplay
	order   []string // replay keys, oldest first
	// replayTerm is the term the replays were made in: a new term forgets
	// them (SPEC §8: a key replays while the same leader remembers it).
	replayTerm uint64
	// reserving holds the reservations in flight, by counter: between the
	// log applying one and its block being installed, the state machine
	// already shows the block's end, and a read must not (CachedValue).
	reserving map[string]*reservation
	// reservedHook, when set (tests only), runs after a reservation has
	// applied and before its block is installed.
	reservedHook func()
}

// reservation is a block being reserved through the log.
type reservation struct {
	before fsm.Counter   // the counter when the reservation began
	done   chan struct{} // closed once the block is installed, or will not be
}

func newMintCache(n *Node) *mintCache {
	return &mintCache{n: n, wake: make(chan struct{}, 1), blocks: make(map[string]*block), replays: make(map[string]*cachedReplay),
		reserving: make(map[string]*reservation)}
}

// Next mints count values of counter id: from the leader's memory when the
// counter is cached and count fits a block, else through the log as a plain
// next. Errors are Apply's; a cached mint whose caller gave up may have
// been handed out (ErrUnknownResult: a retry with the same key replays it
// while this leader remembers the key).
func (n *Node) Next(ctx context.Context, id string, count int64, key string) (fsm.Result, error) {
	return n.SubmitNext(ctx, id, count, key)()
}

// SubmitNext is Next in two steps, as Submit is Apply: nexts one goroutine
// submits one after another mint in that order, whether through the log
// or from the cache (a round hands out values in arrival order).
func (n *Node) SubmitNext(ctx context.Context, id string, count int64, key string) func() (fsm.Result, error) {
	cmd := fsm.Command{Payload: fsm.CounterNext{ID: id, Count: count}, IdempotencyKey: key}
	if cache := n.state.CounterCache(id); n.raft.State() != raft.Leader || cache == 0 || count > cache {
		// Apply validates the input, sends a follower's request on to the
		// leader, and gives a wrong type the log's refusal.
		return n.Submit(ctx, cmd)
	}
	if err := cmd.Validate(); err != nil {
		return done(fsm.Result{}, err)
	}
	req := &mintRequest{id: id, count: count, key: key, done: make(chan mintOutcome, 1)}
	n.mints.enqueue(req)
	return func() (fsm.Result, error) {
		select {
		case out := <-req.done:
			n.metrics.observeCachedMint(out.res, out.err)
			return out.res, out.err
		case <-ctx.Done():
			return fsm.Result{}, fmt.Errorf("cached next of %s: %w: %v", id, ErrUnknownResult, ctx.Err())
		case <-n.stopping:
			return fsm.Result{}, fmt.Errorf("cached next of %s: %w", id, ErrUnknownResult)
		}
	}
}

func (c *mintCache) enqueue(r *mintRequest) {
	c.mu.Lock()
	c.pending = append(c.pending, r)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// roundsInFlight is how many rounds may wait for their confirmation at
// once. A request waits for a confirmation that began after it arrived;
// with one round at a time, a request that arrives just after a round
// began waits for that round and then for its own, two round trips. With
// two, its round starts at once (raft answers concurrent confirmations
// with one heartbeat), one round trip.
const roundsInFlight = 2

// run serves rounds until stop closes. A round takes every request that
// arrived before it began; requests arriving meanwhile wait for the next.
// Rounds confirm leadership concurrently but hand values out one round at
// a time (mintMu), in the order they began.
func (c *mintCache) run(stop <-chan struct{}) {
	slots := make(chan struct{}, roundsInFlight)
	var rounds sync.WaitGroup
	defer rounds.Wait()
	var prev chan struct{} // closed when the previous round has minted
	for {
		select {
		case <-stop:
			c.failPending(fmt.Errorf("node stopping: %w", ErrUnavailable))
			return
		case <-c.wake:
		}
		select {
		case slots <- struct{}{}:
		case <-stop:
			c.failPending(fmt.Errorf("node stopping: %w", ErrUnavailable))
			return
		}
		c.mu.Lock()
		batch := c.pending
		c.pending = nil
		c.mu.Unlock()
		if len(batch) == 0 {
			<-slots
			continue
		}
		after, done := prev, make(chan struct{})
		prev = done
		rounds.Add(1)
		go func() {
			defer rounds.Done()
			defer func() { <-slots }()
			c.round(batch, after, done)
		}()
	}
}

func (c *mintCache) failPending(err error) {
	c.mu.Lock()
	batch := c.pending
	c.pending = nil
	c.mu.Unlock()
	for _, r := range batch {
		r.done <- mintOutcome{err: err}
	}
}

// round confirms leadership once for the batch, then, once the round
// before it (after) has handed its values out, mints each request in
// arrival order and closes done.
func (c *mintCache) round(batch []*mintRequest, after <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	ctx, cancel := context.WithTimeout(context.Background(), c.n.cfg.ApplyTimeout)
	defer cancel()
	term, err := c.n.confirmLeadership(ctx)
	if after != nil {
		<-after
	}
	if err != nil {
		// Nothing was handed out: the caller may retry anywhere.
		for _, r := range batch {
			r.done <- mintOutcome{err: err}
		}
		return
	}
	c.forgetOtherTerms(term)
	for _, r := range batch {
		res, err := c.mint(ctx, term, r)
		r.done <- mintOutcome{res: res, err: err}
	}
}

// forgetOtherTerms drops blocks and replays from earlier terms: a new
// leader term starts from reservations of its own, above every earlier
// one.
func (c *mintCache) forgetOtherTerms(term uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, b := range c.blocks {
		if b.term != term {
			delete(c.blocks, id)
		}
	}
	if c.replayTerm != term {
		clear(c.replays)
		c.order, c.replayTerm = nil, term
	}
}

// mint serves one request after its round's confirmation.
func (c *mintCache) mint(ctx context.Context, term uint64, r *mintRequest) (fsm.Result, error) {
	if r.key != "" {
		if res, ok := c.replay(r); ok {
			return res, nil
		}
	}
	dense := fsm.Command{Payload: fsm.CounterNext{ID: r.id, Count: r.count}, IdempotencyKey: r.key}
	for range reserveAttempts {
		cur, _, err := c.n.state.Counter(r.id)
		if err != nil || cur.Cache == 0 || r.count > cur.Cache {
			return c.n.apply(ctx, dense, false)() // no longer cached (or not a counter); Next counts it
		}
		if res, ok := c.fromBlock(term, cur, r); ok {
			return res, nil
		}
		if done, res, err := c.reserve(ctx, term, cur); done {
			return res, err
		}
	}
	return c.n.apply(ctx, dense, false)()
}

// fromBlock hands out r's values from the counter's block if the block is
// of this term, the counter has not been written since its reservation,
// and enough is left.
func (c *mintCache) fromBlock(term uint64, cur *fsm.Counter, r *mintRequest) (fsm.Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.blocks[r.id]
	if b == nil || b.term != term || b.at != *cur {
		return fsm.Result{}, false
	}
	first, last, ok := b.take(r.count, cur.Increment)
	if !ok {
		return fsm.Result{}, false
	}
	res := fsm.Result{Index: b.index, Value: &fsm.Mint{ID: r.id, First: first, Last: last, Count: r.count, Step: cur.Increment, Index: b.index}}
	if r.key != "" {
		c.rememberLocked(r, res)
	}
	return res, true
}

// reserve commits a block of cur.Cache values through the log. done is true
// when the request is answered by the reservation's outcome itself (an
// error, or a refusal such as overflow); otherwise a block is in place, or
// another write followed the reservation and the caller tries again.
func (c *mintCache) reserve(ctx context.Context, term uint64, cur *fsm.Counter) (done bool, res fsm.Result, err error) {
	rv := &reservation{before: *cur, done: make(chan struct{})}
	c.mu.Lock()
	c.reserving[cur.ID] = rv
	c.mu.Unlock()
	defer func() {
		// After the block is installed (or found dead): a read waiting on
		// it then sees the block.
		c.mu.Lock()
		if c.reserving[cur.ID] == rv {
			delete(c.reserving, cur.ID)
		}
		c.mu.Unlock()
		close(rv.done)
	}()
	res, err = c.n.apply(ctx, fsm.Command{Payload: fsm.CounterNext{ID: cur.ID, Count: cur.Cache}}, false)()
	c.mu.Lock()
	hook := c.reservedHook
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	if err != nil {
		return true, res, err
	}
	if res.Err != nil {
		// A block does not fit (overflow near MaxInt64): the request may
		// still, minted through the log.
		return false, fsm.Result{}, nil
	}
	m := res.Value.(*fsm.Mint)
	after, _, err := c.n.state.Counter(cur.ID)
	if err != nil || after.Index != m.Index || c.n.raft.CurrentTerm() != term {
		return false, fsm.Result{}, nil // already written over: this block is dead
	}
	b := &block{term: term, at: *after, index: m.Index, next: m.First, remaining: m.Count}
	// Until the block hands out a value, a read on the leader shows what
	// the counter held before the reservation: cur, unless another write
	// came between reading it and the reservation (then the block's
	// predecessor in the counter's class, which that write is concurrent
	// with).
	switch first, ok := fsm.NextAfter(cur.Value, cur.Increment, cur.Offset); {
	case ok && first == m.First && m.Step == cur.Increment:
		b.lastMinted = cur.Value
	case m.First >= math.MinInt64+m.Step:
		b.lastMinted = m.First - m.Step
	default:
		b.lastMinted = math.MinInt64
	}
	c.mu.Lock()
	c.blocks[cur.ID] = b
	c.mu.Unlock()
	return false, fsm.Result{}, nil
}

// replay answers a retry of a cached mint this leader remembers.
func (c *mintCache) replay(r *mintRequest) (fsm.Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.replays[r.key]
	if prev == nil {
		return fsm.Result{}, false
	}
	if prev.id != r.id || prev.count != r.count {
		return fsm.Result{Index: prev.res.Index, Err: &fsm.Error{Code: fsm.CodeIdempotencyMismatch,
			Message: fmt.Sprintf("Idempotency-Key %q was first used for a different request", r.key)}}, true
	}
	res := prev.res
	res.Replayed = true
	return res, true
}

func (c *mintCache) rememberLocked(r *mintRequest, res fsm.Result) {
	if _, ok := c.replays[r.key]; !ok {
		c.order = append(c.order, r.key)
	}
	c.replays[r.key] = &cachedReplay{id: r.id, count: r.count, res: res}
	for len(c.order) > MaxCachedReplays {
		delete(c.replays, c.order[0])
		c.order = c.order[1:]
	}
}

// CachedValue is the last value this leader's cache handed out for the
// counter cur (read from the state machine under a linearizable barrier),
// when it holds a live block for it: what a read on the leader shows
// instead of the reservation's end.
func (n *Node) CachedValue(cur *fsm.Counter) (int64, bool) {
	if cur == nil || cur.Cache == 0 {
		return 0, false
	}
	term := n.raft.CurrentTerm()
	c := n.mints
	c.mu.Lock()
	if v, ok := c.shownLocked(term, cur); ok {
		c.mu.Unlock()
		return v, true
	}
	rv := c.reserving[cur.ID]
	c.mu.Unlock()
	if rv == nil || rv.before == *cur {
		return 0, false
	}
	// cur was read after the log applied a reservation whose block is not
	// installed yet: cur.Value is the end of a block nothing has been
	// handed out from. Showing it would let a later read, or next, show
	// less. Wait for the block (one commit at most), then judge cur
	// against it: cur is either that reservation's outcome or a later
	// write.
	select {
	case <-rv.done:
	case <-n.stopping:
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shownLocked(term, cur)
}

// shownLocked is what a read of cur shows when this term's block for it
// is live: the last value handed out.
func (c *mintCache) shownLocked(term uint64, cur *fsm.Counter) (int64, bool) {
	if b := c.blocks[cur.ID]; b != nil && b.term == term && b.at == *cur {
		return b.lastMinted, true
	}
	return 0, false
}
