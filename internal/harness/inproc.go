package harness

// The in-process backend: a cluster.Node with its httpapi.Server on a
// loopback listener, one per Node, started and stopped by the test.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/respapi"
)

// Node is one running in-process node with its HTTP API.
type Node struct {
	// Node is the running cluster node.
	Node *cluster.Node
	// HTTP serves the node's API.
	HTTP *http.Server
	// API is the handler HTTP serves (for CloseStreams).
	API *httpapi.Server
	// URL is the API's base URL, http://127.0.0.1:port.
	URL string
	// RESP serves the Redis protocol at RESPAddr when the node was started
	// with StartRESP; nil otherwise.
	RESP     *respapi.Server
	RESPAddr string

	cfg     cluster.Config
	respCfg *respapi.Config
	once    sync.Once
}

// NodeConfig is the configuration every in-process cluster node starts
// from: node id with its data in dir/id, Raft and gossip on loopback ports
// the OS picks, and short Raft timeouts (like hashicorp/raft's own test
// config) so that elections are quick. A setting every test cluster needs
// belongs here.
func NodeConfig(id, dir string) cluster.Config {
	return cluster.Config{
		NodeID:             id,
		DataDir:            filepath.Join(dir, id),
		RaftAddr:           "127.0.0.1:0",
		GossipAddr:         "127.0.0.1:0",
		HeartbeatTimeout:   200 * time.Millisecond,
		ElectionTimeout:    200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		Logger:             Logger(),
	}
}

// Start serves the API of a new node started from cfg. The API listens on
// cfg.HTTPAddr, or on a free loopback port when that is empty, and the node
// advertises it. The node stops in tb.Cleanup.
func Start(tb testing.TB, cfg cluster.Config, hc httpapi.Config) *Node {
	tb.Helper()
	return StartRESP(tb, cfg, hc, nil)
}

// StartRESP is Start that also serves the Redis protocol, configured by
// rc, on cfg.RESPAddr or a free loopback port, when rc is not nil.
func StartRESP(tb testing.TB, cfg cluster.Config, hc httpapi.Config, rc *respapi.Config) *Node {
	tb.Helper()
	var respLn net.Listener
	if rc != nil {
		addr := cfg.RESPAddr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		var err error
		if respLn, err = net.Listen("tcp", addr); err != nil {
			tb.Fatalf("listen for RESP: %v", err)
		}
		cfg.RESPAddr = respLn.Addr().String()
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
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
	go func() { _ = srv.Serve(httpapi.JSONProtocolErrors(ln)) }()
	// A restart from Config keeps the addresses the node bound.
	if !cfg.InMemory {
		cfg.RaftAddr = node.RaftAddr()
	}
	if g := node.GossipAddr(); g != "" {
		cfg.GossipAddr = g
	}
	n := &Node{Node: node, HTTP: srv, API: api, URL: "http://" + cfg.HTTPAddr, cfg: cfg}
	if rc != nil {
		rcfg := *rc
		if rcfg.Logger == nil {
			rcfg.Logger = cfg.Logger
		}
		rs, err := respapi.New(node, rcfg)
		if err != nil {
			_ = respLn.Close()
			n.Stop()
			tb.Fatalf("start RESP: %v", err)
		}
		go func() { _ = rs.Serve(respLn) }()
		n.RESP, n.RESPAddr, n.respCfg = rs, cfg.RESPAddr, &rcfg
	}
	tb.Cleanup(n.Stop)
	return n
}

// RESPConfig is the RESP configuration the node was started with, for a
// restart with StartRESP; nil when it serves none.
func (n *Node) RESPConfig() *respapi.Config { return n.respCfg }

// Stop closes the HTTP server and shuts the node down; safe to call twice.
func (n *Node) Stop() {
	n.once.Do(func() {
		if n.RESP != nil {
			_ = n.RESP.Close()
		}
		_ = n.HTTP.Close()
		_ = n.Node.Shutdown()
	})
}

// Config is the configuration the node runs with, its bound addresses
// filled in: Start(tb, n.Config(), …) after Stop restarts it with the same
// identity, addresses and data.
func (n *Node) Config() cluster.Config { return n.cfg }

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

// StartCluster starts size nodes n1…n<size> from NodeConfig, changed by
// tweaks, with bootstrap-expect size, all joining n1's gossip address, and
// waits until WaitStable.
func StartCluster(tb testing.TB, size int, tweaks ...func(*cluster.Config)) []*Node {
	tb.Helper()
	return StartClusterWith(tb, size, httpapi.Config{}, tweaks...)
}

// StartClusterWith is StartCluster with every node's API configured by hc.
func StartClusterWith(tb testing.TB, size int, hc httpapi.Config, tweaks ...func(*cluster.Config)) []*Node {
	tb.Helper()
	return StartClusterRESP(tb, size, hc, nil, tweaks...)
}

// StartClusterRESP is StartClusterWith with every node also serving the
// Redis protocol, configured by rc, when rc is not nil.
func StartClusterRESP(tb testing.TB, size int, hc httpapi.Config, rc *respapi.Config, tweaks ...func(*cluster.Config)) []*Node {
	tb.Helper()
	dir := tb.TempDir()
	var nodes []*Node
	for i := 1; i <= size; i++ {
		cfg := NodeConfig(fmt.Sprintf("n%d", i), dir)
		cfg.BootstrapExpect = size
		if i > 1 {
			cfg.Join = []string{nodes[0].Node.GossipAddr()}
		}
		for _, f := range tweaks {
			f(&cfg)
		}
		nodes = append(nodes, StartRESP(tb, cfg, hc, rc))
	}
	// Stop all nodes at once at the end (registered last, so it runs first):
	// one by one, each would try to hand leadership to already-stopped peers.
	tb.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(n.Stop)
		}
		wg.Wait()
	})
	WaitStable(tb, nodes)
	return nodes
}

