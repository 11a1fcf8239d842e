package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/countd/countd/fsm"
)

func TestSingleNodeBootstrapsItself(t *testing.T) {
	cfg := testNodeConfig(t, "solo", t.TempDir())
	n := mustStart(t, cfg)
	waitLeader(t, []*Node{n})
	ctx := context.Background()
	for want := int64(1); want <= 3; want++ {
		m, err := applyNext(ctx, n, "c", 1, "")
		if err != nil || m.First != want {
			t.Fatalf("mint %d: %+v %v", want, m, err)
		}
	}
	if err := n.ReadBarrier(ctx, Linearizable); err != nil {
		t.Fatal(err)
	}
	c, idx, err := n.State().Counter("c")
	if err != nil || c.Value != 3 || idx < 3 {
		t.Fatalf("read %+v at %d: %v", c, idx, err)
	}
}

func TestInMemoryDevNode(t *testing.T) {
	n := mustStart(t, Config{NodeID: "dev", InMemory: true, HTTPAddr: "127.0.0.1:8080", Logger: testLogger(t, "dev")})
	waitLeader(t, []*Node{n})
	if _, err := applyNext(context.Background(), n, "c", 5, ""); err != nil {
		t.Fatal(err)
	}
}

func TestThreeNodesStartedTogetherFormOneCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	l := waitLeader(t, nodes)
	terms := map[uint64]int{}
	for _, n := range nodes {
		terms[n.raft.CurrentTerm()]++
		st := n.Status()
		if len(st.Members) != 3 {
			t.Fatalf("%s sees %d members: %+v", n.ID(), len(st.Members), st.Members)
		}
	}
	if _, err := applyNext(context.Background(), l, "c", 1, ""); err != nil {
		t.Fatal(err)
	}
}

func TestFollowerWriteReturnsLeaderAddress(t *testing.T) {
	nodes := startCluster(t, 3)
	l := waitLeader(t, nodes)
	for _, n := range nodes {
		if n == l {
			continue
		}
		_, err := applyNext(context.Background(), n, "c", 1, "")
		var nl *NotLeaderError
		if !errors.As(err, &nl) {
			t.Fatalf("write on follower %s: %v", n.ID(), err)
		}
		if nl.LeaderID != l.ID() || nl.LeaderHTTP != l.HTTPAddr() {
			t.Fatalf("follower %s names leader %s at %q, want %s at %q", n.ID(), nl.LeaderID, nl.LeaderHTTP, l.ID(), l.HTTPAddr())
		}
		if err := n.ReadBarrier(context.Background(), Linearizable); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("linearizable read on follower: %v", err)
		}
		if err := n.ReadBarrier(context.Background(), Stale); err != nil {
			t.Fatalf("stale read on follower: %v", err)
		}
	}
}

func TestLeaderShutdownNewLeaderContinuesWithoutDuplicates(t *testing.T) {
	nodes := startCluster(t, 3)
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
	old := waitLeader(t, nodes)
	if err := old.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var rest []*Node
	for _, n := range nodes {
		if n != old {
			rest = append(rest, n)
		}
	}
	nl := waitLeader(t, rest)
	if nl == old {
		t.Fatal("old leader still leads")
	}
	for i := 20; i < 40; i++ {
		record(mintOn(t, rest, "ids", fmt.Sprintf("k%d", i)))
	}
}

func TestRestartedNodeCatchesUp(t *testing.T) {
	nodes := startCluster(t, 3)
	l := waitLeader(t, nodes)
	cfg := stopFollower(t, nodes, l)
	for i := 0; i < 50; i++ {
		mintOn(t, nodes, "c", "")
	}
	restarted := mustStart(t, cfg)
	if !restarted.hasRaftState() {
		t.Fatal("restarted node lost its raft state")
	}
	want := func() int64 {
		c, _, _ := leaderOf(nodes).State().Counter("c")
		return c.Value
	}()
	waitFor(t, 10*time.Second, "restarted follower to catch up", func() bool {
		c, _, err := restarted.State().Counter("c")
		return err == nil && c.Value == want
	})
	if restarted.IsLeader() {
		return
	}
	// It is a working follower again: it redirects to the leader.
	if _, err := applyNext(context.Background(), restarted, "c", 1, ""); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("restarted follower: %v", err)
	}
}

func TestJoinAddsVoter(t *testing.T) {
	dir := t.TempDir()
	first := mustStart(t, testNodeConfig(t, "a", dir))
	waitLeader(t, []*Node{first})
	cfg := testNodeConfig(t, "b", dir)
	cfg.Join = []string{first.GossipAddr()}
	second := mustStart(t, cfg)
	waitFor(t, 10*time.Second, "the leader to add the joining node", func() bool {
		return voters(t, first) == 2 && voters(t, second) == 2
	})
	if _, err := applyNext(context.Background(), first, "c", 1, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "replication to the new voter", func() bool {
		c, _, _ := second.State().Counter("c")
		return c.Value == 1
	})
}

func TestIdempotentRetryAcrossLeaderChange(t *testing.T) {
	nodes := startCluster(t, 3)
	l := waitLeader(t, nodes)
	first, err := applyNext(context.Background(), l, "c", 1, "retry-me")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Shutdown(); err != nil {
		t.Fatal(err)
	}
	var rest []*Node
	for _, n := range nodes {
		if n != l {
			rest = append(rest, n)
		}
	}
	again := mintOn(t, rest, "c", "retry-me")
	if again != first.First {
		t.Fatalf("retry after failover minted %d, first attempt got %d", again, first.First)
	}
}

func TestValidationErrorNeverReachesLog(t *testing.T) {
	n := mustStart(t, testNodeConfig(t, "solo", t.TempDir()))
	waitLeader(t, []*Node{n})
	before := n.raft.LastIndex()
	_, err := n.Apply(context.Background(), fsm.Command{Payload: fsm.CounterNext{ID: "bad name", Count: 1}})
	if !errors.Is(err, fsm.ErrInvalidName) {
		t.Fatalf("got %v", err)
	}
	if n.raft.LastIndex() != before {
		t.Fatal("invalid command was appended")
	}
}

func TestExpiredContextNeverReachesLog(t *testing.T) {
	n := mustStart(t, testNodeConfig(t, "solo", t.TempDir()))
	waitLeader(t, []*Node{n})
	before := n.raft.LastIndex()
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := n.Apply(ctx, fsm.Command{Payload: fsm.CounterNext{ID: "c", Count: 1}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	if n.raft.LastIndex() != before {
		t.Fatal("a command whose caller had given up was appended")
	}
}
