package workload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
	"github.com/countd/countd/test/jepsen-lite/checker"
	"github.com/countd/countd/test/jepsen-lite/history"
)

// worker is one client: it runs one operation at a time.
type worker struct {
	wl    *Workload
	id    int
	rng   *rand.Rand
	cl    *client.Client
	stale []*client.Client // one per node, for stale reads
	seq   int
	// final marks the worker that takes the final reads.
	final bool

	// What this worker last saw, to aim its compare-and-sets.
	counters map[string]int64
	docs     map[string]uint64
	// joined are the processes whose join this worker saw acknowledged
	// and that have not tried to leave, by queue.
	joined map[string][]string
	// items are item IDs acknowledged to this worker, resent now and then
	// as duplicates.
	items []string
	// cached are the cached counters this worker has seen made cached.
	cached map[string]bool
}

func (wl *Workload) newWorker(id int) (*worker, error) {
	cl, err := wl.newClient(wl.cfg.Addrs)
	if err != nil {
		return nil, err
	}
	w := &worker{
		wl: wl, id: id, rng: seeded(wl.cfg.Seed, id), cl: cl,
		counters: map[string]int64{}, docs: map[string]uint64{}, joined: map[string][]string{}, cached: map[string]bool{},
	}
	if wl.cfg.StaleReads {
		for _, a := range wl.cfg.Addrs {
			c, err := wl.newClient([]string{a})
			if err != nil {
				return nil, err
			}
			w.stale = append(w.stale, c)
		}
	}
	return w, nil
}

// mix is the relative weight of each operation.
var mix = []struct {
	f      history.F
	weight int
}{
	{history.FNext, 20}, {history.FAdd, 8}, {history.FGet, 15}, {history.FCAS, 10},
	{history.FJoin, 6}, {history.FLeave, 5}, {history.FQueueGet, 5},
	{history.FItemsAdd, 8}, {history.FItemsCount, 5},
	{history.FDocGet, 6}, {history.FDocCAS, 8},
	{history.FHold, 3},
}

func (w *worker) pick() history.F {
	total := 0
	for _, m := range mix {
		total += m.weight
	}
	n := w.rng.IntN(total)
	for _, m := range mix {
		if n < m.weight {
			return m.f
		}
		n -= m.weight
	}
	return history.FGet
}

func (w *worker) run(ctx context.Context) error {
	// Each worker paces itself to its share of the rate; a slow operation
	// only delays the next one, it does not cause a burst.
	every := time.Duration(int64(time.Second) * int64(w.wl.cfg.Workers) / int64(w.wl.cfg.Rate))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// The operation itself must not be cut short by the campaign's
		// end: it gets its own deadline, so its outcome is recorded.
		w.step(context.WithoutCancel(ctx))
	}
}

func (w *worker) step(ctx context.Context) {
	epoch := w.wl.epoch()
	// Three dense counters and two cached ones (SPEC §8) per epoch.
	counter := fmt.Sprintf("c%d-%d", epoch, w.rng.IntN(5))
	if strings.HasSuffix(counter, "-3") || strings.HasSuffix(counter, "-4") {
		counter = checker.CachedCounterPrefix + counter[1:]
		if !w.makeCached(ctx, counter) {
			return
		}
	}
	queue := fmt.Sprintf("q%d", epoch)
	doc := fmt.Sprintf("d%d", epoch)
	tenant := fmt.Sprintf("t%d", w.rng.IntN(2))
	switch f := w.pick(); f {
	case history.FNext:
		w.next(ctx, counter)
	case history.FAdd:
		w.add(ctx, counter)
	case history.FCAS:
		w.cas(ctx, counter)
	case history.FJoin:
		w.join(ctx, queue)
	case history.FLeave:
		if len(w.joined[queue]) == 0 {
			w.join(ctx, queue)
		} else {
			w.leave(ctx, queue)
		}
	case history.FItemsAdd:
		w.addItems(ctx, tenant)
	case history.FDocCAS:
		w.docCAS(ctx, doc)
	case history.FHold:
		w.hold(ctx, fmt.Sprintf("lock%d", epoch))
	case history.FGet:
		in := history.Input{}
		if len(w.stale) > 0 {
			i := w.rng.IntN(len(w.stale))
			in = history.Input{Stale: true, Node: w.wl.cfg.Addrs[i]}
		}
		w.read(ctx, f, counter, in)
	case history.FQueueGet:
		w.read(ctx, f, queue, history.Input{})
	case history.FItemsCount:
		w.read(ctx, f, tenant, history.Input{})
	case history.FDocGet:
		w.read(ctx, f, doc, history.Input{})
	}
}

