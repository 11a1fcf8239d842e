package cluster

// The watch hub wakes blocking queries and document watches when the object
// they wait on changes. The state machine reports changed keys after each
// apply, outside its lock; the hub closes one channel per watched key, which
// never blocks. Waiters re-read the state themselves, at their own pace, so
// a slow watcher can never stall Apply: at worst it falls behind the kept
// history and is sent a reset.

import (
	"errors"
	"sync"

	"github.com/countd/countd/fsm"
)

// DefaultMaxWatchers bounds concurrent blocking queries and watches per node.
const DefaultMaxWatchers = 10_000

// ErrTooManyWatchers is returned by AcquireWatch when the node already holds
// as many blocking queries and watches as it allows.
var ErrTooManyWatchers = errors.New("this node holds as many blocking queries and watches as it allows; retry later or on another node")

type watchHub struct {
	mu sync.Mutex
	// entries holds the keys someone watches: each lives exactly as long
	// as its watches, so keys waited on once cost nothing afterwards.
	entries map[fsm.Key]*watchEntry
	closed  bool
	waiters int
	max     int
}

// watchEntry is one watched key: the channel the next change closes (nil
// until a watcher asks for one after the last change), and how many
// Watches hold it.
type watchEntry struct {
	ch   chan struct{}
	refs int
}

func newWatchHub(max int) *watchHub {
	return &watchHub{entries: make(map[fsm.Key]*watchEntry), max: max}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Watch is one blocking query's or watch stream's interest in a key. Take
// Changed before reading the state, and wait on it only if the read showed
// nothing new: a change in between still closes it, so none is missed.
// Close it when done.
type Watch struct {
	hub   *watchHub
	key   fsm.Key
	entry *watchEntry
	once  sync.Once
}

func (h *watchHub) watch(key fsm.Key) *Watch {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.entries[key]
	if e == nil {
		e = &watchEntry{}
		h.entries[key] = e
	}
	e.refs++
	return &Watch{hub: h, key: key, entry: e}
}

// Changed returns a channel closed at the next change to the key, at a
// restore, or when the node stops.
func (w *Watch) Changed() <-chan struct{} {
	h := w.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return closedChan
	}
	if w.entry.ch == nil {
		w.entry.ch = make(chan struct{})
	}
	return w.entry.ch
}

// Close ends the watch; the key's entry goes with its last watch.
func (w *Watch) Close() {
	w.once.Do(func() {
		h := w.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		if w.entry.refs--; w.entry.refs == 0 && h.entries[w.key] == w.entry {
			delete(h.entries, w.key)
		}
	})
}

// changed wakes the waiters of keys; nil wakes everyone (a restore).
func (h *watchHub) changed(keys []fsm.Key) {
	h.mu.Lock()
	defer h.mu.Unlock()
	wake := func(e *watchEntry) {
		if e != nil && e.ch != nil {
			close(e.ch)
			e.ch = nil
		}
	}
	if keys == nil {
		for _, e := range h.entries {
			wake(e)
		}
		return
	}
	for _, k := range keys {
		wake(h.entries[k])
	}
}

// watched is how many keys the hub holds entries for.
func (h *watchHub) watched() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.entries)
}

// close wakes everyone for good: the node is stopping.
func (h *watchHub) close() {
	h.changed(nil)
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
}

func (h *watchHub) acquire() (func(), error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiters >= h.max {
		return nil, ErrTooManyWatchers
	}
	h.waiters++
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			h.waiters--
			h.mu.Unlock()
		})
	}, nil
}

// Watch starts watching key for a blocking query or watch stream; see
// Watch. Close it when the query or stream ends.
func (n *Node) Watch(key fsm.Key) *Watch { return n.watches.watch(key) }

// Stopping is closed when the node begins to shut down; long-running reads
// end then.
func (n *Node) Stopping() <-chan struct{} { return n.stopping }

// AcquireWatch reserves one of the node's MaxWatchers slots for a blocking
// query or watch; call release when it ends. ErrTooManyWatchers when none is
// free.
func (n *Node) AcquireWatch() (release func(), err error) { return n.watches.acquire() }
