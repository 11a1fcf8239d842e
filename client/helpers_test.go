package client_test

// Helpers that run real countd nodes (cluster.Node + httpapi.Server on a
// loopback listener) for the client tests.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
)

// testLogger is silent unless COUNTD_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("COUNTD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testNode is one running node with its HTTP API.
type testNode struct {
	node *cluster.Node
	srv  *http.Server
	url  string // http://127.0.0.1:port
	once sync.Once
}

// stop closes the HTTP server and shuts the node down; safe to call twice.
func (n *testNode) stop() {
	n.once.Do(func() {
		_ = n.srv.Close()
		_ = n.node.Shutdown()
	})
}

// startNode listens on a free loopback port, starts a node advertising it,
// and serves the API there.
func startNode(tb testing.TB, cfg cluster.Config, hc httpapi.Config) *testNode {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	cfg.HTTPAddr = ln.Addr().String()
	if cfg.Logger == nil {
		cfg.Logger = testLogger()
	}
	node, err := cluster.Start(cfg)
	if err != nil {
		_ = ln.Close()
		tb.Fatalf("start node %s: %v", cfg.NodeID, err)
	}
	if hc.Logger == nil {
		hc.Logger = cfg.Logger
	}
	srv := &http.Server{Handler: httpapi.New(node, hc), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	n := &testNode{node: node, srv: srv, url: "http://" + cfg.HTTPAddr}
	tb.Cleanup(n.stop)
	return n
}

// startInMem starts a single in-memory node (like countd -dev) and waits
// until it serves linearizable reads.
func startInMem(tb testing.TB, hc httpapi.Config) *testNode {
	tb.Helper()
	n := startNode(tb, cluster.Config{NodeID: "solo", InMemory: true}, hc)
	waitFor(tb, 10*time.Second, "the in-memory node to lead", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ok, _ := n.node.Ready()
		return ok && n.node.ReadBarrier(ctx, cluster.Linearizable) == nil
	})
	return n
}

// startCluster starts size nodes with bootstrap-expect size, all joining the
// first one's gossip address, and waits until there is one leader that
// serves linearizable reads and every node knows every member's HTTP address.
func startCluster(tb testing.TB, size int) []*testNode {
	tb.Helper()
	dir := tb.TempDir()
	cfg := func(id string) cluster.Config {
		return cluster.Config{
			NodeID:             id,
			DataDir:            filepath.Join(dir, id),
			RaftAddr:           "127.0.0.1:0",
			GossipAddr:         "127.0.0.1:0",
			BootstrapExpect:    size,
			HeartbeatTimeout:   200 * time.Millisecond,
			ElectionTimeout:    200 * time.Millisecond,
			LeaderLeaseTimeout: 100 * time.Millisecond,
		}
	}
	nodes := []*testNode{startNode(tb, cfg("n1"), httpapi.Config{})}
	seed := nodes[0].node.GossipAddr()
	for i := 2; i <= size; i++ {
		c := cfg(fmt.Sprintf("n%d", i))
		c.Join = []string{seed}
		nodes = append(nodes, startNode(tb, c, httpapi.Config{}))
	}
	// Stop all nodes at once at the end (registered last, so it runs first):
	// one by one, each would try to hand leadership to already-stopped peers.
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.stop() }()
		}
		wg.Wait()
	})
	waitStable(tb, nodes)
	return nodes
}

// waitStable waits for one leader serving linearizable reads and for every
// node to be ready and to know every member's HTTP address.
func waitStable(tb testing.TB, nodes []*testNode) *testNode {
	tb.Helper()
	var l *testNode
	waitFor(tb, 20*time.Second, "a stable cluster", func() bool {
		l = leaderOf(nodes)
		if l == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if l.node.ReadBarrier(ctx, cluster.Linearizable) != nil {
			return false
		}
		for _, n := range nodes {
			if ok, _ := n.node.Ready(); !ok {
				return false
			}
			st := n.node.Status()
			if len(st.Members) != len(nodes) {
				return false
			}
			for _, m := range st.Members {
				if m.HTTPAddr == "" || m.Suffrage != "voter" {
					return false
				}
			}
		}
		return true
	})
	return l
}

// leaderOf is the one node that believes it leads, or nil.
func leaderOf(nodes []*testNode) *testNode {
	var l *testNode
	for _, n := range nodes {
		if n.node.IsLeader() {
			if l != nil {
				return nil
			}
			l = n
		}
	}
	return l
}

func followersOf(nodes []*testNode, leader *testNode) []*testNode {
	var out []*testNode
	for _, n := range nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}
