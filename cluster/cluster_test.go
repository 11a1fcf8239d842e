package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/internal/harness"
)

func TestSingleNodeBootstrapsItself(t *testing.T) {
	n := startSolo(t).Node
	ctx := context.Background()
	for want := int64(1); want <= 3; want++ {
		m, err := applyNext(ctx, n, "c", 1, "")
		if err != nil || m.First != want {
			t.Fatalf("mint %d: %+v %v", want, m, err)
		}
	}
	if err := n.ReadBarrier(ctx, cluster.Linearizable); err != nil {
		t.Fatal(err)
	}
	c, idx, err := n.State().Counter("c")
	if err != nil || c.Value != 3 || idx < 3 {
		t.Fatalf("read %+v at %d: %v", c, idx, err)
	}
}

func TestInMemoryDevNode(t *testing.T) {
	n := harness.StartInMemWith(t, cluster.Config{NodeID: "dev"}, httpapi.Config{})
	if _, err := applyNext(context.Background(), n.Node, "c", 5, ""); err != nil {
		t.Fatal(err)
	}
}

func TestThreeNodesStartedTogetherFormOneCluster(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	// One cluster: every node follows the same leader in the same term
	// and lists the same three voters. Two clusters formed side by side
	// would each have a leader, a term of its own and fewer voters.
	var l *harness.Node
	harness.WaitFor(t, 10*time.Second, "every node in the leader's term", func() bool {
		l = harness.LeaderOf(nodes)
		if l == nil {
			return false
		}
		term := l.Node.RaftTerm()
		for _, n := range nodes {
			if id, _ := n.Node.LeaderView(); id != l.Node.ID() || n.Node.RaftTerm() != term {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		if ids := n.Node.ServerIDs(); fmt.Sprint(ids) != "[n1 n2 n3]" || n.Node.Voters() != 3 {
			t.Fatalf("%s's configuration: %v with %d voters, want n1 n2 n3 as voters", n.Node.ID(), ids, n.Node.Voters())
		}
		if st := n.Node.Status(); len(st.Members) != 3 {
			t.Fatalf("%s sees %d members: %+v", n.Node.ID(), len(st.Members), st.Members)
		}
	}
	if _, err := applyNext(context.Background(), l.Node, "c", 1, ""); err != nil {
		t.Fatal(err)
	}
}

func TestFollowerWriteReturnsLeaderAddress(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	l := harness.WaitStable(t, nodes)
	for _, n := range harness.FollowersOf(nodes, l) {
		_, err := applyNext(context.Background(), n.Node, "c", 1, "")
		var nl *cluster.NotLeaderError
		if !errors.As(err, &nl) {
			t.Fatalf("write on follower %s: %v", n.Node.ID(), err)
		}
		if nl.LeaderID != l.Node.ID() || nl.LeaderHTTP != l.Node.HTTPAddr() {
			t.Fatalf("follower %s names leader %s at %q, want %s at %q", n.Node.ID(), nl.LeaderID, nl.LeaderHTTP, l.Node.ID(), l.Node.HTTPAddr())
		}
		if err := n.Node.ReadBarrier(context.Background(), cluster.Linearizable); !errors.Is(err, cluster.ErrNotLeader) {
			t.Fatalf("linearizable read on follower: %v", err)
		}
		if err := n.Node.ReadBarrier(context.Background(), cluster.Stale); err != nil {
			t.Fatalf("stale read on follower: %v", err)
		}
	}
}

func TestLeaderShutdownNewLeaderContinuesWithoutDuplicates(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	seen := map[int64]bool{}
	var last int64
	record := func(v int64) {
		if seen[v] {
			t.Fatalf("ID %d minted twice", v)
		}
		if v <= last {
			t.Fatalf("ID %d after %d: not increasing", v, last)
		}
		seen[v], last = true, v
	}
	for i := 0; i < 20; i++ {
		record(mintOn(t, nodes, "ids", fmt.Sprintf("k%d", i)))
	}
	old := harness.WaitLeader(t, nodes)
	if err := old.Node.Shutdown(); err != nil {
		t.Fatal(err)
	}
	rest := harness.FollowersOf(nodes, old)
	if nl := harness.WaitLeader(t, rest); nl == old {
		t.Fatal("old leader still leads")
	}
	for i := 20; i < 40; i++ {
		record(mintOn(t, rest, "ids", fmt.Sprintf("k%d", i)))
	}
}

func TestRestartedNodeCatchesUp(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	l := harness.WaitLeader(t, nodes)
	cfg := stopFollower(t, nodes, l)
	for i := 0; i < 50; i++ {
		mintOn(t, nodes, "c", "")
	}
	restarted := start(t, cfg).Node
	if !restarted.HasRaftState() {
		t.Fatal("restarted node lost its raft state")
	}
	want := func() int64 {
		c, _, _ := harness.LeaderOf(nodes).Node.State().Counter("c")
		return c.Value
	}()
	harness.WaitFor(t, 10*time.Second, "restarted follower to catch up", func() bool {
		c, _, err := restarted.State().Counter("c")
		return err == nil && c.Value == want
	})
	if restarted.IsLeader() {
		return
	}
	// It is a working follower again: it redirects to the leader.
	if _, err := applyNext(context.Background(), restarted, "c", 1, ""); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("restarted follower: %v", err)
	}
}

func TestJoinAddsVoter(t *testing.T) {
	dir := t.TempDir()
	a := start(t, harness.NodeConfig("a", dir))
	harness.WaitLeader(t, []*harness.Node{a})
	first := a.Node
	cfg := harness.NodeConfig("b", dir)
	cfg.Join = []string{first.GossipAddr()}
	second := start(t, cfg).Node
	harness.WaitFor(t, 20*time.Second, "the leader to add the joining node as a voter", func() bool {
		return first.Voters() == 2 && second.Voters() == 2
	})
	if _, err := applyNext(context.Background(), first, "c", 1, ""); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 5*time.Second, "replication to the new voter", func() bool {
		c, _, _ := second.State().Counter("c")
		return c.Value == 1
	})
}

func TestIdempotentRetryAcrossLeaderChange(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	l := harness.WaitLeader(t, nodes)
	first, err := applyNext(context.Background(), l.Node, "c", 1, "retry-me")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Node.Shutdown(); err != nil {
		t.Fatal(err)
	}
	again := mintOn(t, harness.FollowersOf(nodes, l), "c", "retry-me")
	if again != first.First {
		t.Fatalf("retry after failover minted %d, first attempt got %d", again, first.First)
	}
}

func TestValidationErrorNeverReachesLog(t *testing.T) {
	n := startSolo(t).Node
	before := n.RaftLastIndex()
	_, err := n.Apply(context.Background(), fsm.Command{Payload: fsm.CounterNext{ID: "bad name", Count: 1}})
	if !errors.Is(err, fsm.ErrInvalidName) {
		t.Fatalf("got %v", err)
	}
	if n.RaftLastIndex() != before {
		t.Fatal("invalid command was appended")
	}
}

func TestExpiredContextNeverReachesLog(t *testing.T) {
	n := startSolo(t).Node
	before := n.RaftLastIndex()
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := n.Apply(ctx, fsm.Command{Payload: fsm.CounterNext{ID: "c", Count: 1}})
	if !errors.Is(err, cluster.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	if n.RaftLastIndex() != before {
		t.Fatal("a command whose caller had given up was appended")
	}
}
