// Package retry is the one backoff policy of countd's clients, the Go
// client and countctl: pauses that start at First and double up to a cap,
// each jittered to between half and all of its length so that clients that
// failed together do not come back together; and the one sleep that ends
// early when its context does. Every retry loop on the client side uses
// it, so they cannot drift apart.
package retry

import (
	"context"
	"math/rand/v2"
	"time"
)

// First is the first pause: short, because the usual cause of a retry (a
// refused connection to a dead node, a 503 during an election) is over
// within milliseconds on the next node.
const First = 10 * time.Millisecond

// Backoff hands out the pauses of one retry loop. Each loop keeps its own;
// it is not safe for concurrent use.
type Backoff struct {
	max  time.Duration
	next time.Duration
}

// New returns a Backoff whose pauses grow from First up to limit (at
// least First).
func New(limit time.Duration) *Backoff {
	b := &Backoff{max: max(limit, First)}
	b.Reset()
	return b
}

// Reset starts the pauses over from First: for a loop that made progress,
// whose next failure is a new one rather than a repeat.
func (b *Backoff) Reset() { b.next = First }

// Wait sleeps for the next pause, or until ctx ends, and then returns
// ctx's error.
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.pause()) }

// pause returns the next pause, jittered, and doubles the one after it.
func (b *Backoff) pause() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Sleep waits for d, or until ctx ends, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
