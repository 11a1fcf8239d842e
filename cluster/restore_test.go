package cluster_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/countd/countd/fsm"
	"github.com/countd/countd/internal/harness"
)

// TestBackupRestoreReachesEveryNode restores a backup through the log of a
// three-node cluster while one follower is down: the live follower applies
// it with the leader, the restarted one when it catches up, and all three
// end with the same state.
func TestBackupRestoreReachesEveryNode(t *testing.T) {
	nodes := harness.StartCluster(t, 3)
	lh := harness.WaitLeader(t, nodes)
	l := lh.Node
	writeEveryKind(t, l, 1)
	var backup bytes.Buffer
	if _, err := l.State().Snapshot().WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	writeEveryKind(t, l, 2)
	cfg := stopFollower(t, nodes, lh)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := l.Apply(ctx, fsm.Command{Payload: fsm.RestoreBackup{Snapshot: backup.Bytes(), Advance: 100}, IdempotencyKey: "restore"})
	if err != nil || res.Err != nil {
		t.Fatalf("restore: %v %v", err, res.Err)
	}
	// ids: 20 minted, the backup's 10 is smaller, then the advance.
	if c, _, _ := l.State().Counter("ids"); c.Value != 120 || c.Index != res.Index {
		t.Fatalf("ids on the leader after the restore: %+v (restore at %d)", c, res.Index)
	}

	live := append(alive(nodes), start(t, cfg))
	harness.WaitFor(t, 15*time.Second, "every node to hold the leader's state", func() bool {
		want := l.State().Snapshot()
		for _, n := range live {
			if !n.Node.State().Snapshot().Equal(want) {
				return false
			}
		}
		return true
	})
}
