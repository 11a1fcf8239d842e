package client

// Sessions kept alive by the client, and locks built on them (SPEC §9): a
// lock is a queue whose member at position 0 holds it, joined with a
// session so that the holder's place goes when its process does.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/countd/countd/api"
)

// ErrSessionLost reports that a kept-alive session ended: renewing it
// failed for its whole TTL, or the cluster said it has ended. Whatever it
// held (a lock, an ephemeral queue place) is gone.
var ErrSessionLost = errors.New("session lost")

// KeptSession is a session this client renews every TTL/3 until Close, or
// until it is lost: then Done is closed and Err says why.
type KeptSession struct {
	// ID is the session's ID, for InSession and the lock's environment.
	ID  string
	TTL time.Duration

	c      *Client
	stop   context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	err    error
	closed bool
}

// KeepSession creates a session with ttl (1s to 24h) and renews it in the
// background.
func (c *Client) KeepSession(ctx context.Context, ttl time.Duration, name string) (*KeptSession, error) {
	sent := time.Now()
	s, err := c.CreateSession(ctx, ttl, name)
	if err != nil {
		return nil, err
	}
	kctx, stop := context.WithCancel(context.Background())
	ks := &KeptSession{ID: s.ID, TTL: ttl, c: c, stop: stop, done: make(chan struct{})}
	go ks.keepAlive(kctx, sent)
	return ks, nil
}

// keepAlive renews every TTL/3. The leader ends a session no sooner than
// a TTL after it applied the last renew, which it did after that renew
// was sent; so a TTL after sending the last renew that succeeded, the
// session may be gone, and from then on it counts as lost, whatever the
// renews in flight do. Counting from the send, not the answer, keeps the
// holder from believing it holds a lock after another may have it.
func (ks *KeptSession) keepAlive(ctx context.Context, created time.Time) {
	lastSent := created
	lost := time.NewTimer(time.Until(lastSent.Add(ks.TTL)))
	defer lost.Stop()
	tick := time.NewTicker(ks.TTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-lost.C:
			ks.lose(fmt.Errorf("%w: %s not renewed within its TTL of %s", ErrSessionLost, ks.ID, ks.TTL))
			return
		case <-tick.C:
		}
		sent := time.Now()
		rctx, cancel := context.WithDeadline(ctx, lastSent.Add(ks.TTL))
		_, err := ks.c.RenewSession(rctx, ks.ID)
		cancel()
		switch {
		case err == nil:
			lastSent = sent
			lost.Reset(time.Until(lastSent.Add(ks.TTL)))
		case ctx.Err() != nil:
			return
		case IsCode(err, api.CodeNotFound):
			ks.lose(fmt.Errorf("%w: %s ended: %v", ErrSessionLost, ks.ID, err))
			return
		}
	}
}

func (ks *KeptSession) lose(err error) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.closed {
		return
	}
	ks.closed, ks.err = true, err
	close(ks.done)
}

// Done is closed when the session is lost or closed.
func (ks *KeptSession) Done() <-chan struct{} { return ks.done }

// Err is why Done was closed: ErrSessionLost (wrapped), or nil after Close.
func (ks *KeptSession) Err() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.err
}

// Close stops renewing and ends the session, which releases everything it
// held.
func (ks *KeptSession) Close(ctx context.Context) error {
	ks.stop()
	ks.mu.Lock()
	if !ks.closed {
		ks.closed = true
		close(ks.done)
	}
	ks.mu.Unlock()
	return ks.c.DeleteSession(ctx, ks.ID)
}

// Lock is one of the first places of a lock queue, held for a session.
type Lock struct {
	// Name is the lock's queue, Process the member that holds it.
	Name, Process string
	// FencingToken is the queue's token when this holder got its place:
	// every later holder sees a larger one, so a resource it guards can
	// refuse a stale holder.
	FencingToken uint64
	// Lost is closed when the session is lost: the lock may be someone
	// else's from then on.
	Lost <-chan struct{}

	ks *KeptSession
}

// Lock joins the queue name with the session and waits, with blocking
// queries, until the member is among the first limit (1 for a mutex).
// On ctx's end or the session's loss it leaves the queue and returns the
// error.
func (ks *KeptSession) Lock(ctx context.Context, name string, limit int) (*Lock, error) {
	if limit < 1 {
		return nil, fmt.Errorf("lock %s: limit must be at least 1, got %d", name, limit)
	}
	process := "session-" + ks.ID
	if _, err := ks.c.Join(ctx, name, process, nil, InSession(ks.ID)); err != nil {
		return nil, fmt.Errorf("join lock %s: %w", name, err)
	}
	var index uint64
	for {
		wctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-ks.done: // a lost session must not leave us waiting
				cancel()
			case <-wctx.Done():
			}
		}()
		q, idx, err := ks.c.WaitQueue(wctx, name, index, 0)
		cancel()
		if err != nil {
			if lost := ks.Err(); lost != nil {
				err = lost
			}
			ks.leave(name, process)
			return nil, fmt.Errorf("wait for lock %s: %w", name, err)
		}
		index = idx
		for _, m := range q.Members {
			if m.ProcessID == process && m.Position < limit {
				return &Lock{Name: name, Process: process, FencingToken: q.FencingToken, Lost: ks.done, ks: ks}, nil
			}
		}
		if !member(q, process) {
			return nil, fmt.Errorf("%w: lock %s: the member left the queue while waiting", ErrSessionLost, name)
		}
	}
}

func member(q *api.Queue, process string) bool {
	for _, m := range q.Members {
		if m.ProcessID == process {
			return true
		}
	}
	return false
}

// leave gives the place up on a best-effort basis: the session's end
// removes it anyway.
func (ks *KeptSession) leave(name, process string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = ks.c.Leave(ctx, name, process)
}

// Unlock gives the lock up; the next waiter gets a larger fencing token.
func (l *Lock) Unlock(ctx context.Context) error {
	if _, err := l.ks.c.Leave(ctx, l.Name, l.Process); err != nil && !IsCode(err, api.CodeNotFound) {
		return fmt.Errorf("unlock %s: %w", l.Name, err)
	}
	return nil
}
