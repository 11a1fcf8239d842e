package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/internal/harness"
)

// joinNode starts a new node that joins the cluster through l's gossip.
func joinNode(t *testing.T, l *harness.Node, id string, tweaks ...func(*cluster.Config)) *harness.Node {
	t.Helper()
	cfg := harness.NodeConfig(id, t.TempDir())
	cfg.Join = []string{l.Node.GossipAddr()}
	for _, f := range tweaks {
		f(&cfg)
	}
	return start(t, cfg)
}

// fastGrace is the dead-node grace period of fastMembership.
const fastGrace = 500 * time.Millisecond

func fastMembership(c *cluster.Config) {
	c.PromoteAfter = 300 * time.Millisecond
	c.DeadNodeGrace = fastGrace
}

func TestNewMemberJoinsAsNonvoterAndIsPromotedOnceCaughtUp(t *testing.T) {
	promoteAfter := func(c *cluster.Config) { c.PromoteAfter = time.Second }
	nodes := harness.StartCluster(t, 3, promoteAfter)
	for i := 0; i < 30; i++ {
		mintOn(t, nodes, "c", "")
	}
	l := harness.WaitLeader(t, nodes).Node
	n4 := joinNode(t, harness.LeaderOf(nodes), "n4", promoteAfter).Node
	var seen []string
	harness.WaitFor(t, 20*time.Second, "n4 to become a voter", func() bool {
		s := l.Suffrage("n4")
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return s == "voter"
	})
	if !slices.Contains(seen, "nonvoter") {
		t.Fatalf("n4's suffrage went %q: it never was a non-voter", seen)
	}
	c, _, err := n4.State().Counter("c")
	if err != nil || c.Value < 30 {
		t.Fatalf("n4 was promoted before catching up: counter %+v, %v", c, err)
	}
	// Probe acks bring every member's progress to the leader within a
	// probe round.
	var bad string
	harness.WaitFor(t, 10*time.Second, "the leader to see four healthy voters", func() bool {
		bad = ""
		st := l.Status()
		for _, m := range st.Members {
			if m.Suffrage != "voter" || m.GossipStatus != cluster.StatusAlive || m.Health != "healthy" || m.LastContact < 0 {
				bad += fmt.Sprintf("%+v ", m)
			}
		}
		return len(st.Members) == 4 && bad == ""
	})
}

func TestLeaveOfFollowerThenLeader(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	lh := harness.WaitLeader(t, nodes)
	l := lh.Node
	follower := harness.FollowersOf(nodes, lh)[0].Node
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The leader confirms the removal with a message of its own: raft
	// stops replicating to a removed server, which may never see the entry
	// that removes it.
	res, err := follower.Leave(ctx)
	if err != nil || res.TransferredLeadership || !res.Removed || !res.Confirmed {
		t.Fatalf("follower leave: %+v, %v; want removed, confirmed by the leader", res, err)
	}
	if _, err := follower.Leave(ctx); codeOf(err) != fsm.CodeConflict {
		t.Fatalf("second leave: %v, want a conflict", err)
	}
	if ready, reason := follower.Ready(); ready || reason == "" {
		t.Fatalf("a leaving node reports ready (%v, %q)", ready, reason)
	}
	_ = follower.Shutdown()
	rest := alive(nodes)
	harness.WaitFor(t, 10*time.Second, "the leader's configuration to lack the follower that left", func() bool {
		l := harness.LeaderOf(rest)
		ids := []string{}
		if l != nil {
			ids = l.Node.ServerIDs()
		}
		return len(ids) == 2 && !slices.Contains(ids, follower.ID())
	})
	mintOn(t, rest, "c", "")

	res, err = l.Leave(ctx)
	if err != nil || !res.TransferredLeadership || !res.Removed || !res.Confirmed {
		t.Fatalf("leader leave: %+v, %v; want leadership handed over, removed, confirmed by the new leader", res, err)
	}
	_ = l.Shutdown()
	last := alive(rest)[0].Node
	harness.WaitFor(t, 10*time.Second, "the last node to lead alone", func() bool {
		ids := last.ServerIDs()
		return last.IsLeader() && len(ids) == 1 && ids[0] == last.ID()
	})
	if v := mintOn(t, alive(rest), "c", ""); v != 2 {
		t.Fatalf("minted %d after both leaves, want 2", v)
	}
	// The last voter stays in its configuration when it leaves: removing
	// it would leave nobody able to elect a leader again.
	res, err = last.Leave(ctx)
	if err != nil || res.Removed || res.Confirmed {
		t.Fatalf("last voter leave: %+v, %v", res, err)
	}
}

