package client

// Sessions kept alive by the client, and locks built on them (SPEC §9): a
// lock is a queue whose member at position 0 holds it, joined with a
// session so that the holder's place goes when its process does.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/countd/countd/api"
)

// ErrSessionLost reports that a kept-alive session ended: renewing it
// failed for its whole TTL, or the cluster said it has ended. Whatever it
// held (a lock, an ephemeral queue place) is gone.
var ErrSessionLost = errors.New("session lost")

// KeptSession is a session this client renews every TTL/3 until Close, or
// until it is lost: then Done is closed and Err says why. Deadline and
// AtRisk tell a holder how close the session is to a moment the cluster
// could end it, so that it can stop acting before then rather than after.
type KeptSession struct {
	// ID is the session's ID, for InSession and the lock's environment.
	ID  string
	TTL time.Duration

	c        *Client
	stop     context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	err      error
	closed   bool
	deadline time.Time    // see Deadline
	watches  []*riskWatch // AtRisk channels not closed yet
}

// riskWatch is one AtRisk channel: its timer is armed for the deadline
// minus lead, and re-armed whenever a renew moves the deadline.
type riskWatch struct {
	lead  time.Duration
	ch    chan struct{}
	timer *time.Timer
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
	ks := &KeptSession{ID: s.ID, TTL: ttl, c: c, stop: stop, done: make(chan struct{}), deadline: sent.Add(ttl)}
	go ks.keepAlive(kctx)
	return ks, nil
}

// keepAlive renews every TTL/3. The leader ends a session no sooner than
// a TTL after it applied the last renew, which it did after that renew
// was sent; so a TTL after sending the last renew that succeeded (the
// Deadline), the session may be gone, and from then on it counts as lost,
// whatever the renews in flight do. Counting from the send, not the
// answer, keeps the holder from believing it holds a lock after another
// may have it.
func (ks *KeptSession) keepAlive(ctx context.Context) {
	lost := time.NewTimer(time.Until(ks.Deadline()))
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
		deadline := ks.Deadline()
		sent := time.Now()
		// The client retries a failed renew until this ends, so one call
		// covers every chance left to renew before the deadline.
		rctx, cancel := context.WithDeadline(ctx, deadline)
		_, err := ks.c.RenewSession(rctx, ks.ID)
		cancel()
		switch {
		case err == nil:
			ks.renewed(sent.Add(ks.TTL))
			lost.Reset(time.Until(ks.Deadline()))
		case ctx.Err() != nil:
			return
		case IsCode(err, api.CodeNotFound):
			ks.lose(fmt.Errorf("%w: %s ended: %v", ErrSessionLost, ks.ID, err))
			return
		case !time.Now().Before(deadline):
			// Do not leave it to the lost timer racing the next tick.
			ks.lose(fmt.Errorf("%w: %s not renewed within its TTL of %s: %v", ErrSessionLost, ks.ID, ks.TTL, err))
			return
		}
	}
}

// renewed moves the deadline to d after a renew succeeded, and re-arms
// the AtRisk timers for it.
func (ks *KeptSession) renewed(d time.Time) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if !d.After(ks.deadline) {
		return
	}
	ks.deadline = d
	for _, w := range ks.watches {
		w.timer.Reset(time.Until(d.Add(-w.lead)))
	}
}

// Deadline is the earliest moment the cluster could end the session, as
// far as this client can tell: a TTL after the last renew that succeeded
// (or the create) was sent. The leader counts the TTL from when it
// applied that renew, which is later, so the session cannot end before
// Deadline unless it is deleted. Each successful renew moves it forward;
// once the session is lost or closed it stays where it is.
func (ks *KeptSession) Deadline() time.Time {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.deadline
}

// AtRisk returns a channel that is closed once the session comes within
// lead of its Deadline, i.e. once no renew has succeeded for TTL - lead.
// A holder that must have stopped acting before the session can end
// waits on it with a lead at least as long as it takes to stop.
//
// Renews go every TTL/3, so a healthy session stays at least 2·TTL/3
// from its deadline: with a lead below that, the channel closes only when
// renewing has been failing for a while. Once closed it stays closed,
// even if a later renew succeeds: the holder was at risk of losing the
// session, and whatever it stopped stays stopped; call AtRisk again for a
// channel that follows the new deadline. AtRisk does not close the channel
// when the cluster says the session has ended (watch Done, or Lock.Lost,
// for that); a session that is lost or closed is renewed no more, so the
// channel closes at its last Deadline minus lead at the latest (at once
// if that is past). Each call arms a timer that lasts until its channel
// closes: call it once per purpose, not once per loop.
func (ks *KeptSession) AtRisk(lead time.Duration) <-chan struct{} {
	w := &riskWatch{lead: lead, ch: make(chan struct{})}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	d := time.Until(ks.deadline.Add(-lead))
	if d <= 0 {
		close(w.ch)
		return w.ch
	}
	w.timer = time.AfterFunc(d, func() { ks.checkRisk(w) })
	ks.watches = append(ks.watches, w)
	return w.ch
}

// checkRisk runs when w's timer fires: it closes w's channel unless a
// renew has moved the deadline since the timer was armed.
func (ks *KeptSession) checkRisk(w *riskWatch) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	i := slices.Index(ks.watches, w)
	if i < 0 {
		return // closed already
	}
	if d := time.Until(ks.deadline.Add(-w.lead)); d > 0 {
		w.timer.Reset(d) // a renew raced the timer
		return
	}
	ks.watches = slices.Delete(ks.watches, i, i+1)
	close(w.ch)
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
	// Lost is closed when the session is lost (or closed): the lock may
	// be someone else's from then on. A holder that must stop before the
	// lock can pass on, not after, also waits on its session's AtRisk.
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
