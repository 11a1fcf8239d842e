package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/internal/harness"
)

// gracePeriod is the -dead-node-grace of membershipFlags.
const gracePeriod = 2 * time.Second

// membershipFlags make membership changes quick enough for a test: a new
// member is promoted after 1s of keeping up, a dead one removed after
// gracePeriod.
var membershipFlags = []string{"-promote-after", "1s", "-dead-node-grace", gracePeriod.String()}

// countctlOn runs countctl against exactly the given node and returns its
// stdout; it fails the test unless countctl exits 0.
func countctlOn(t *testing.T, n *harness.Process, args ...string) string {
	t.Helper()
	out, errOut, code := ctl(t, append([]string{"-a", n.URL()}, args...)...)
	if code != 0 {
		t.Fatalf("countctl %s on %s: exit %d; stderr: %s", strings.Join(args, " "), n.ID, code, errOut)
	}
	return out
}

// waitExit waits for n's process to exit and returns its exit code.
func waitExit(t *testing.T, n *harness.Process, timeout time.Duration) int {
	t.Helper()
	code, err := n.Wait(timeout)
	if err != nil {
		t.Fatalf("after leaving: %v", err)
	}
	return code
}

// removalConfirmed is what countd logs when the leader has told it that it
// removed it from the Raft configuration.
const removalConfirmed = `msg="the leader removed this node from the raft configuration"`

// checkRemovalConfirmed checks that n's last process, which left the
// cluster, heard from the leader that it was removed.
func checkRemovalConfirmed(t *testing.T, n *harness.Process) {
	t.Helper()
	log, err := n.LogSinceStart()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, removalConfirmed) {
		t.Errorf("%s left without the leader's confirmation of its removal; the end of its log:\n%s", n.ID, n.LogTail(20))
	}
}

// leave makes n leave with `countctl cluster leave` and checks that the
// process exits 0 after the leader confirmed its removal.
func leave(t *testing.T, n *harness.Process) {
	t.Helper()
	out := countctlOn(t, n, "-o", "text", "cluster", "leave")
	if !strings.Contains(out, n.ID+" left the cluster") || strings.Contains(out, "not confirmed") {
		t.Errorf("countctl cluster leave on %s printed %q, want it left and removed", n.ID, out)
	}
	if code := waitExit(t, n, 20*time.Second); code != 0 {
		t.Errorf("%s exited %d after leaving, want 0", n.ID, code)
	}
	checkRemovalConfirmed(t, n)
	t.Logf("%s: %s", n.ID, strings.TrimSpace(out))
}

// TestLeaveOfFollowerThenLeaderUnderMinting: `countctl cluster leave` on a
// follower and then on the leader; each process exits 0, is removed from
// the Raft configuration, and the minting clients carry on without a
// duplicate.
func TestLeaveOfFollowerThenLeaderUnderMinting(t *testing.T) {
	c := formCluster(t)
	ms := startMinters(t, c)
	waitMinted(t, ms, time.Now(), linesPerPhase, 60*time.Second, "before any leave")

	leader := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	follower := c.Others(leader)[0]
	at := time.Now()
	leave(t, follower)
	c.MustWaitConverged(t, c.Running(), 2, 30*time.Second)
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after the follower left")

	at = time.Now()
	leave(t, leader)
	last := c.MustWaitConverged(t, c.Running(), 1, 30*time.Second)
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after the leader left")
	reportGaps(t, "leave of the leader "+leader.ID, ms, at, time.Now())

	st, err := last.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []*harness.Process{follower, leader} {
		if m, ok := harness.Member(st, gone.ID); ok && (m.Suffrage != "none" || m.Status != "left") {
			t.Errorf("%s after leaving: %+v, want suffrage none and status left", gone.ID, m)
		}
	}
	stopMinters(t, ms)
	total, maxID := checkMinted(t, ms)
	checkFinalValue(t, c, total, maxID)
}