// removedAfterDeath waits until the leader has removed id, which has
// stopped, and returns an upper bound of how long after gossip declared it
// dead that happened: from the moment the leader's gossip marked it dead
// (the start of the grace period) to the first look that found it out of
// the configuration.
func removedAfterDeath(t *testing.T, nodes []*harness.Node, id string) time.Duration {
	t.Helper()
	var took time.Duration
	harness.WaitFor(t, 20*time.Second, id+" to be removed", func() bool {
		l := harness.LeaderOf(alive(nodes))
		if l == nil || l.Node.InConfiguration(id) {
			return false
		}
		status, since, ok := l.Node.GossipMember(id)
		if !ok || status != cluster.StatusDead {
			t.Fatalf("%s removed while the leader's gossip has it %q", id, status)
		}
		took = time.Since(since)
		return true
	})
	return took
}

func TestDeadMembersRemovedAfterGraceNeverBelowBootstrapExpect(t *testing.T) {
	nodes := harness.StartCluster(t, 3, fastMembership)
	l := harness.WaitLeader(t, nodes)
	nodes = append(nodes, joinNode(t, l, "n4", fastMembership), joinNode(t, l, "n5", fastMembership))
	harness.WaitFor(t, 20*time.Second, "five voters", func() bool {
		l := harness.LeaderOf(nodes)
		return l != nil && l.Node.Suffrage("n4") == "voter" && l.Node.Suffrage("n5") == "voter"
	})
	// Two of five die: each is removed once dead for the grace period,
	// counted from when gossip declared it dead (which takes seconds after
	// the stop: measuring from the stop would hide a missing grace).
	for _, n := range victims(nodes, 2) {
		n.Stop()
		took := removedAfterDeath(t, nodes, n.Node.ID())
		if took < fastGrace {
			t.Fatalf("%s removed at most %v after gossip declared it dead, within the %v grace period", n.Node.ID(), took, fastGrace)
		}
		t.Logf("%s removed at most %v after gossip declared it dead (grace %v)", n.Node.ID(), took.Round(time.Millisecond), fastGrace)
	}
	// A third death would leave fewer voters than bootstrap-expect: the
	// member stays in the configuration however long it is dead.
	victim := victims(nodes, 1)[0]
	victim.Stop()
	id := victim.Node.ID()
	harness.WaitFor(t, 20*time.Second, id+" to be dead in gossip for 3 grace periods", func() bool {
		l := harness.LeaderOf(alive(nodes))
		if l == nil {
			return false
		}
		status, since, ok := l.Node.GossipMember(id)
		return ok && status == cluster.StatusDead && time.Since(since) > 3*fastGrace+2*cluster.AutopilotInterval
	})
	if l := harness.LeaderOf(alive(nodes)); l == nil || !l.Node.InConfiguration(id) {
		t.Fatalf("%s was removed, leaving fewer voters than bootstrap-expect", id)
	}
	mintOn(t, alive(nodes), "c", "")
}

// victims picks count running followers, the last started first.
func victims(nodes []*harness.Node, count int) []*harness.Node {
	var out []*harness.Node
	for _, n := range slices.Backward(nodes) {
		if len(out) < count && !n.Node.IsShutdown() && !n.Node.IsLeader() {
			out = append(out, n)
		}
	}
	return out
}

