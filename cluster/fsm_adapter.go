package cluster

import (
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/countd/countd/fsm"
)

// raftFSM adapts fsm.State to raft.BatchingFSM: a batch of committed entries
// is applied under one lock.
type raftFSM struct {
	state *fsm.State
	// applySeconds times each batch inside the state machine; one
	// observation per batch keeps it off the per-entry path.
	applySeconds prometheus.Observer
	// appliedMints counts the IDs the batch's nexts minted through the log.
	appliedMints prometheus.Counter
}

var _ raft.BatchingFSM = (*raftFSM)(nil)

func (f *raftFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f *raftFSM) ApplyBatch(logs []*raft.Log) []any {
	entries := make([]fsm.Entry, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type == raft.LogCommand {
			entries[i].Data = l.Data
		}
	}
	start := time.Now()
	results := f.state.ApplyBatch(entries)
	f.applySeconds.Observe(time.Since(start).Seconds())
	out := make([]any, len(results))
	var minted int64
	for i := range results {
		out[i] = &results[i]
		if m, ok := results[i].Value.(*fsm.Mint); ok && !results[i].Replayed {
			minted += m.Count
		}
	}
	if minted > 0 {
		f.appliedMints.Add(float64(minted))
	}
	return out
}

func (f *raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	return &raftSnapshot{snap: f.state.Snapshot()}, nil
}

func (f *raftFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.state.Restore(rc)
}

type raftSnapshot struct{ snap *fsm.Snapshot }

func (s *raftSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.snap.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot at index %d: %w", s.snap.AppliedIndex(), err)
	}
	return sink.Close()
}

func (s *raftSnapshot) Release() {}