// TestKilledNodeRemovedAfterGracePeriod: in a cluster grown to five
// voters, a kill -9'd node is removed once gossip has reported it dead for
// -dead-node-grace, and the cluster keeps serving with four voters.
//
// The grace period is measured on the leader's /v1/cluster from when its
// gossip reported the node dead, not from the kill: declaring a node dead
// takes gossip seconds by itself, so a measure from the kill would pass
// without any grace period. The measure is an upper bound of the real
// interval (from the last answer that did not say dead to the first that
// showed the removal), so it cannot fall below the grace period when the
// leader keeps it.
func TestKilledNodeRemovedAfterGracePeriod(t *testing.T) {
	c := newCluster(t, 3, true, membershipFlags...)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	for range 2 {
		c.MustAddNode(t, membershipFlags...).MustStart(t)
	}
	leader := c.MustWaitConverged(t, c.Nodes, 5, 60*time.Second)

	victim := c.Others(leader)[0]
	victim.MustKill(t)
	var (
		aliveAsked time.Time // when the last answer that did not say dead was asked for
		deadSeen   time.Time // when the first answer that said dead came
		removed    time.Time // when the first answer without it as a member came
	)
	harness.WaitFor(t, 60*time.Second, victim.ID+" to be removed from the raft configuration", func() bool {
		asked := time.Now()
		st, err := leader.Status(context.Background())
		if err != nil {
			return false
		}
		m, ok := harness.Member(st, victim.ID)
		switch {
		case !ok:
			t.Fatalf("the leader forgot %s: %s", victim.ID, harness.Describe(st))
		case m.Status != "dead":
			if !deadSeen.IsZero() {
				t.Fatalf("%s was dead and is %s again: %s", victim.ID, m.Status, harness.Describe(st))
			}
			aliveAsked = asked
		case deadSeen.IsZero():
			deadSeen = time.Now()
		}
		if m.Suffrage == "none" {
			removed = time.Now()
			return true
		}
		return false
	})
	if deadSeen.IsZero() {
		t.Fatalf("%s was removed before the leader's gossip reported it dead", victim.ID)
	}
	if after := removed.Sub(aliveAsked); after < gracePeriod {
		t.Fatalf("%s removed at most %v after gossip reported it dead, within the %v grace period", victim.ID, after, gracePeriod)
	}
	t.Logf("%s removed between %v and %v after the leader's gossip reported it dead (grace %v)", victim.ID,
		removed.Sub(deadSeen).Round(10*time.Millisecond), removed.Sub(aliveAsked).Round(10*time.Millisecond), gracePeriod)
	c.MustWaitConverged(t, c.Running(), 4, 30*time.Second)
	if _, err := newClient(t, c).Next(t.Context(), "after-removal", 1); err != nil {
		t.Fatalf("mint after the removal: %v", err)
	}
}

// TestGrowThreeToFiveAndBackUnderMinting grows a running cluster to five
// nodes (each joins as a non-voter and is promoted once caught up), shrinks
// it back to three by graceful leaves, then restarts a member with a wiped
// data dir: it rejoins as a fresh member. Clients mint throughout without a
// duplicate.
func TestGrowThreeToFiveAndBackUnderMinting(t *testing.T) {
	c := formCluster(t, membershipFlags...)
	ms := startMinters(t, c)
	waitMinted(t, ms, time.Now(), linesPerPhase, 60*time.Second, "with three nodes")

	at := time.Now()
	n4, n5 := c.MustAddNode(t, membershipFlags...), c.MustAddNode(t, membershipFlags...)
	n4.MustStart(t)
	n5.MustStart(t)
	sawNonvoter := false
	var last harness.Poll
	grown := func() bool {
		last = harness.PollProcesses(context.Background(), c.Nodes)
		for i, st := range last.Statuses {
			if last.Errs[i] != nil {
				continue
			}
			for _, id := range []string{n4.ID, n5.ID} {
				if m, ok := harness.Member(st, id); ok && m.Suffrage == "nonvoter" {
					sawNonvoter = true
				}
			}
		}
		_, ok := last.Converged(5)
		return ok
	}
	harness.WaitFor(t, 60*time.Second, "five voters", grown)
	if !sawNonvoter {
		t.Error("the new nodes were never seen as non-voters before their promotion")
	}
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after growing to five")
	waitCaughtUp(t, c, n5, mintCounter, 30*time.Second)

	at = time.Now()
	leader := c.MustWaitConverged(t, c.Nodes, 5, 30*time.Second)
	// Shrink by two: the leader and one of the new nodes leave.
	leave(t, leader)
	leave(t, n4)
	c.MustWaitConverged(t, c.Running(), 3, 30*time.Second)
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after shrinking back to three")

	// A member whose data dir is wiped rejoins as a fresh member and
	// catches up from the others.
	wiped := c.Running()[0]
	if wiped == c.MustWaitConverged(t, c.Running(), 3, 30*time.Second) {
		wiped = c.Running()[1]
	}
	wiped.MustKill(t)
	if err := os.RemoveAll(wiped.DataDir); err != nil {
		t.Fatal(err)
	}
	at = time.Now()
	wiped.MustStart(t)
	c.MustWaitConverged(t, c.Running(), 3, 60*time.Second)
	waitCaughtUp(t, c, wiped, mintCounter, 30*time.Second)
	waitMinted(t, ms, at, linesPerPhase, 60*time.Second, "after the wiped member rejoined")

	stopMinters(t, ms)
	total, maxID := checkMinted(t, ms)
	reportClients(t, ms)
	checkFinalValue(t, c, total, maxID)
}