func TestRemoveMember(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	lh := harness.WaitLeader(t, nodes)
	l := lh.Node
	cfg := stopFollower(t, nodes, lh)
	other := harness.FollowersOf(alive(nodes), lh)[0].Node
	if err := other.RemoveMember(cfg.NodeID); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("remove on a follower: %v, want not leader", err)
	}
	for id, want := range map[string]fsm.Code{
		other.ID(): fsm.CodeConflict,    // alive: it should leave itself
		l.ID():     fsm.CodeConflict,    // the leader
		"nobody":   fsm.CodeNotFound,    // never a member
		"a b":      fsm.CodeInvalidName, // not a name
	} {
		if err := l.RemoveMember(id); codeOf(err) != want {
			t.Errorf("remove %q: %v, want %s", id, err, want)
		}
	}
	harness.WaitFor(t, 10*time.Second, "gossip to report the stopped follower dead", func() bool {
		status, _, ok := l.GossipMember(cfg.NodeID)
		return ok && status == cluster.StatusDead
	})
	if err := l.RemoveMember(cfg.NodeID); err != nil {
		t.Fatalf("remove dead member: %v", err)
	}
	if ids := l.ServerIDs(); len(ids) != 2 || slices.Contains(ids, cfg.NodeID) {
		t.Fatalf("configuration after removal: %v", ids)
	}
	// The removed node comes back with its data: it is added again as a
	// new member.
	back := start(t, cfg).Node
	harness.WaitFor(t, 20*time.Second, "the removed node to be added back", func() bool {
		return l.Suffrage(back.ID()) == "voter"
	})
}

func TestTransferLeadership(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	oldh := harness.WaitLeader(t, nodes)
	old := oldh.Node
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	follower := harness.FollowersOf(nodes, oldh)[0].Node
	if _, err := follower.TransferLeadership(ctx, ""); !errors.Is(err, cluster.ErrNotLeader) {
		t.Fatalf("transfer on a follower: %v", err)
	}
	if _, err := old.TransferLeadership(ctx, "nobody"); codeOf(err) != fsm.CodeNotFound {
		t.Fatalf("transfer to a non-member: %v", err)
	}
	id, err := old.TransferLeadership(ctx, "")
	if err != nil || id == old.ID() || id == "" {
		t.Fatalf("transfer: %q, %v", id, err)
	}
	var now *harness.Node
	harness.WaitFor(t, 10*time.Second, "the new leader to take over", func() bool {
		now = harness.LeaderOf(nodes)
		return now != nil && now.Node.ID() == id
	})
	id, err = now.Node.TransferLeadership(ctx, old.ID())
	if err != nil || id != old.ID() {
		t.Fatalf("transfer back to %s: %q, %v", old.ID(), id, err)
	}
	harness.WaitFor(t, 10*time.Second, old.ID()+" to lead again", func() bool { return harness.LeaderOf(nodes) == oldh })
	mintOn(t, nodes, "c", "")
}

func TestWipedMemberRejoinsAndCatchesUp(t *testing.T) {
	nodes := harness.StartCluster(t, 3, fastMembership)
	l := harness.WaitLeader(t, nodes)
	for i := 0; i < 20; i++ {
		mintOn(t, nodes, "c", fmt.Sprint(i))
	}
	cfg := stopFollower(t, nodes, l)
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	fresh := start(t, cfg)
	if fresh.Node.HasRaftState() {
		t.Fatal("the wiped node still has raft state")
	}
	nodes = append(alive(nodes), fresh)
	harness.WaitFor(t, 20*time.Second, "the wiped node to catch up as a voter", func() bool {
		c, _, err := fresh.Node.State().Counter("c")
		l := harness.LeaderOf(nodes)
		return err == nil && c.Value == 20 && l != nil && l.Node.Suffrage(cfg.NodeID) == "voter"
	})
}
