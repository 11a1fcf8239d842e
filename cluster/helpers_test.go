package cluster_test

// Helpers of the tests that start nodes. The nodes come from
// internal/harness (cluster.Node with its HTTP API on loopback); the
// internals the tests look at are in export_test.go.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

// start starts a node from cfg with its HTTP API.
func start(t *testing.T, cfg cluster.Config) *harness.Node {
	t.Helper()
	return harness.Start(t, cfg, httpapi.Config{})
}

// startSolo starts a node that bootstraps a cluster of its own, and waits
// until it leads.
func startSolo(t *testing.T) *harness.Node {
	t.Helper()
	n := start(t, harness.NodeConfig("solo", t.TempDir()))
	harness.WaitLeader(t, []*harness.Node{n})
	return n
}

func applyNext(ctx context.Context, n *cluster.Node, id string, count int64, key string) (*fsm.Mint, error) {
	res, err := n.Apply(ctx, fsm.Command{Payload: fsm.CounterNext{ID: id, Count: count}, IdempotencyKey: key})
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, res.Err
	}
	return res.Value.(*fsm.Mint), nil
}

// mintOn keeps minting on whichever node leads, retrying a command whose
// outcome is unknown with the same idempotency key, as the client does.
func mintOn(t *testing.T, nodes []*harness.Node, id string, key string) int64 {
	t.Helper()
	var v int64
	harness.WaitFor(t, 15*time.Second, "a mint on the leader", func() bool {
		l := harness.LeaderOf(nodes)
		if l == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		m, err := applyNext(ctx, l.Node, id, 1, key)
		if err == nil {
			v = m.First
			return true
		}
		if !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, cluster.ErrUnknownResult) && !errors.Is(err, cluster.ErrUnavailable) {
			t.Fatalf("mint: %v", err)
		}
		return false
	})
	return v
}

// stopFollower stops a follower of l and returns the config that restarts
// it with the same data dir and addresses, joining l.
func stopFollower(t *testing.T, nodes []*harness.Node, l *harness.Node) cluster.Config {
	t.Helper()
	follower := harness.FollowersOf(nodes, l)[0]
	cfg := follower.Config()
	cfg.Join = []string{l.Node.GossipAddr()}
	if err := follower.Node.Shutdown(); err != nil {
		t.Fatal(err)
	}
	follower.Stop()
	return cfg
}

// alive is the nodes that have not been shut down.
func alive(nodes []*harness.Node) []*harness.Node {
	var out []*harness.Node
	for _, n := range nodes {
		if !n.Node.IsShutdown() {
			out = append(out, n)
		}
	}
	return out
}

func codeOf(err error) fsm.Code {
	var fe *fsm.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}