// cachedBlock is the block size of the workload's cached counters: small,
// so that reservations, and the gaps a fault leaves, come often.
const cachedBlock = 20

// makeCached makes counter cached before this worker's first operation on
// it. The set changes no value, so it is not part of the history; until it
// is acknowledged the worker does nothing with the counter.
func (w *worker) makeCached(ctx context.Context, counter string) bool {
	if w.cached[counter] {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, w.wl.cfg.OpTimeout)
	defer cancel()
	cache := int64(cachedBlock)
	if _, err := w.cl.Set(ctx, counter, api.SetRequest{Cache: &cache}); err != nil {
		return false
	}
	w.cached[counter] = true
	return true
}

// Locks: a session of lockTTL, and a hold of holdFor once the lock is
// granted; short, so that holders follow each other often.
const (
	lockTTL = 2 * time.Second
	holdFor = 30 * time.Millisecond
)

// hold takes the lock with a new session, holds it briefly and gives it
// up, recording when it believed it held it. A client that learns its
// session is lost stops holding at once; the checker then requires that
// nobody else held the lock meanwhile, and that tokens rose.
func (w *worker) hold(ctx context.Context, key string) {
	p := w.wl.hist.Invoke(w.id, history.FHold, key, history.Input{})
	ctx, cancel := context.WithTimeout(ctx, 2*w.wl.cfg.OpTimeout)
	defer cancel()
	ks, err := w.cl.KeepSession(ctx, lockTTL, "jepsen")
	if err != nil {
		record(p, err, nil)
		return
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.wl.cfg.OpTimeout)
		defer cancel()
		_ = ks.Close(cctx)
	}()
	l, err := ks.Lock(ctx, key, 1)
	if err != nil {
		record(p, err, nil)
		return
	}
	from := w.wl.hist.Now()
	select {
	case <-time.After(holdFor):
	case <-l.Lost:
	}
	until := w.wl.hist.Now()
	p.OK(history.Output{Token: l.FencingToken, HeldFrom: from, HeldUntil: until})
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), w.wl.cfg.OpTimeout)
	defer ucancel()
	_ = l.Unlock(uctx)
}

// impatient is the deadline of the one operation in ten whose client
// gives up early. The client retries until its deadline, so with the
// normal timeout almost every operation gets a definite answer even
// across elections; these end unknown whenever they meet a fault (and now
// and then on a slow fsync), so every campaign exercises the checker's
// handling of indeterminate outcomes.
const impatient = 250 * time.Millisecond

// finalTimeout bounds each final read.
const finalTimeout = 10 * time.Second

func (w *worker) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if w.final {
		// The final reads are what the checker needs most: patience.
		return context.WithTimeout(ctx, finalTimeout)
	}
	if w.rng.IntN(10) == 0 {
		return context.WithTimeout(ctx, impatient)
	}
	return context.WithTimeout(ctx, w.wl.cfg.OpTimeout)
}

