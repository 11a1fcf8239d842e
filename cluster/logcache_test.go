package cluster

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// countingStore counts reads that reach the store behind the cache.
type countingStore struct {
	*raft.InmemStore
	reads int
}

func (s *countingStore) GetLog(index uint64, log *raft.Log) error {
	s.reads++
	return s.InmemStore.GetLog(index, log)
}

func TestLogCacheServesSmallEntriesAndSkipsLargeOnes(t *testing.T) {
	store := &countingStore{InmemStore: raft.NewInmemStore()}
	c := newLogCache(8, store)
	small := &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("small")}
	large := &raft.Log{Index: 2, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte("x"), maxCachedEntry+1)}
	if err := c.StoreLogs([]*raft.Log{small, large}); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := c.GetLog(1, &got); err != nil || string(got.Data) != "small" || store.reads != 0 {
		t.Fatalf("small entry: %q, %v, %d store reads; want it from the cache", got.Data, err, store.reads)
	}
	if err := c.GetLog(2, &got); err != nil || len(got.Data) != len(large.Data) || store.reads != 1 {
		t.Fatalf("large entry: %d bytes, %v, %d store reads; want it from the store", len(got.Data), err, store.reads)
	}
	// An entry in a slot's place evicts the older one; a read of the older
	// index goes to the store.
	if err := c.StoreLog(&raft.Log{Index: 9, Term: 1, Data: []byte("nine")}); err != nil {
		t.Fatal(err)
	}
	if err := c.GetLog(1, &got); err != nil || string(got.Data) != "small" || store.reads != 2 {
		t.Fatalf("evicted entry: %q, %v, %d store reads", got.Data, err, store.reads)
	}
	if err := c.DeleteRange(1, 9); err != nil {
		t.Fatal(err)
	}
	if err := c.GetLog(9, &got); err == nil {
		t.Fatal("a deleted entry is still served")
	}
}

// applyFuture stands for raft's logFuture: the leader hands the log store a
// pointer to the Log inside it, next to the command's response.
type applyFuture struct {
	log      raft.Log
	response []byte
}

// copyingStore keeps copies of what it stores, as bolt does (raft's
// InmemStore keeps the pointers it is given).
type copyingStore struct{ *raft.InmemStore }

func (s copyingStore) StoreLogs(logs []*raft.Log) error {
	for _, l := range logs {
		kept := *l
		if err := s.InmemStore.StoreLog(&kept); err != nil {
			return err
		}
	}
	return nil
}

func TestLogCacheDoesNotKeepApplyFuturesAlive(t *testing.T) {
	c := newLogCache(logCacheSlots, copyingStore{raft.NewInmemStore()})
	freed := make(chan struct{})
	func() {
		f := &applyFuture{log: raft.Log{Index: 1, Term: 1, Data: []byte("cmd")}, response: make([]byte, 1<<20)}
		runtime.SetFinalizer(f, func(*applyFuture) { close(freed) })
		if err := c.StoreLogs([]*raft.Log{&f.log}); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		select {
		case <-freed:
			var got raft.Log
			if err := c.GetLog(1, &got); err != nil || string(got.Data) != "cmd" {
				t.Fatalf("cached entry after its future was freed: %q, %v", got.Data, err)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the cached entry keeps its apply future (and the response in it) alive")
		}
		runtime.Gosched()
	}
}

func TestLogCacheHidesEntriesBelowTheFirstIndex(t *testing.T) {
	// The WAL's tail segment still serves entries a head truncation
	// removed; through the cache they are gone, as raft expects.
	dir := t.TempDir()
	store, err := openLogStore(dir, LogStoreWAL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.close()
	var logs []*raft.Log
	for i := uint64(1); i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte("x"), maxCachedEntry+1)})
	}
	if err := store.logs.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := store.logs.DeleteRange(1, 8); err != nil {
		t.Fatal(err)
	}
	var got raft.Log
	if err := store.logs.GetLog(5, &got); err != raft.ErrLogNotFound {
		t.Fatalf("entry 5 after DeleteRange(1, 8): %v, want ErrLogNotFound", err)
	}
	if err := store.logs.GetLog(9, &got); err != nil || got.Index != 9 {
		t.Fatalf("entry 9: %v", err)
	}
}
