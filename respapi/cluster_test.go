package respapi_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
	"github.com/countd/countd/respapi"
)

func followerOf(nodes []*harness.Node, leader *harness.Node) *harness.Node {
	for _, n := range nodes {
		if n != leader {
			return n
		}
	}
	return nil
}

// tryClient follows -TRY redirects as SummitDB's clients do: on "TRY
// host:port" it sends the command again there.
type tryClient struct {
	t       *testing.T
	clients map[string]*redis.Client
	addr    string
	hops    int
}

func (c *tryClient) do(ctx context.Context, args ...any) (any, error) {
	for range 5 {
		cl := c.clients[c.addr]
		if cl == nil {
			cl = plain(c.t, c.addr)
			c.clients[c.addr] = cl
		}
		v, err := cl.Do(ctx, args...).Result()
		if to, ok := strings.CutPrefix(errString(err), "TRY "); ok {
			c.addr = to
			c.hops++
			continue
		}
		return v, err
	}
	return nil, errors.New("too many TRY hops")
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestFollowerAnswersTry: a follower answers writes and linearizable
// reads with "-TRY <leader>", a client that follows it mints at the
// leader, READONLY reads the follower's own state, and RAFTLEADER and
// RAFTPEERS describe the cluster as SummitDB does.
func TestFollowerAnswersTry(t *testing.T) {
	nodes := harness.StartClusterRESP(t, 3, httpapi.Config{}, &respapi.Config{})
	leader := harness.WaitStable(t, nodes)
	f := followerOf(nodes, leader)
	ctx := ctxFor(t, 30*time.Second)
	rdb := plain(t, f.RESPAddr)

	for _, args := range [][]any{{"INCR", "k"}, {"SET", "k", "1"}, {"GET", "k"}, {"DEL", "k"}, {"EXISTS", "k"}} {
		if err := rdb.Do(ctx, args...).Err(); errString(err) != "TRY "+leader.RESPAddr {
			t.Errorf("%v on a follower: %v, want TRY %s", args, err, leader.RESPAddr)
		}
	}
	// Bad input is refused where it arrives, not redirected.
	if err := rdb.Do(ctx, "SET", "k", "x").Err(); !strings.HasPrefix(errString(err), "ERR value is not an integer") {
		t.Errorf("SET k x on a follower: %v", err)
	}
	if err := rdb.Do(ctx, "INCR", "bad/name").Err(); !strings.HasPrefix(errString(err), "ERR invalid_name") {
		t.Errorf("INCR bad/name on a follower: %v", err)
	}

	tc := &tryClient{t: t, clients: map[string]*redis.Client{}, addr: f.RESPAddr}
	for want := int64(1); want <= 3; want++ {
		v, err := tc.do(ctx, "INCR", "k")
		if err != nil || v != want {
			t.Fatalf("INCR through TRY: %v, %v; want %d", v, err, want)
		}
	}
	if tc.hops != 1 {
		t.Errorf("the TRY client hopped %d times, want once (then it stays on the leader)", tc.hops)
	}

	// READONLY: the follower answers GET from its own state, which
	// catches up with the leader's.
	if err := rdb.ReadOnly(ctx).Err(); err != nil {
		t.Fatalf("READONLY: %v", err)
	}
	harness.WaitFor(t, 10*time.Second, "the follower's stale GET to see 3", func() bool {
		v, err := rdb.Get(ctx, "k").Result()
		return err == nil && v == "3"
	})
	if err := rdb.Incr(ctx, "k").Err(); errString(err) != "TRY "+leader.RESPAddr {
		t.Errorf("INCR after READONLY on a follower: %v, want TRY (READONLY is for reads)", err)
	}
	if err := rdb.ReadWrite(ctx).Err(); err != nil {
		t.Fatalf("READWRITE: %v", err)
	}
	if err := rdb.Get(ctx, "k").Err(); errString(err) != "TRY "+leader.RESPAddr {
		t.Errorf("GET after READWRITE on a follower: %v, want TRY", err)
	}

	if v, err := rdb.Do(ctx, "RAFTLEADER").Result(); err != nil || v != leader.RESPAddr {
		t.Errorf("RAFTLEADER: %v, %v; want %s", v, err, leader.RESPAddr)
	}
	v, err := rdb.Do(ctx, "RAFTPEERS").Slice()
	if err != nil || len(v) != 6 {
		t.Fatalf("RAFTPEERS: %v, %v; want 3 address/role pairs", v, err)
	}
	var leaders []string
	for i := 0; i < len(v); i += 2 {
		if v[i+1] == "Leader" {
			leaders = append(leaders, v[i].(string))
		}
	}
	if !slices.Equal(leaders, []string{leader.RESPAddr}) {
		t.Errorf("RAFTPEERS: %v; want %s alone as Leader", v, leader.RESPAddr)
	}
}

// TestForwardWrites: with ForwardWrites a follower answers with the
// leader's own answer.
func TestForwardWrites(t *testing.T) {
	nodes := harness.StartClusterRESP(t, 3, httpapi.Config{ForwardWrites: true}, &respapi.Config{ForwardWrites: true})
	leader := harness.WaitStable(t, nodes)
	f := followerOf(nodes, leader)
	ctx := ctxFor(t, 30*time.Second)
	rdb := plain(t, f.RESPAddr)
	for want := int64(1); want <= 3; want++ {
		if v, err := rdb.Incr(ctx, "fwd").Result(); err != nil || v != want {
			t.Fatalf("INCR on a forwarding follower: %d, %v; want %d", v, err, want)
		}
	}
	if v, err := rdb.Get(ctx, "fwd").Result(); err != nil || v != "3" {
		t.Errorf("GET on a forwarding follower: %q, %v", v, err)
	}
	if err := rdb.Do(ctx, "INCR", "q/bad").Err(); !strings.HasPrefix(errString(err), "ERR invalid_name") {
		t.Errorf("bad input on a forwarding follower: %v", err)
	}
}

// TestClusterClientFollowsLeader: with RedirectMoved, go-redis's
// ClusterClient learns the leader from CLUSTER SLOTS, and after a
// leadership transfer follows MOVED to the new leader; no value is
// minted twice.
func TestClusterClientFollowsLeader(t *testing.T) {
	nodes := harness.StartClusterRESP(t, 3, httpapi.Config{}, &respapi.Config{Redirect: respapi.RedirectMoved})
	leader := harness.WaitStable(t, nodes)
	f := followerOf(nodes, leader)
	ctx := ctxFor(t, 60*time.Second)

	if err := plain(t, f.RESPAddr).Incr(ctx, "somekey").Err(); errString(err) != "MOVED 11058 "+leader.RESPAddr {
		t.Errorf("INCR on a follower in moved mode: %v, want MOVED 11058 %s", err, leader.RESPAddr)
	}
	//lint:ignore SA1019 CLUSTER SLOTS is what go-redis's ClusterClient itself reads
	slots, err := plain(t, f.RESPAddr).ClusterSlots(ctx).Result()
	if err != nil || len(slots) != 1 || slots[0].Start != 0 || slots[0].End != 16383 || len(slots[0].Nodes) != 3 || slots[0].Nodes[0].Addr != leader.RESPAddr {
		t.Fatalf("CLUSTER SLOTS: %+v, %v; want the leader %s owning 0-16383 with 2 replicas", slots, err, leader.RESPAddr)
	}
	shards, err := plain(t, f.RESPAddr).ClusterShards(ctx).Result()
	if err != nil || len(shards) != 1 || len(shards[0].Nodes) != 3 || shards[0].Nodes[0].Role != "master" {
		t.Errorf("CLUSTER SHARDS: %+v, %v", shards, err)
	}
	if s, err := plain(t, f.RESPAddr).ClusterNodes(ctx).Result(); err != nil || strings.Count(s, "\n") != 3 || !strings.Contains(s, "myself,slave") {
		t.Errorf("CLUSTER NODES: %q, %v", s, err)
	}

	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = n.RESPAddr
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2, DisableIdentity: true, MaxRedirects: 8})
	t.Cleanup(func() { cc.Close() })
	seen := map[int64]bool{}
	last := int64(0)
	mint := func(n int) {
		t.Helper()
		for range n {
			v, err := cc.Incr(ctx, "ids").Result()
			if err != nil {
				t.Fatalf("INCR through the cluster client: %v", err)
			}
			if seen[v] || v <= last {
				t.Fatalf("INCR answered %d after %d", v, last)
			}
			seen[v], last = true, v
		}
	}
	mint(20)
	newID, err := leader.Node.TransferLeadership(ctx, f.Node.ID())
	if err != nil {
		t.Fatalf("transfer leadership: %v", err)
	}
	next := harness.WaitStable(t, nodes)
	if next.Node.ID() != newID {
		t.Fatalf("the leader is %s after a transfer to %s", next.Node.ID(), newID)
	}
	mint(20)
	if len(seen) != 40 {
		t.Errorf("%d distinct values, want 40", len(seen))
	}
}
