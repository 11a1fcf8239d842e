package cluster_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/fsm"
	"github.com/countd/countd/internal/harness"
)

// applyOnLeader applies p on whichever node leads, retrying while
// leadership moves.
func applyOnLeader(t *testing.T, nodes []*harness.Node, p fsm.Payload) (fsm.Result, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		for _, n := range alive(nodes) {
			if !n.Node.IsLeader() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			var res fsm.Result
			res, err = n.Node.Apply(ctx, fsm.Command{Payload: p})
			cancel()
			if err == nil {
				return res, nil
			}
		}
		if time.Now().After(deadline) {
			return fsm.Result{}, errors.Join(errors.New("no leader applied it in 10s"), err)
		}
		time.Sleep(20 * time.Millisecond) // polling for a new leader; the deadline bounds it
	}
}

func TestSessionSurvivesLeaderChangeWhileRenewed(t *testing.T) {
	nodes := calmCluster(t)
	l := harness.WaitLeader(t, nodes)
	const ttl = 3 * time.Second
	res, err := applyOnLeader(t, nodes, fsm.SessionCreate{ID: "renewed", TTL: ttl})
	if err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	created := res.Value.(*fsm.Session).Renewed
	if res, err := applyOnLeader(t, nodes, fsm.SessionCreate{ID: "abandoned", TTL: ttl}); err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	// Renew one every ttl/3, as countctl does, through the leader change.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if res, err := applyOnLeader(t, nodes, fsm.SessionRenew{ID: "renewed"}); err != nil || res.Err != nil {
					t.Errorf("renew: %v %v", err, res.Err)
				}
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	// Change leaders once a renew has happened, a third of the TTL in:
	// without the new leader's grace the abandoned session would then end
	// two thirds of a TTL after the change.
	harness.WaitFor(t, 2*ttl, "the first renew", func() bool {
		s, _, err := l.Node.State().Session("renewed")
		return err == nil && s.Renewed > created
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The new leader starts after this instant, so with its grace the
	// abandoned session cannot end sooner than a TTL after it; without the
	// grace it would end two thirds of a TTL after it.
	changed := time.Now()
	if _, err := l.Node.TransferLeadership(ctx, ""); err != nil {
		t.Fatal(err)
	}
	// The abandoned one ends, but not before a full TTL from the new
	// leader's start; the renewed one never does.
	harness.WaitFor(t, 3*ttl, "the abandoned session to end", func() bool {
		for _, n := range nodes {
			if _, _, err := n.Node.State().Session("abandoned"); err == nil {
				return false
			}
		}
		return true
	})
	if after := time.Since(changed); after < ttl-50*time.Millisecond {
		t.Errorf("the abandoned session ended %v after the leader change, before a full %v TTL from the new leader's start", after, ttl)
	}
	t.Logf("the abandoned session ended %v after the leader change (TTL %v)", time.Since(changed).Round(time.Millisecond), ttl)
	for _, n := range nodes {
		if _, _, err := n.Node.State().Session("renewed"); err != nil {
			t.Fatalf("%s: the renewed session ended across a leader change: %v", n.Node.ID(), err)
		}
	}
}
