package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/countd/countd/fsm"
)

// suffrage is id's suffrage in n's latest configuration: "voter",
// "nonvoter", or "" when absent.
func suffrage(n *Node, id string) string {
	s, ok := n.server(id)
	switch {
	case !ok:
		return ""
	case s.Suffrage == raft.Voter:
		return "voter"
	default:
		return "nonvoter"
	}
}

// serverIDs lists the servers in n's latest configuration.
func serverIDs(n *Node) []string {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var ids []string
	for _, s := range f.Configuration().Servers {
		ids = append(ids, string(s.ID))
	}
	return ids
}

// joinNode starts a new node that joins the cluster through l's gossip.
func joinNode(t *testing.T, l *Node, id string, tweaks ...func(*Config)) *Node {
	t.Helper()
	cfg := testNodeConfig(t, id, t.TempDir())
	cfg.Join = []string{l.GossipAddr()}
	for _, f := range tweaks {
		f(&cfg)
	}
	return mustStart(t, cfg)
}

func fastMembership(c *Config) {
	c.PromoteAfter = 300 * time.Millisecond
	c.DeadNodeGrace = 500 * time.Millisecond
}

func codeOf(err error) fsm.Code {
	var fe *fsm.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

func TestNewMemberJoinsAsNonvoterAndIsPromotedOnceCaughtUp(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.PromoteAfter = time.Second })
	for i := 0; i < 30; i++ {
		mintOn(t, nodes, "c", "")
	}
	l := waitLeader(t, nodes)
	n4 := joinNode(t, l, "n4", func(c *Config) { c.PromoteAfter = time.Second })
	var seen []string
	waitFor(t, 20*time.Second, "n4 to become a voter", func() bool {
		s := suffrage(l, "n4")
		if len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
		return s == "voter"
	})
	if !containsStr(seen, "nonvoter") {
		t.Fatalf("n4's suffrage went %q: it never was a non-voter", seen)
	}
	c, _, err := n4.State().Counter("c")
	if err != nil || c.Value < 30 {
		t.Fatalf("n4 was promoted before catching up: counter %+v, %v", c, err)
	}
	// Probe acks bring every member's progress to the leader within a
	// probe round.
	var bad string
	waitFor(t, 10*time.Second, "the leader to see four healthy voters", func() bool {
		bad = ""
		st := l.Status()
		for _, m := range st.Members {
			if m.Suffrage != "voter" || m.GossipStatus != statusAlive || m.Health != "healthy" || m.LastContact < 0 {
				bad += fmt.Sprintf("%+v ", m)
			}
		}
		return len(st.Members) == 4 && bad == ""
	})
}

