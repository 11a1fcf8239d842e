package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/internal/harness"
)

// Right after the process stalled, a linearizable read confirms leadership
// by committing a log entry, which replies sent before the read began
// cannot confirm; otherwise by a heartbeat round, which commits nothing.
func TestReadAfterAStallConfirmsThroughTheLog(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	l := harness.WaitLeader(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read := func() {
		t.Helper()
		if err := l.Node.ReadBarrier(ctx, cluster.Linearizable); err != nil {
			t.Fatal(err)
		}
	}
	read() // the leader is ready

	before := l.Node.LogConfirmations()
	last := l.Node.RaftLastIndex()
	l.Node.SimulateStall()
	read()
	if got := l.Node.LogConfirmations(); got != before+1 {
		t.Fatalf("%v log confirmations after a stall, want %v", got, before+1)
	}
	if now := l.Node.RaftLastIndex(); now <= last {
		t.Fatalf("the read after a stall appended nothing (last index %d, before %d)", now, last)
	}
}
