package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/countd/countd/client"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestLockPassesToTheNextWaiterWithALargerToken(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	c := newClient(t, client.Config{Addrs: []string{n.URL}})
	ctx := ctxFor(t, 30*time.Second)
	a, err := c.KeepSession(ctx, 3*time.Second, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.KeepSession(ctx, 3*time.Second, "b")
	if err != nil {
		t.Fatal(err)
	}
	la, err := a.Lock(ctx, "mutex", 1)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *client.Lock, 1)
	errs := make(chan error, 1)
	go func() {
		l, err := b.Lock(ctx, "mutex", 1)
		if err != nil {
			errs <- err
			return
		}
		got <- l
	}()
	// b waits behind a: queued at position 1, not holding.
	harness.WaitFor(t, 10*time.Second, "b to queue behind a", func() bool {
		q, _, err := c.Queue(ctx, "mutex")
		return err == nil && len(q.Members) == 2
	})
	select {
	case <-got:
		t.Fatal("b took the lock while a held it")
	default:
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case lb := <-got:
		if lb.FencingToken <= la.FencingToken {
			t.Fatalf("b's token %d is not above a's %d", lb.FencingToken, la.FencingToken)
		}
	case err := <-errs:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("b never got the lock after a unlocked")
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLockIsLostWithItsSession(t *testing.T) {
	n := harness.StartInMem(t, httpapi.Config{})
	c := newClient(t, client.Config{Addrs: []string{n.URL}})
	ctx := ctxFor(t, 30*time.Second)
	s, err := c.KeepSession(ctx, 1500*time.Millisecond, "holder")
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Lock(ctx, "mutex", 1)
	if err != nil {
		t.Fatal(err)
	}
	// Someone ends the session (an operator, or the leader after a
	// partition): the holder learns it at its next renew.
	if err := c.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost:
		if !errors.Is(s.Err(), client.ErrSessionLost) {
			t.Fatalf("lost with %v, want ErrSessionLost", s.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lock was not reported lost within 10s of its session ending")
	}
	if q, _, err := c.Queue(context.Background(), "mutex"); err != nil || len(q.Members) != 0 {
		t.Fatalf("the lock queue still holds the lost holder: %+v %v", q, err)
	}
}
