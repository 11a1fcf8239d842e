package httpapi_test

// Helpers that run real countd nodes (cluster.Node + httpapi.Server on a
// loopback listener) for the HTTP API tests. No mocks: every request goes
// through net/http, echo, the node and Raft.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
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

// httpClient never follows redirects, so tests see the 307s themselves.
var httpClient = &http.Client{
	Timeout:       20 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string {
	return fmt.Sprintf("HTTP %d %s", r.status, strings.TrimSpace(string(r.body)))
}

// send makes one request. body may be nil; headers are name, value pairs.
func send(tb testing.TB, method, url string, body io.Reader, headers ...string) reply {
	tb.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatalf("new request %s %s: %v", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func sendJSON(tb testing.TB, method, url, body string, headers ...string) reply {
	tb.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return send(tb, method, url, r, headers...)
}

// indexOf parses X-Countd-Index, failing if it is missing.
func indexOf(tb testing.TB, r reply) uint64 {
	tb.Helper()
	h := r.header.Get(api.HeaderIndex)
	if h == "" {
		tb.Fatalf("response has no %s header: %s", api.HeaderIndex, r)
	}
	v, err := strconv.ParseUint(h, 10, 64)
	if err != nil {
		tb.Fatalf("%s header %q is not an index: %v", api.HeaderIndex, h, err)
	}
	return v
}

// checkError checks an error response: status, exact {"error","code"} shape
// (plus the optional "leader" and "current"), a human sentence, and the
// X-Countd-Index header. It returns the decoded body.
func checkError(tb testing.TB, r reply, status int, code api.Code) map[string]json.RawMessage {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status: want %d %s, got %s", status, code, r)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("Content-Type: want application/json, got %q", ct)
	}
	indexOf(tb, r)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("error body is not a JSON object: %v: %s", err, r.body)
	}
	for k := range m {
		switch k {
		case "error", "code", "leader", "current":
		default:
			tb.Errorf("error body has unexpected field %q: %s", k, r.body)
		}
	}
	var e api.Error
	if err := json.Unmarshal(r.body, &e); err != nil {
		tb.Fatalf("decode error body: %v: %s", err, r.body)
	}
	if e.Code != code {
		tb.Errorf("code: want %q, got %q (%s)", code, e.Code, r.body)
	}
	if len(e.Error) < 8 || !strings.Contains(e.Error, " ") {
		tb.Errorf("error %q is not a human sentence", e.Error)
	}
	return m
}

// wantOK fails unless r has the given 2xx status and an X-Countd-Index.
func wantOK(tb testing.TB, r reply, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("want %d, got %s", status, r)
	}
	indexOf(tb, r)
}

// decodeStrict decodes body into v, rejecting unknown fields, and checks
// that exactly the fields in keys are present.
func decodeStrict(tb testing.TB, body []byte, v any, keys ...string) {
	tb.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		tb.Fatalf("body is not a JSON object: %v: %s", err, body)
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
		if _, ok := m[k]; !ok {
			tb.Errorf("body lacks field %q: %s", k, body)
		}
	}
	for k := range m {
		if !want[k] {
			tb.Errorf("body has unexpected field %q: %s", k, body)
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decode %T: %v: %s", v, err, body)
	}
}

var counterKeys = []string{"id", "value", "increment", "offset", "monotonic", "index"}

// getCounter reads a counter linearizably from base (which must lead).
func getCounter(tb testing.TB, base, id string) api.Counter {
	tb.Helper()
	r := send(tb, http.MethodGet, base+"/v1/counters/"+id, nil)
	wantOK(tb, r, http.StatusOK)
	var c api.Counter
	decodeStrict(tb, r.body, &c, counterKeys...)
	return c
}
