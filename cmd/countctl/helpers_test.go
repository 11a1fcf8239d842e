package main

// Helpers that run a real in-memory countd node (cluster.Node +
// httpapi.Server on a loopback listener) for the countctl tests.

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
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
