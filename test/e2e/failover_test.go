package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/countd/countd/internal/harness"
)

const (
	numMinters = 8
	// linesPerPhase is how many IDs every client must print in each phase
	// (before a kill, after it, after the restart).
	linesPerPhase = 50
	mintCounter   = "ids"
)

// formCluster starts three nodes with -bootstrap-expect 3 and waits until
// they agree on a leader with three voters.
func formCluster(t *testing.T, flags ...string) *harness.ProcessCluster {
	t.Helper()
	c := newCluster(t, 3, true, flags...)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	return c
}

func startMinters(t *testing.T, c *harness.ProcessCluster) []*minter {
	t.Helper()
	ms := make([]*minter, numMinters)
	for i := range ms {
		ms[i] = startMinter(t, i+1, urls(c), mintCounter)
	}
	return ms
}

func stopMinters(t *testing.T, ms []*minter) {
	t.Helper()
	for _, m := range ms {
		m.stop(t)
	}
}

// checkFinalValue checks the counter's linearizable value covers every
// printed ID.
func checkFinalValue(t *testing.T, c *harness.ProcessCluster, total int, maxID int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctr, err := newClient(t, c).Counter(ctx, mintCounter)
	if err != nil {
		t.Fatalf("read %s: %v", mintCounter, err)
	}
	if ctr.Value < maxID {
		t.Errorf("LOST WRITE: counter %s reads %d but ID %d was printed", mintCounter, ctr.Value, maxID)
	}
	t.Logf("counter %s = %d; %d distinct IDs printed (%d never printed: in flight when clients stopped or lost to timeouts)",
		mintCounter, ctr.Value, total, ctr.Value-int64(total))
}

// TestContinuousMintingSurvivesLeaderKill runs eight `countctl counter next
// --continuous` clients against a three-node cluster and kill -9s the leader
// three times (restarting it between rounds). Every client must resume after
// each kill and no ID may ever be printed twice. The failover gaps are
// measured and logged.
func TestContinuousMintingSurvivesLeaderKill(t *testing.T) {
	c := formCluster(t)
	ms := startMinters(t, c)
	phase := time.Now()
	waitMinted(t, ms, phase, linesPerPhase, 60*time.Second, "before the first kill")

	for round := 1; round <= 3; round++ {
		leader := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
		var term uint64
		if st, err := leader.Status(context.Background()); err == nil {
			term = st.Term
		}
		killAt := time.Now()
		leader.MustKill(t)
		waitMinted(t, ms, killAt, linesPerPhase, 60*time.Second, fmt.Sprintf("round %d, after killing leader %s", round, leader.ID))
		resumed := time.Now()

		// A killed node keeps its vote for the dead-node grace period.
		newLeader := c.MustWaitConverged(t, c.Others(leader), 3, 30*time.Second)
		reportGaps(t, fmt.Sprintf("failover %d/3 (kill -9 of leader %s, term %d; new leader %s)", round, leader.ID, term, newLeader.ID), ms, killAt, resumed)

		// Restart the killed node with the same flags and data dir; it must
		// rejoin, follow the leader and catch up.
		restartAt := time.Now()
		leader.MustStart(t)
		c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
		target, got := waitCaughtUp(t, c, leader, mintCounter, 30*time.Second)
		t.Logf("round %d: %s restarted and caught up in %v (stale read %d >= %d)", round, leader.ID, time.Since(restartAt).Round(time.Millisecond), got, target)

		phase = time.Now()
		waitMinted(t, ms, phase, linesPerPhase/2, 60*time.Second, fmt.Sprintf("round %d, after the restart of %s", round, leader.ID))
	}

	stopMinters(t, ms)
	total, maxID := checkMinted(t, ms)
	reportClients(t, ms)
	checkFinalValue(t, c, total, maxID)
}

// TestGracefulShutdownOfLeaderKeepsServing sends SIGTERM to the leader while
// clients mint: the process must exit 0, after handing over leadership and
// leaving the Raft configuration with the new leader's confirmation, and the
// clients must carry on without duplicates.
func TestGracefulShutdownOfLeaderKeepsServing(t *testing.T) {
	c := formCluster(t)
	ms := startMinters(t, c)
	waitMinted(t, ms, time.Now(), linesPerPhase, 60*time.Second, "before SIGTERM")

	leader := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	termAt := time.Now()
	code, took, exited := leader.Terminate(10 * time.Second)
	if !exited {
		t.Fatalf("leader %s did not exit within 10s of SIGTERM", leader.ID)
	}
	if code != 0 {
		t.Errorf("leader %s exited with code %d after SIGTERM, want 0", leader.ID, code)
	}
	// The leave on SIGTERM waits for the new leader's confirmation that it
	// removed this node (not merely for a deadline to pass).
	checkRemovalConfirmed(t, leader)
	waitMinted(t, ms, termAt, linesPerPhase, 60*time.Second, fmt.Sprintf("after SIGTERM to leader %s", leader.ID))
	resumed := time.Now()
	// SIGTERM is a graceful leave: the old leader is out of the Raft
	// configuration, and two voters remain.
	newLeader := c.MustWaitConverged(t, c.Others(leader), 2, 30*time.Second)
	t.Logf("leader %s exited %d in %v after SIGTERM; new leader %s", leader.ID, code, took.Round(time.Millisecond), newLeader.ID)
	reportGaps(t, fmt.Sprintf("graceful shutdown of leader %s (new leader %s)", leader.ID, newLeader.ID), ms, termAt, resumed)

	// Restarting with the original flags rejoins: added as a non-voter,
	// promoted once caught up.
	leader.MustStart(t)
	c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	waitCaughtUp(t, c, leader, mintCounter, 30*time.Second)
	waitMinted(t, ms, time.Now(), linesPerPhase/2, 60*time.Second, "after the restart")

	stopMinters(t, ms)
	total, maxID := checkMinted(t, ms)
	reportClients(t, ms)
	checkFinalValue(t, c, total, maxID)
}
