package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countd/countd/fsm"
)

// startSolo starts a single on-disk node in dir that bootstraps itself.
func startSolo(t *testing.T, dir string, store string) *Node {
	t.Helper()
	n, err := Start(Config{
		NodeID: "solo", DataDir: dir, RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1", LogStore: store,
		HeartbeatTimeout: 100 * time.Millisecond, ElectionTimeout: 100 * time.Millisecond, LeaderLeaseTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("start on %s (%s): %v", dir, store, err)
	}
	return n
}

func mintOn(t *testing.T, n *Node) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		res, err := n.Apply(ctx, fsm.Command{Payload: fsm.CounterNext{ID: "c", Count: 1}})
		if err == nil {
			return res.Value.(*fsm.Mint).Last
		}
		if ctx.Err() != nil {
			t.Fatalf("mint: %v", err)
		}
		// Not leader yet: the node elects itself within an election timeout.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestDataDirKeepsItsLogStore(t *testing.T) {
	for _, first := range []string{LogStoreWAL, LogStoreBolt} {
		t.Run(first, func(t *testing.T) {
			dir := t.TempDir()
			n := startSolo(t, dir, first)
			if n.LogStore() != first {
				t.Fatalf("new data dir got %s, want %s", n.LogStore(), first)
			}
			if v := mintOn(t, n); v != 1 {
				t.Fatalf("first mint %d", v)
			}
			n.Shutdown()
			// Restarted with the other store asked for, it keeps the one
			// its data dir holds, and its state.
			other := map[string]string{LogStoreWAL: LogStoreBolt, LogStoreBolt: LogStoreWAL}[first]
			n = startSolo(t, dir, other)
			defer n.Shutdown()
			if n.LogStore() != first {
				t.Fatalf("restart with -log-store %s switched the data dir to %s", other, n.LogStore())
			}
			if v := mintOn(t, n); v != 2 {
				t.Fatalf("mint after restart: %d, want 2 (state lost?)", v)
			}
		})
	}
}

func TestDataDirLockedWhileInUse(t *testing.T) {
	dir := t.TempDir()
	n := startSolo(t, dir, LogStoreWAL)
	defer n.Shutdown()
	_, err := Start(Config{NodeID: "solo", DataDir: dir, RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second node on the same data dir: %v, want an in-use error", err)
	}
}

func TestDataDirWithBothStoresRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, boltDBName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, walDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(Config{NodeID: "solo", DataDir: dir, RaftAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("data dir with both stores: %v", err)
	}
}