func containsStr(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

func TestLeaveOfFollowerThenLeader(t *testing.T) {
	nodes := startCluster(t, 3)
	l := waitLeader(t, nodes)
	var follower *Node
	for _, n := range nodes {
		if n != l {
			follower = n
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Removed may be false: raft can stop replicating to a removed server
	// before the entry removing it arrives. The leader's configuration is
	// what counts.
	res, err := follower.Leave(ctx)
	if err != nil || res.TransferredLeadership {
		t.Fatalf("follower leave: %+v, %v", res, err)
	}
	if _, err := follower.Leave(ctx); codeOf(err) != fsm.CodeConflict {
		t.Fatalf("second leave: %v, want a conflict", err)
	}
	if ready, reason := follower.Ready(); ready || reason == "" {
		t.Fatalf("a leaving node reports ready (%v, %q)", ready, reason)
	}
	_ = follower.Shutdown()
	waitFor(t, 10*time.Second, "the leader to remove the follower that left", func() bool {
		ids := serverIDs(l)
		return len(ids) == 2 && !containsStr(ids, follower.ID())
	})
	var rest []*Node
	for _, n := range nodes {
		if n != follower {
			rest = append(rest, n)
		}
	}
	mintOn(t, rest, "c", "")

	res, err = l.Leave(ctx)
	if err != nil || !res.TransferredLeadership {
		t.Fatalf("leader leave: %+v, %v", res, err)
	}
	_ = l.Shutdown()
	var last *Node
	for _, n := range rest {
		if n != l {
			last = n
		}
	}
	waitFor(t, 10*time.Second, "the last node to lead alone", func() bool {
		ids := serverIDs(last)
		return last.IsLeader() && len(ids) == 1 && ids[0] == last.ID()
	})
	if v := mintOn(t, []*Node{last}, "c", ""); v != 2 {
		t.Fatalf("minted %d after both leaves, want 2", v)
	}
	// The last voter stays in its configuration when it leaves: removing
	// it would leave nobody able to elect a leader again.
	res, err = last.Leave(ctx)
	if err != nil || res.Removed {
		t.Fatalf("last voter leave: %+v, %v", res, err)
	}
}

func TestDeadMembersRemovedAfterGraceNeverBelowBootstrapExpect(t *testing.T) {
	nodes := startCluster(t, 3, fastMembership)
	l := waitLeader(t, nodes)
	nodes = append(nodes, joinNode(t, l, "n4", fastMembership), joinNode(t, l, "n5", fastMembership))
	waitFor(t, 20*time.Second, "five voters", func() bool {
		l = leaderOf(nodes)
		return l != nil && suffrage(l, "n4") == "voter" && suffrage(l, "n5") == "voter"
	})
	stop := func(id string) (alive []*Node) {
		for _, n := range nodes {
			if n.ID() == id {
				_ = n.Shutdown()
			} else if !n.isShutdown.Load() {
				alive = append(alive, n)
			}
		}
		return alive
	}
	// Two of five die: each is removed once dead for the grace period.
	for _, id := range []string{"n5", "n4"} {
		alive := stop(id)
		stoppedAt := time.Now()
		waitFor(t, 20*time.Second, id+" to be removed", func() bool {
			l := leaderOf(alive)
			return l != nil && !l.inConfiguration(id)
		})
		if took := time.Since(stoppedAt); took < 500*time.Millisecond {
			t.Fatalf("%s removed %v after it stopped, before the grace period", id, took)
		}
	}
	// A third death would leave fewer voters than bootstrap-expect: the
	// member stays in the configuration however long it is dead.
	var victim string
	for _, n := range nodes[:3] {
		if !n.IsLeader() {
			victim = n.ID()
			break
		}
	}
	alive := stop(victim)
	waitFor(t, 20*time.Second, victim+" to be dead in gossip for 3 grace periods", func() bool {
		l := leaderOf(alive)
		if l == nil {
			return false
		}
		m, ok := l.gossip.lookup(victim)
		return ok && m.status == statusDead && time.Since(m.since) > 3*500*time.Millisecond+2*autopilotInterval
	})
	if l := leaderOf(alive); l == nil || !l.inConfiguration(victim) {
		t.Fatalf("%s was removed, leaving fewer voters than bootstrap-expect", victim)
	}
	mintOn(t, alive, "c", "")
}

func TestRemoveMember(t *testing.T) {
	nodes := startCluster(t, 3)
	l := waitLeader(t, nodes)
	cfg := stopFollower(t, nodes, l)
	var alive *Node
	for _, n := range nodes {
		if n != l && !n.isShutdown.Load() {
			alive = n
		}
	}
	if err := alive.RemoveMember(cfg.NodeID); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("remove on a follower: %v, want not leader", err)
	}
	for id, want := range map[string]fsm.Code{
		alive.ID(): fsm.CodeConflict,    // alive: it should leave itself
		l.ID():     fsm.CodeConflict,    // the leader
		"nobody":   fsm.CodeNotFound,    // never a member
		"a b":      fsm.CodeInvalidName, // not a name
	} {
		if err := l.RemoveMember(id); codeOf(err) != want {
			t.Errorf("remove %q: %v, want %s", id, err, want)
		}
	}
	waitFor(t, 10*time.Second, "gossip to report the stopped follower dead", func() bool {
		m, ok := l.gossip.lookup(cfg.NodeID)
		return ok && m.status == statusDead
	})
	if err := l.RemoveMember(cfg.NodeID); err != nil {
		t.Fatalf("remove dead member: %v", err)
	}
	if ids := serverIDs(l); len(ids) != 2 || containsStr(ids, cfg.NodeID) {
		t.Fatalf("configuration after removal: %v", ids)
	}
	// The removed node comes back with its data: it is added again as a
	// new member.
	back := mustStart(t, cfg)
	waitFor(t, 20*time.Second, "the removed node to be added back", func() bool {
		return suffrage(l, back.ID()) == "voter"
	})
}

func TestTransferLeadership(t *testing.T) {
	nodes := startCluster(t, 3)
	old := waitLeader(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var follower *Node
	for _, n := range nodes {
		if n != old {
			follower = n
		}
	}
	if _, err := follower.TransferLeadership(ctx, ""); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("transfer on a follower: %v", err)
	}
	if _, err := old.TransferLeadership(ctx, "nobody"); codeOf(err) != fsm.CodeNotFound {
		t.Fatalf("transfer to a non-member: %v", err)
	}
	id, err := old.TransferLeadership(ctx, "")
	if err != nil || id == old.ID() || id == "" {
		t.Fatalf("transfer: %q, %v", id, err)
	}
	var now *Node
	waitFor(t, 10*time.Second, "the new leader to take over", func() bool { now = leaderOf(nodes); return now != nil && now.ID() == id })
	id, err = now.TransferLeadership(ctx, old.ID())
	if err != nil || id != old.ID() {
		t.Fatalf("transfer back to %s: %q, %v", old.ID(), id, err)
	}
	waitFor(t, 10*time.Second, old.ID()+" to lead again", func() bool { return leaderOf(nodes) == old })
	mintOn(t, nodes, "c", "")
}

func TestWipedMemberRejoinsAndCatchesUp(t *testing.T) {
	nodes := startCluster(t, 3, fastMembership)
	l := waitLeader(t, nodes)
	for i := 0; i < 20; i++ {
		mintOn(t, nodes, "c", fmt.Sprint(i))
	}
	cfg := stopFollower(t, nodes, l)
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	fresh := mustStart(t, cfg)
	if fresh.hasRaftState() {
		t.Fatal("the wiped node still has raft state")
	}
	waitFor(t, 20*time.Second, "the wiped node to catch up as a voter", func() bool {
		c, _, err := fresh.State().Counter("c")
		return err == nil && c.Value == 20 && suffrage(leaderOf(nodes), cfg.NodeID) == "voter"
	})
}
