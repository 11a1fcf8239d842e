package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// maxPrinted is the largest ID any minter has printed so far.
func maxPrinted(ms []*minter) int64 {
	var top int64
	for _, m := range ms {
		ids, _ := m.snapshot()
		for _, s := range ids {
			top = max(top, s.v)
		}
	}
	return top
}

// TestBackupRestoreNeverRepeatsAnID saves a backup of a three-node cluster
// while clients mint, lets them mint more, and restores the backup on the
// running cluster with the clients still minting: because a restore never
// moves a counter back, every ID minted after it is above every ID
// acknowledged before it, no ID is ever printed twice, and all nodes end
// with the same value. Then the backup is restored into a brand-new,
// empty cluster with --advance, whose first ID is above the backup's value
// plus the advance, and so above everything the old cluster handed out.
func TestBackupRestoreNeverRepeatsAnID(t *testing.T) {
	c := formCluster(t)
	ms := make([]*minter, 3)
	for i := range ms {
		ms[i] = startMinter(t, i+1, urls(c), mintCounter)
	}
	waitMinted(t, ms, time.Now(), 20, 60*time.Second, "before the backup")

	// The backup is linearizable: it holds at least every ID printed
	// before the save began, and at most what a read after it sees.
	lo := maxPrinted(ms)
	file := filepath.Join(t.TempDir(), "ids.backup")
	var saved struct {
		File  string `json:"file"`
		Index uint64 `json:"index"`
		Bytes int64  `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(countctl(t, c, "snapshot", "save", file)), &saved); err != nil || saved.File != file || saved.Index == 0 {
		t.Fatalf("snapshot save printed %+v (%v)", saved, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	after, err := newClient(t, c).Counter(ctx, mintCounter)
	if err != nil {
		t.Fatalf("read %s after the save: %v", mintCounter, err)
	}
	hi := after.Value

	waitMinted(t, ms, time.Now(), 30, 60*time.Second, "after the backup")
	ackedBefore := maxPrinted(ms)
	var restored struct {
		Counters    int64  `json:"counters"`
		BackupIndex uint64 `json:"backup_index"`
		Forced      bool   `json:"forced"`
	}
	if err := json.Unmarshal([]byte(countctl(t, c, "snapshot", "restore", file)), &restored); err != nil ||
		restored.Counters != 1 || restored.BackupIndex != saved.Index || restored.Forced {
		t.Fatalf("snapshot restore printed %+v (%v)", restored, err)
	}
	restoredAt := time.Now()
	waitMinted(t, ms, restoredAt, 30, 60*time.Second, "after the restore")
	stopMinters(t, ms)
	total, maxID := checkMinted(t, ms)

	// Each client may print one ID that was in flight across the restore;
	// everything it minted after that is above every ID acknowledged
	// before the restore began.
	for _, m := range ms {
		ids, _ := m.snapshot()
		skipped := false
		for _, s := range ids {
			if s.at.Before(restoredAt) {
				continue
			}
			if !skipped {
				skipped = true
				continue
			}
			if s.v <= ackedBefore {
				t.Errorf("client %d minted %d after the restore, but %d was acknowledged before it: the restore moved the counter back", m.idx, s.v, ackedBefore)
				break
			}
		}
	}
	checkFinalValue(t, c, total, maxID)
	var want int64
	for _, n := range c.Nodes {
		target, got := waitCaughtUp(t, c, n, mintCounter, 20*time.Second)
		if got != target {
			t.Errorf("%s's stale read of %s is %d, the cluster's is %d", n.ID, mintCounter, got, target)
		}
		want = target
	}
	t.Logf("backup at index %d (%d bytes) holds %s in [%d, %d]; %d acknowledged before the restore; final value %d, %d IDs printed",
		saved.Index, saved.Bytes, mintCounter, lo, hi, ackedBefore, want, total)

	// A brand-new, empty cluster cannot know what the old one minted after
	// the backup; --advance covers it.
	const advance = 1_000_000
	fresh := newCluster(t, 1, false)
	if err := fresh.StartAll(); err != nil {
		t.Fatal(err)
	}
	fresh.MustWaitConverged(t, fresh.Nodes, 1, 30*time.Second)
	countctl(t, fresh, "snapshot", "restore", file, "--advance", strconv.Itoa(advance))
	v, err := strconv.ParseInt(strings.TrimSpace(countctl(t, fresh, "-i", mintCounter, "-o", "text", "counter", "get")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	backupValue := v - advance
	if backupValue < lo || backupValue > hi {
		t.Fatalf("the new cluster holds %d = backup value %d + %d; the backup value must be in [%d, %d]", v, backupValue, advance, lo, hi)
	}
	next, err := strconv.ParseInt(strings.TrimSpace(countctl(t, fresh, "-i", mintCounter, "-o", "text", "counter", "next")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if next <= backupValue+advance || next <= maxID {
		t.Errorf("first ID of the restored cluster is %d; want above the backup's %d + %d and above the old cluster's last ID %d", next, backupValue, advance, maxID)
	}
	t.Logf("new cluster: restored %d + %d, first ID %d (old cluster's last printed ID %d)", backupValue, advance, next, maxID)
}
