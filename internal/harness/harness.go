// Package harness is the one way tests, benchmarks and jepsen-lite start
// countd clusters, with two backends over one model:
//
//   - in-process (inproc.go): cluster.Node with its httpapi.Server on a
//     loopback listener, for the tests of cluster, httpapi, client and
//     countctl. No mocks: every request goes through net/http, echo, the
//     node and Raft.
//   - real processes (process.go, processes.go): countd binaries built once
//     without the race detector (build.go), started through a pluggable
//     Launcher, directly or inside a network namespace (jepsen-lite).
//
// Both backends share what this file and its neighbours hold: waiting on a
// condition, free loopback ports, the probe client and its /v1/cluster
// status, one convergence check with one description for failure messages,
// and a quiet logger. The process backend works without a testing.TB (the
// jepsen-lite command and bench's TestMain run outside tests) and returns
// errors; its Must… methods are thin wrappers for tests.
//
// Settings every test cluster needs (TLS, a gossip key, a token) go in one
// place per backend: NodeConfig for in-process nodes, Process.Args (with
// ProcessSpec.Flags) for processes.
package harness

import (
	"log/slog"
	"os"
	"testing"
	"time"
)

// pollInterval is how often the waits here check their condition.
const pollInterval = 10 * time.Millisecond

// WaitFor polls cond until it holds, and fails the test when timeout passes
// first, naming what it waited for.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !eventually(timeout, cond) {
		tb.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// eventually polls cond until it holds (true) or timeout passes (false).
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// Logger is silent unless COUNTD_TEST_LOG is set, when it logs everything
// to stderr.
func Logger() *slog.Logger {
	if os.Getenv("COUNTD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
