package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/internal/harness"
)

// writeEveryKind applies one of each write through n, so tests can check
// that every object kind survives snapshots and restarts.
func writeEveryKind(t *testing.T, n *cluster.Node, round int) {
	t.Helper()
	ctx := context.Background()
	for _, p := range []fsm.Payload{
		fsm.CounterNext{ID: "ids", Count: 10},
		fsm.QueueConfigure{ID: "zk", Min: ptr(int64(1)), Max: ptr(int64(255)), Reuse: ptr(true)},
		fsm.QueueJoin{ID: "zk", ProcessID: fmt.Sprintf("host-%d", round), Tags: map[string]string{"round": fmt.Sprint(round)}},
		fsm.ItemsAdd{Items: []fsm.Item{{Tenant: "t1", ID: fmt.Sprintf("item-%d", round)}, {Tenant: "t2", ID: "same"}}},
		fsm.DocPatch{Name: "cfg", Patch: []byte(fmt.Sprintf(`{"round":%d,"nested":{"r%d":true}}`, round, round))},
	} {
		res, err := n.Apply(ctx, fsm.Command{Payload: p, IdempotencyKey: fmt.Sprintf("%s-%d", p.Op(), round)})
		if err != nil || res.Err != nil {
			t.Fatalf("apply %s: %v %v", p.Op(), err, res.Err)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestEveryKindSurvivesSnapshotAndRestart writes every kind, takes a Raft
// snapshot, writes more (so the restart both restores the snapshot and
// replays the log after it), restarts the node and compares whole states.
func TestEveryKindSurvivesSnapshotAndRestart(t *testing.T) {
	solo := startSolo(t)
	n := solo.Node
	writeEveryKind(t, n, 1)
	writeEveryKind(t, n, 2)
	if err := n.TakeSnapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	writeEveryKind(t, n, 3)
	before := n.State().Snapshot()
	if err := n.Shutdown(); err != nil {
		t.Fatal(err)
	}
	solo.Stop()

	rh := start(t, solo.Config())
	harness.WaitLeader(t, []*harness.Node{rh})
	restarted := rh.Node
	harness.WaitFor(t, 10*time.Second, "the restarted node to apply its log", func() bool {
		return restarted.State().AppliedIndex() >= before.AppliedIndex()
	})
	if after := restarted.State().Snapshot(); !after.Equal(before) {
		t.Fatal("state after restart differs from the state before")
	}
	q, _, err := restarted.State().Queue("zk")
	if err != nil || len(q.Members) != 3 || q.FencingToken != 3 || !q.Config.Reuse {
		t.Fatalf("queue after restart: %+v %v", q, err)
	}
	// Idempotency keys survive too: a retry replays instead of joining again.
	res, err := restarted.Apply(context.Background(), fsm.Command{
		Payload:        fsm.QueueJoin{ID: "zk", ProcessID: "host-1", Tags: map[string]string{"round": "1"}},
		IdempotencyKey: fmt.Sprintf("%s-%d", fsm.OpQueueJoin, 1),
	})
	if err != nil || !res.Replayed || res.Value.(*fsm.Ticket).Counter != 1 {
		t.Fatalf("replayed join after restart: %+v %v", res, err)
	}
}

// TestLaggingFollowerInstallsSnapshotOfEveryKind makes a follower miss
// writes that the leader has compacted into a snapshot, so it can only
// catch up by installing it.
func TestLaggingFollowerInstallsSnapshotOfEveryKind(t *testing.T) {
	nodes := harness.StartCluster(t, 3, func(c *cluster.Config) {
		// Keep one log entry behind a snapshot (the fewest there are), so
		// a follower that missed compacted entries can only catch up by
		// installing the snapshot.
		c.TrailingLogs = 1
	})
	lh := harness.WaitLeader(t, nodes)
	l := lh.Node
	cfg := stopFollower(t, nodes, lh)
	writeEveryKind(t, l, 1)
	writeEveryKind(t, l, 2)
	if err := l.TakeSnapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	want := l.State().Snapshot()

	restarted := start(t, cfg).Node
	harness.WaitFor(t, 15*time.Second, "the follower to catch up", func() bool {
		return restarted.State().AppliedIndex() >= want.AppliedIndex()
	})
	// Entries after the snapshot (membership changes) may follow; compare
	// with the leader's state at the same index.
	harness.WaitFor(t, 5*time.Second, "the follower's state to equal the leader's", func() bool {
		return restarted.State().Snapshot().Equal(l.State().Snapshot())
	})
	// Raft records the installed snapshot just after restoring it.
	harness.WaitFor(t, 5*time.Second, "the follower to have installed a snapshot (if this times out, it caught up from the log and the test no longer tests snapshots)", func() bool {
		return restarted.LastSnapshotIndex() != "0"
	})
	d, _ := restarted.State().Document("cfg")
	if d.Version != 2 || string(d.Value) != `{"nested":{"r1":true,"r2":true},"round":2}` {
		t.Fatalf("document on the follower: %+v %s", d, d.Value)
	}
}