// WaitStable waits until the nodes agree on one leader with every node a
// voter (Poll.Converged over each node's own status, read in process, so
// it needs no token with ACLs on), the leader serves linearizable reads,
// and every node is ready and knows every member's HTTP address. It returns
// the leader.
func WaitStable(tb testing.TB, nodes []*Node) *Node {
	tb.Helper()
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.Node.ID()
	}
	var (
		l    *Node
		last Poll
		why  string
	)
	stable := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		last = Poll{IDs: ids, Statuses: make([]*api.Cluster, len(nodes)), Errs: make([]error, len(nodes))}
		for i, n := range nodes {
			last.Statuses[i] = wireStatus(n.Node.Status())
		}
		id, ok := last.Converged(len(nodes))
		if !ok {
			why = "no agreed leader"
			return false
		}
		l = nodes[indexOf(ids, id)]
		for i, st := range last.Statuses {
			if len(st.Members) != len(nodes) || slices.ContainsFunc(st.Members, func(m api.Member) bool { return m.HTTPAddr == "" }) {
				why = fmt.Sprintf("%s does not know every member's HTTP address", ids[i])
				return false
			}
			if ok, reason := nodes[i].Node.Ready(); !ok {
				why = fmt.Sprintf("%s is not ready: %s", ids[i], reason)
				return false
			}
		}
		if err := l.Node.ReadBarrier(ctx, cluster.Linearizable); err != nil {
			why = fmt.Sprintf("leader %s cannot serve linearizable reads: %v", id, err)
			return false
		}
		return true
	}
	if !eventually(20*time.Second, stable) {
		tb.Fatalf("timed out after 20s waiting for a stable cluster (%s):%s", why, last)
	}
	return l
}

// wireStatus is as much of GET /v1/cluster as the convergence check reads.
func wireStatus(st cluster.Status) *api.Cluster {
	out := &api.Cluster{NodeID: st.NodeID, State: st.State, Leader: st.LeaderID, Term: st.Term,
		CommitIndex: st.CommitIndex, AppliedIndex: st.AppliedIndex, Members: make([]api.Member, len(st.Members))}
	for i, m := range st.Members {
		out.Members[i] = api.Member{ID: m.ID, HTTPAddr: m.HTTPAddr, Suffrage: m.Suffrage, Status: m.GossipStatus, Leader: m.Leader}
	}
	return out
}

func indexOf(ids []string, id string) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

// WaitLeader waits until exactly one of the nodes believes it leads and
// returns it, without waiting for the others to agree (see WaitStable).
func WaitLeader(tb testing.TB, nodes []*Node) *Node {
	tb.Helper()
	var l *Node
	WaitFor(tb, 10*time.Second, "a single leader", func() bool { l = LeaderOf(nodes); return l != nil })
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
