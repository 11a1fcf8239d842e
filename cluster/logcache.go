package cluster

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// logCacheSlots is how many recent entries the log cache holds: enough for
// replication to followers a little behind and for the FSM to read what
// was just committed without touching bolt.
const logCacheSlots = 1024

// maxCachedEntry is the largest entry the log cache keeps, in bytes of
// command. Larger entries (big documents, backups) are read back from the
// store, so the cache holds at most logCacheSlots × maxCachedEntry (16 MiB)
// whatever is written.
const maxCachedEntry = 16 << 10

// logCache is raft.LogCache with its memory bounded. raft.LogCache keeps
// the *raft.Log it is handed, and on the leader that is a pointer into the
// entry's apply future, so every cached entry kept its command's response
// (a whole document, for a document write) alive for 1,024 more writes;
// and it keeps entries of any size. This one keeps its own copy of each
// entry's header, sharing only the command bytes, and skips entries larger
// than maxCachedEntry.
type logCache struct {
	store raft.LogStore

	mu    sync.RWMutex
	slots []*raft.Log
}

var _ raft.LogStore = (*logCache)(nil)

func newLogCache(slots int, store raft.LogStore) *logCache {
	return &logCache{store: store, slots: make([]*raft.Log, slots)}
}

func (c *logCache) slot(index uint64) int { return int(index % uint64(len(c.slots))) }

// GetLog implements raft.LogStore.
func (c *logCache) GetLog(index uint64, log *raft.Log) error {
	c.mu.RLock()
	cached := c.slots[c.slot(index)]
	c.mu.RUnlock()
	if cached != nil && cached.Index == index {
		*log = *cached
		return nil
	}
	// raft-wal truncates its head by moving the first index, and its tail
	// segment still serves entries below it; raft must see them as gone,
	// so that a follower behind a compaction gets the snapshot, not the
	// entries the snapshot replaced.
	if first, err := c.store.FirstIndex(); err == nil && index < first {
		return raft.ErrLogNotFound
	}
	return c.store.GetLog(index, log)
}

// StoreLog implements raft.LogStore.
func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

// StoreLogs implements raft.LogStore: entries are cached only once the
// store has them.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.store.StoreLogs(logs); err != nil {
		return fmt.Errorf("store %d log entries: %w", len(logs), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		i := c.slot(l.Index)
		if len(l.Data)+len(l.Extensions) > maxCachedEntry {
			c.slots[i] = nil // do not keep the older entry in its slot either
			continue
		}
		kept := *l
		c.slots[i] = &kept
	}
	return nil
}

// FirstIndex implements raft.LogStore.
func (c *logCache) FirstIndex() (uint64, error) { return c.store.FirstIndex() }

// LastIndex implements raft.LogStore.
func (c *logCache) LastIndex() (uint64, error) { return c.store.LastIndex() }

// DeleteRange implements raft.LogStore; the cache forgets everything, as
// raft.LogCache does, since deletes are rare (compaction, conflicts).
func (c *logCache) DeleteRange(lo, hi uint64) error {
	c.mu.Lock()
	clear(c.slots)
	c.mu.Unlock()
	return c.store.DeleteRange(lo, hi)
}

// IsMonotonic implements raft.MonotonicLogStore for a store that is.
func (c *logCache) IsMonotonic() bool {
	m, ok := c.store.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
