package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/api"
)

// membershipFlags make membership changes quick enough for a test: a new
// member is promoted after 1s of keeping up, a dead one removed after 2s.
var membershipFlags = []string{"-promote-after", "1s", "-dead-node-grace", "2s"}

// addNode prepares one more node that joins the running cluster through
// every existing node's gossip address (no -bootstrap-expect).
func (c *cluster) addNode(flags ...string) *node {
	c.t.Helper()
	id := fmt.Sprintf("n%d", len(c.nodes)+1)
	n := &node{
		id:         id,
		httpAddr:   loopback(c.t),
		raftAddr:   loopback(c.t),
		gossipAddr: loopback(c.t),
		dataDir:    filepath.Join(c.dir, id, "data"),
		logPath:    filepath.Join(c.dir, id+".log"),
		flags:      flags,
	}
	for _, o := range c.nodes {
		n.join = append(n.join, o.gossipAddr)
	}
	c.nodes = append(c.nodes, n)
	return n
}

// countctlOn runs countctl against exactly the given node and returns its
// stdout; it fails the test unless countctl exits 0.
func countctlOn(t *testing.T, n *node, args ...string) string {
	t.Helper()
	cmd := exec.Command(countctlBin, append([]string{"-a", n.url()}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("countctl %s on %s: %v; stderr: %s", strings.Join(args, " "), n.id, err, stderr.String())
	}
	return string(out)
}

// waitExit waits for n's process to exit and returns its exit code.
func waitExit(t *testing.T, n *node, timeout time.Duration) int {
	t.Helper()
	cmd, done := n.proc()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running %v after leaving", n.id, timeout)
		return -1
	}
}

// member finds id in a status, or reports it absent.
func member(st *api.Cluster, id string) (api.Member, bool) {
	i := slices.IndexFunc(st.Members, func(m api.Member) bool { return m.ID == id })
	if i < 0 {
		return api.Member{}, false
	}
	return st.Members[i], true
}

// leave makes n leave with `countctl cluster leave` and checks that the
// process exits 0 and that n says it was removed.
func leave(t *testing.T, n *node) {
	t.Helper()
	out := countctlOn(t, n, "-o", "text", "cluster", "leave")
	// "not confirmed" is allowed: raft may stop replicating to a removed
	// server before the entry removing it arrives. The callers check the
	// remaining nodes' configuration instead.
	if !strings.Contains(out, n.id+" left the cluster") {
		t.Errorf("countctl cluster leave on %s printed %q", n.id, out)
	}
	if code := waitExit(t, n, 20*time.Second); code != 0 {
		t.Errorf("%s exited %d after leaving, want 0", n.id, code)
	}
	t.Logf("%s: %s", n.id, strings.TrimSpace(out))
}

// alive is the nodes whose processes are running.
func (c *cluster) alive() []*node {
	var out []*node
	for _, n := range c.nodes {
		if _, done := n.proc(); done != nil && !closed(done) {
			out = append(out, n)
		}
	}
	return out
}

// TestLeaveOfFollowerThenLeaderUnderMinting: `countctl cluster leave` on a
// follower and then on the leader; each process exits 0, is removed from
// the Raft configuration, and the minting clients carry on without a
// duplicate.
func TestLeaveOfFollowerThenLeaderUnderMinting(t *testing.T) {
	c := formCluster(t)
	ms := startMinters(t, c)
	waitMinted(t, ms, time.Now(), linesPerPhase, 60*time.Second, "before any leave")

	leader := c.waitConverged(c.nodes, 3, 30*time.Second)
	follower := c.others(leader)[0]
	at := time.Now()
	leave(t, follower)
	c.waitConverged(c.alive(), 2, 30*time.Second)
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after the follower left")

	at = time.Now()
	leave(t, leader)
	last := c.waitConverged(c.alive(), 1, 30*time.Second)
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after the leader left")
	reportGaps(t, "leave of the leader "+leader.id, ms, at, time.Now())

	st, err := last.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []*node{follower, leader} {
		if m, ok := member(st, gone.id); ok && (m.Suffrage != "none" || m.Status != "left") {
			t.Errorf("%s after leaving: %+v, want suffrage none and status left", gone.id, m)
		}
	}
	stopMinters(t, ms)
	total, maxID := checkMinted(t, ms)
	checkFinalValue(t, c, total, maxID)
}