func (w *worker) next(ctx context.Context, key string) {
	count := int64(1)
	if w.rng.IntN(10) < 3 {
		count = 2 + w.rng.Int64N(4)
	}
	w.wl.register(history.FGet, key)
	p := w.wl.hist.Invoke(w.id, history.FNext, key, history.Input{Count: count})
	ctx, cancel := w.ctx(ctx)
	defer cancel()
	m, err := w.cl.Next(ctx, key, count)
	if err != nil {
		record(p, err, nil)
		return
	}
	w.counters[key] = m.Value
	p.OK(history.Output{First: m.First, Last: m.Value})
}

func (w *worker) add(ctx context.Context, key string) {
	// Only upward: the no-duplicate-ID check relies on counters never
	// going back.
	delta := 1 + w.rng.Int64N(5)
	w.wl.register(history.FGet, key)
	p := w.wl.hist.Invoke(w.id, history.FAdd, key, history.Input{Delta: delta})
	ctx, cancel := w.ctx(ctx)
	defer cancel()
	r, err := w.cl.Add(ctx, key, delta, nil)
	if err != nil {
		record(p, err, nil)
		return
	}
	w.counters[key] = r.Value
	p.OK(history.Output{Value: r.Value})
}

func (w *worker) cas(ctx context.Context, key string) {
	from := w.counters[key]
	to := from + 1 + w.rng.Int64N(3)
	w.wl.register(history.FGet, key)
	p := w.wl.hist.Invoke(w.id, history.FCAS, key, history.Input{IfValue: from, Value: to})
	ctx, cancel := w.ctx(ctx)
	defer cancel()
	c, err := w.cl.Set(ctx, key, api.SetRequest{Value: &to, IfValue: &from})
	if err != nil {
		var ce *client.Error
		switch {
		case errors.As(err, &ce) && ce.Code == api.CodeConflict && ce.Current != nil:
			w.counters[key] = ce.Current.Value
			record(p, err, &history.Output{Value: ce.Current.Value})
		case ce != nil && ce.Code == api.CodeConflict:
			// Refused, but without the value it found the model has
			// nothing to check: record it under another code.
			p.Fail(nil, fmt.Errorf("conflict-without-current: %s", ce.Message))
		default:
			record(p, err, nil)
		}
		return
	}
	w.counters[key] = c.Value
	p.OK(history.Output{Value: c.Value})
}

func (w *worker) join(ctx context.Context, queue string) {
	w.seq++
	process := fmt.Sprintf("w%d-p%d", w.id, w.seq)
	w.wl.register(history.FQueueGet, queue)
	p := w.wl.hist.Invoke(w.id, history.FJoin, queue, history.Input{Process: process})
	ctx, cancel := w.ctx(ctx)
	defer cancel()
	t, err := w.cl.Join(ctx, queue, process, nil)
	if err != nil {
		record(p, err, nil)
		return
	}
	w.joined[queue] = append(w.joined[queue], process)
	p.OK(history.Output{Counter: t.Counter, Position: t.Position, Token: t.FencingToken})
}

func (w *worker) leave(ctx context.Context, queue string) {
	procs := w.joined[queue]
	i := w.rng.IntN(len(procs))
	process := procs[i]
	// Whatever the outcome, this process never tries again: each process
	// joins once and leaves at most once, so every acknowledged join and
	// leave moves the fencing token.
	w.joined[queue] = append(procs[:i:i], procs[i+1:]...)
	p := w.wl.hist.Invoke(w.id, history.FLeave, queue, history.Input{Process: process})
	ctx, cancel := w.ctx(ctx)
	defer cancel()
	r, err := w.cl.Leave(ctx, queue, process)
	if err != nil {
		record(p, err, nil)
		return
	}
	p.OK(history.Output{Token: r.FencingToken})
}

