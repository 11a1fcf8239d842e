package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countd/countd/fsm"
)

// testLogger keeps test output quiet unless COUNTD_TEST_LOG is set.
func testLogger(t *testing.T, id string) *slog.Logger {
	level := slog.LevelError + 4
	if os.Getenv("COUNTD_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name(), "id", id)
}

// nextHTTPPort makes every test node advertise its own HTTP address, so a
// test can tell which node a redirect names.
var nextHTTPPort atomic.Int32

// testNodeConfig is a node on loopback with OS-assigned ports and short
// timeouts, like hashicorp/raft's own inmemConfig.
func testNodeConfig(t *testing.T, id, dir string) Config {
	return Config{
		NodeID:             id,
		DataDir:            filepath.Join(dir, id),
		HTTPAddr:           fmt.Sprintf("127.0.0.1:%d", 10000+nextHTTPPort.Add(1)), // not bound; only advertised, distinct per node
		RaftAddr:           "127.0.0.1:0",
		GossipAddr:         "127.0.0.1:0",
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		Logger:             testLogger(t, id),
	}
}

func mustStart(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leaderOf(nodes []*Node) *Node {
	var leader *Node
	for _, n := range nodes {
		if n.isShutdown.Load() {
			continue
		}
		if n.IsLeader() {
			if leader != nil {
				return nil // two nodes think they lead (old term lingering); ask again
			}
			leader = n
		}
	}
	return leader
}

func waitLeader(t *testing.T, nodes []*Node) *Node {
	t.Helper()
	var l *Node
	waitFor(t, 10*time.Second, "a single leader", func() bool { l = leaderOf(nodes); return l != nil })
	return l
}

func voters(t *testing.T, n *Node) int {
	t.Helper()
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return -1
	}
	return len(f.Configuration().Servers)
}

// startCluster starts n nodes at the same moment with bootstrap-expect n, all
// joining the first one's gossip address.
func startCluster(t *testing.T, size int, tweaks ...func(*Config)) []*Node {
	t.Helper()
	dir := t.TempDir()
	config := func(id string) Config {
		cfg := testNodeConfig(t, id, dir)
		for _, f := range tweaks {
			f(&cfg)
		}
		return cfg
	}
	first := config("n1")
	first.BootstrapExpect = size
	nodes := []*Node{mustStart(t, first)}
	seed := nodes[0].GossipAddr()
	for i := 2; i <= size; i++ {
		cfg := config(fmt.Sprintf("n%d", i))
		cfg.BootstrapExpect = size
		cfg.Join = []string{seed}
		nodes = append(nodes, mustStart(t, cfg))
	}
	l := waitLeader(t, nodes)
	waitFor(t, 10*time.Second, "every node to see all voters and the same leader", func() bool {
		for _, n := range nodes {
			id, addr := n.leader()
			if voters(t, n) != size || id != l.ID() || addr != l.HTTPAddr() {
				return false
			}
		}
		return true
	})
	return nodes
}

func applyNext(ctx context.Context, n *Node, id string, count int64, key string) (*fsm.Mint, error) {
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
func mintOn(t *testing.T, nodes []*Node, id string, key string) int64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		l := leaderOf(nodes)
		if l == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := applyNext(ctx, l, id, 1, key)
		cancel()
		if err == nil {
			return m.First
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrUnknownResult) && !errors.Is(err, ErrUnavailable) {
			t.Fatalf("mint: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("could not mint for 15s")
	return 0
}

// stopFollower shuts down a follower of l and returns the config that
// restarts it with the same data dir and addresses, joining l.
func stopFollower(t *testing.T, nodes []*Node, l *Node) Config {
	t.Helper()
	var follower *Node
	for _, n := range nodes {
		if n != l {
			follower = n
			break
		}
	}
	cfg := follower.cfg
	cfg.RaftAddr, cfg.GossipAddr = follower.RaftAddr(), follower.GossipAddr()
	cfg.Join = []string{l.GossipAddr()}
	if err := follower.Shutdown(); err != nil {
		t.Fatal(err)
	}
	return cfg
}