// TestKilledNodeRemovedAfterGracePeriod: in a cluster grown to five
// voters, a kill -9'd node is removed once gossip has reported it dead for
// -dead-node-grace, and the cluster keeps serving with four voters.
func TestKilledNodeRemovedAfterGracePeriod(t *testing.T) {
	c := newCluster(t, 3, true)
	for _, n := range c.nodes {
		n.flags = membershipFlags
	}
	c.startAll()
	c.waitConverged(c.nodes, 3, 30*time.Second)
	for range 2 {
		c.addNode(membershipFlags...).start(t)
	}
	leader := c.waitConverged(c.nodes, 5, 60*time.Second)

	victim := c.others(leader)[0]
	victim.kill(t)
	killedAt := time.Now()
	var removedAfter time.Duration
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := leader.status()
		if err == nil {
			if m, ok := member(st, victim.id); ok && m.Suffrage == "none" && m.Status == "dead" {
				removedAfter = time.Since(killedAt)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still in the raft configuration 60s after kill -9: %v %s", victim.id, err, describe(st))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if removedAfter < 2*time.Second {
		t.Fatalf("%s removed %v after kill -9, before the 2s grace period", victim.id, removedAfter)
	}
	t.Logf("%s removed %v after kill -9 (grace 2s)", victim.id, removedAfter.Round(10*time.Millisecond))
	c.waitConverged(c.alive(), 4, 30*time.Second)
	if _, err := c.newClient().Next(t.Context(), "after-removal", 1); err != nil {
		t.Fatalf("mint after the removal: %v", err)
	}
}

// TestGrowThreeToFiveAndBackUnderMinting grows a running cluster to five
// nodes (each joins as a non-voter and is promoted once caught up), shrinks
// it back to three by graceful leaves, then restarts a member with a wiped
// data dir: it rejoins as a fresh member. Clients mint throughout without a
// duplicate.
func TestGrowThreeToFiveAndBackUnderMinting(t *testing.T) {
	c := newCluster(t, 3, true)
	for _, n := range c.nodes {
		n.flags = membershipFlags
	}
	c.startAll()
	c.waitConverged(c.nodes, 3, 30*time.Second)
	ms := startMinters(t, c)
	waitMinted(t, ms, time.Now(), linesPerPhase, 60*time.Second, "with three nodes")

	at := time.Now()
	n4, n5 := c.addNode(membershipFlags...), c.addNode(membershipFlags...)
	n4.start(t)
	n5.start(t)
	sawNonvoter := false
	deadline := time.Now().Add(60 * time.Second)
	for {
		sts, errs := poll(c.nodes)
		for i, st := range sts {
			if errs[i] != nil {
				continue
			}
			for _, id := range []string{n4.id, n5.id} {
				if m, ok := member(st, id); ok && m.Suffrage == "nonvoter" {
					sawNonvoter = true
				}
			}
		}
		if _, ok := converged(c.nodes, sts, errs, 5); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no five voters within 60s:%s", summary(c.nodes, sts, errs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawNonvoter {
		t.Error("the new nodes were never seen as non-voters before their promotion")
	}
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after growing to five")
	c.waitCaughtUp(n5, mintCounter, 30*time.Second)

	at = time.Now()
	leader := c.waitConverged(c.nodes, 5, 30*time.Second)
	// Shrink by two: the leader and one of the new nodes leave.
	leave(t, leader)
	leave(t, n4)
	c.waitConverged(c.alive(), 3, 30*time.Second)
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after shrinking back to three")

	// A member whose data dir is wiped rejoins as a fresh member and
	// catches up from the others.
	wiped := c.alive()[0]
	if wiped == c.waitConverged(c.alive(), 3, 30*time.Second) {
		wiped = c.alive()[1]
	}
	wiped.kill(t)
	if err := os.RemoveAll(wiped.dataDir); err != nil {
		t.Fatal(err)
	}
	at = time.Now()
	wiped.start(t)
	c.waitConverged(c.alive(), 3, 60*time.Second)
	c.waitCaughtUp(wiped, mintCounter, 30*time.Second)
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after the wiped member rejoined")

	stopMinters(t, ms)
	total, maxID := checkMinted(t, ms)
	reportClients(t, ms)
	checkFinalValue(t, c, total, maxID)
}
