// Package testnode runs real countd nodes (cluster.Node with its
// httpapi.Server on a loopback listener) for the tests of the HTTP API, the
// Go client and countctl. No mocks: every request goes through net/http,
// echo, the node and Raft. Only tests import it.
package testnode

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

// Logger is silent unless COUNTD_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("COUNTD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Node is one running node with its HTTP API.
type Node struct {
	// Node is the running cluster node.
	Node *cluster.Node
	// HTTP serves the node's API.
	HTTP *http.Server
	// API is the handler HTTP serves (for CloseStreams).
	API *httpapi.Server
	// URL is the API's base URL, http://127.0.0.1:port.
	URL  string
	once sync.Once
}

// Stop closes the HTTP server and shuts the node down; safe to call twice.
func (n *Node) Stop() {
	n.once.Do(func() {
		_ = n.HTTP.Close()
		_ = n.Node.Shutdown()
	})
}

// Start listens on a free loopback port, starts a node advertising it,
// and serves the API there.
func Start(tb testing.TB, cfg cluster.Config, hc httpapi.Config) *Node {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	cfg.HTTPAddr = ln.Addr().String()
	if cfg.Logger == nil {
		cfg.Logger = Logger()
	}
	node, err := cluster.Start(cfg)
	if err != nil {
		_ = ln.Close()
		tb.Fatalf("start node %s: %v", cfg.NodeID, err)
	}
	if hc.Logger == nil {
		hc.Logger = cfg.Logger
	}
	api := httpapi.New(node, hc)
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	n := &Node{Node: node, HTTP: srv, API: api, URL: "http://" + cfg.HTTPAddr}
	tb.Cleanup(n.Stop)
	return n
}

// StartInMem starts a single in-memory node (like countd -dev) and waits
// until it serves linearizable reads.
func StartInMem(tb testing.TB, hc httpapi.Config) *Node {
	tb.Helper()
	return StartInMemWith(tb, cluster.Config{}, hc)
}

// StartInMemWith is StartInMem with node settings (MaxWatchers,
// WatchHistory, …); NodeID and InMemory are filled in when unset.
func StartInMemWith(tb testing.TB, cfg cluster.Config, hc httpapi.Config) *Node {
	tb.Helper()
	if cfg.NodeID == "" {
		cfg.NodeID = "solo"
	}
	cfg.InMemory = true
	n := Start(tb, cfg, hc)
	WaitFor(tb, 10*time.Second, "the in-memory node to lead", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ok, _ := n.Node.Ready()
		return ok && n.Node.ReadBarrier(ctx, cluster.Linearizable) == nil
	})
	return n
}

// StartCluster starts size nodes with bootstrap-expect size, all joining the
// first one's gossip address, and waits until there is one leader that
// serves linearizable reads and every node knows every member's HTTP address.
func StartCluster(tb testing.TB, size int) []*Node {
	tb.Helper()
	return StartClusterWith(tb, size, httpapi.Config{})
}

// StartClusterWith is StartCluster with every node's API configured by hc.
func StartClusterWith(tb testing.TB, size int, hc httpapi.Config) []*Node {
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
	nodes := []*Node{Start(tb, cfg("n1"), hc)}
	seed := nodes[0].Node.GossipAddr()
	for i := 2; i <= size; i++ {
		c := cfg(fmt.Sprintf("n%d", i))
		c.Join = []string{seed}
		nodes = append(nodes, Start(tb, c, hc))
	}
	// Stop all nodes at once at the end (registered last, so it runs first):
	// one by one, each would try to hand leadership to already-stopped peers.
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.Stop() }()
		}
		wg.Wait()
	})
	WaitStable(tb, nodes)
	return nodes
}

// WaitStable waits for one leader serving linearizable reads and for every
// node to be ready and to know every member's HTTP address.
func WaitStable(tb testing.TB, nodes []*Node) *Node {
	tb.Helper()
	var l *Node
	WaitFor(tb, 20*time.Second, "a stable cluster", func() bool {
		l = LeaderOf(nodes)
		if l == nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if l.Node.ReadBarrier(ctx, cluster.Linearizable) != nil {
			return false
		}
		for _, n := range nodes {
			if ok, _ := n.Node.Ready(); !ok {
				return false
			}
			st := n.Node.Status()
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

// LeaderOf is the one node that believes it leads, or nil.
func LeaderOf(nodes []*Node) *Node {
	var l *Node
	for _, n := range nodes {
		if n.Node.IsLeader() {
			if l != nil {
				return nil
			}
			l = n
		}
	}
	return l
}

// FollowersOf is every node but leader.
func FollowersOf(nodes []*Node, leader *Node) []*Node {
	var out []*Node
	for _, n := range nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// WaitFor polls cond until it holds or the deadline passes.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// DeadAddr is a loopback address nothing listens on.
func DeadAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}
