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
	mu      sync.Mutex
	chans   map[fsm.Key]chan struct{}
	closed  bool
	waiters int
	max     int
}

func newWatchHub(max int) *watchHub {
	return &watchHub{chans: make(map[fsm.Key]chan struct{}), max: max}
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// watch returns a channel closed at the next change to key.
func (h *watchHub) watch(key fsm.Key) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return closedChan
	}
	ch := h.chans[key]
	if ch == nil {
		ch = make(chan struct{})
		h.chans[key] = ch
	}
	return ch
}

// changed wakes the waiters of keys; nil wakes everyone (a restore).
func (h *watchHub) changed(keys []fsm.Key) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if keys == nil {
		for k, ch := range h.chans {
			close(ch)
			delete(h.chans, k)
		}
		return
	}
	for _, k := range keys {
		if ch := h.chans[k]; ch != nil {
			close(ch)
			delete(h.chans, k)
		}
	}
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

// Changed returns a channel that is closed at the next change to key, at a
// restore, or when the node stops. Take it before reading the state, then
// wait on it only if the read showed nothing new: a change between the read
// and the wait still closes the channel, so none is missed.
func (n *Node) Changed(key fsm.Key) <-chan struct{} { return n.watches.watch(key) }

// Stopping is closed when the node begins to shut down; long-running reads
// end then.
func (n *Node) Stopping() <-chan struct{} { return n.stopping }

// AcquireWatch reserves one of the node's MaxWatchers slots for a blocking
// query or watch; call release when it ends. ErrTooManyWatchers when none is
// free.
func (n *Node) AcquireWatch() (release func(), err error) { return n.watches.acquire() }
