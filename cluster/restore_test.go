package cluster

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/countd/countd/fsm"
)

// TestBackupRestoreReachesEveryNode restores a backup through the log of a
// three-node cluster while one follower is down: the live follower applies
// it with the leader, the restarted one when it catches up, and all three
// end with the same state.
func TestBackupRestoreReachesEveryNode(t *testing.T) {
	nodes := startCluster(t, 3)
	l := waitLeader(t, nodes)
	writeEveryKind(t, l, 1)
	var backup bytes.Buffer
	if _, err := l.State().Snapshot().WriteTo(&backup); err != nil {
		t.Fatal(err)
	}
	writeEveryKind(t, l, 2)
	cfg := stopFollower(t, nodes, l)

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

	restarted := mustStart(t, cfg)
	live := []*Node{l, restarted}
	for _, n := range nodes {
		if n != l && n.ID() != restarted.ID() {
			live = append(live, n)
		}
	}
	waitFor(t, 15*time.Second, "every node to hold the leader's state", func() bool {
		want := l.State().Snapshot()
		for _, n := range live[1:] {
			if !n.State().Snapshot().Equal(want) {
				return false
			}
		}
		return true
	})
}