func (w *worker) addItems(ctx context.Context, tenant string) {
	var ids []string
	for range 1 + w.rng.IntN(4) {
		w.seq++
		ids = append(ids, fmt.Sprintf("w%d-i%d", w.id, w.seq))
	}
	if len(w.items) > 0 && w.rng.IntN(10) < 3 {
		ids = append(ids, w.items[w.rng.IntN(len(w.items))])
	}
	batch := make([]api.Item, len(ids))
	for i, id := range ids {
		batch[i] = api.Item{ID: id, Tenant: tenant}
	}
	w.wl.register(history.FItemsCount, tenant)
	p := w.wl.hist.Invoke(w.id, history.FItemsAdd, tenant, history.Input{Items: ids})
	ctx, cancel := w.ctx(ctx)
	defer cancel()
	if _, err := w.cl.AddItems(ctx, batch); err != nil {
		record(p, err, nil)
		return
	}
	w.items = append(w.items, ids...)
	p.OK(history.Output{})
}

// docValue is what document writes store: the writer's token.
type docValue struct {
	W string `json:"w"`
}

func docToken(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var v docValue
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("decode document value %s: %w", raw, err)
	}
	return v.W, nil
}

func (w *worker) docCAS(ctx context.Context, doc string) {
	w.seq++
	token := fmt.Sprintf("w%d-v%d", w.id, w.seq)
	from := w.docs[doc]
	body, _ := json.Marshal(docValue{W: token}) // a struct of one string always encodes
	cond := client.IfAbsent()
	if from > 0 {
		cond = client.IfMatch(from)
	}
	w.wl.register(history.FDocGet, doc)
	p := w.wl.hist.Invoke(w.id, history.FDocCAS, doc, history.Input{IfVersion: from, Doc: token})
	ctx, cancel := w.ctx(ctx)
	defer cancel()
	d, err := w.cl.PutDoc(ctx, doc, body, cond)
	if err != nil {
		record(p, err, nil)
		return
	}
	got, err := docToken(d.Value)
	if err != nil {
		p.Info(err)
		return
	}
	w.docs[doc] = d.Version
	p.OK(history.Output{Version: d.Version, Doc: got})
}

// read runs the read f of key and reports whether it succeeded.
func (w *worker) read(ctx context.Context, f history.F, key string, in history.Input) bool {
	p := w.wl.hist.Invoke(w.id, f, key, in)
	ctx, cancel := w.ctx(ctx)
	defer cancel()
	out, err := w.readOnce(ctx, f, key, in)
	if err != nil {
		record(p, err, nil)
		return false
	}
	p.OK(out)
	return true
}

func (w *worker) readOnce(ctx context.Context, f history.F, key string, in history.Input) (history.Output, error) {
	switch f {
	case history.FGet:
		cl, opts := w.cl, []client.CallOption(nil)
		if in.Stale {
			for i, a := range w.wl.cfg.Addrs {
				if a == in.Node {
					cl = w.stale[i]
				}
			}
			opts = append(opts, client.Stale())
		}
		c, err := cl.Counter(ctx, key, opts...)
		if err != nil {
			return history.Output{}, err
		}
		w.counters[key] = c.Value
		return history.Output{Value: c.Value}, nil
	case history.FQueueGet:
		q, _, err := w.cl.Queue(ctx, key)
		if err != nil {
			return history.Output{}, err
		}
		out := history.Output{Token: q.FencingToken}
		for _, m := range q.Members {
			out.Members = append(out.Members, history.Member{Process: m.ProcessID, Counter: m.Counter, Position: m.Position})
		}
		return out, nil
	case history.FItemsCount:
		c, err := w.cl.ItemCount(ctx, key)
		if err != nil {
			return history.Output{}, err
		}
		return history.Output{Count: c.Count}, nil
	case history.FDocGet:
		d, err := w.cl.Doc(ctx, key)
		if isCode(err, api.CodeNotFound) {
			return history.Output{}, nil // absent: version 0
		}
		if err != nil {
			return history.Output{}, err
		}
		tok, err := docToken(d.Value)
		if err != nil {
			return history.Output{}, err
		}
		w.docs[key] = d.Version
		return history.Output{Version: d.Version, Doc: tok}, nil
	}
	return history.Output{}, fmt.Errorf("no read %q", f)
}
