package cluster

// Views of a Node's internals for the external tests (package
// cluster_test). Those tests start nodes through internal/harness, which
// imports this package, so they cannot live inside it; what they assert on
// beyond the exported API is exposed here, for tests only.

import (
	"time"

	"github.com/hashicorp/raft"
	dto "github.com/prometheus/client_model/go"
)

// Gossip statuses and the autopilot period the tests reason about.
const (
	StatusAlive       = statusAlive
	StatusDead        = statusDead
	AutopilotInterval = autopilotInterval
)

// RaftTerm is Raft's current term.
func (n *Node) RaftTerm() uint64 { return n.raft.CurrentTerm() }

// RaftLastIndex is the index of the last entry in the Raft log.
func (n *Node) RaftLastIndex() uint64 { return n.raft.LastIndex() }

// TakeSnapshot makes Raft take a snapshot now.
func (n *Node) TakeSnapshot() error { return n.raft.Snapshot().Error() }

// LastSnapshotIndex is Raft's last_snapshot_index stat ("0": none yet).
func (n *Node) LastSnapshotIndex() string { return n.raft.Stats()["last_snapshot_index"] }

// HasRaftState reports whether the node holds any Raft log.
func (n *Node) HasRaftState() bool { return n.hasRaftState() }

// IsShutdown reports whether Shutdown has begun stopping Raft.
func (n *Node) IsShutdown() bool { return n.isShutdown.Load() }

// LeaderView is the leader's ID and HTTP address as this node knows them.
func (n *Node) LeaderView() (id, httpAddr string) { return n.leader() }

// Voters counts the voters in the node's latest configuration.
func (n *Node) Voters() int { return n.voters() }

// InConfiguration reports whether id is in the node's latest configuration.
func (n *Node) InConfiguration(id string) bool { return n.inConfiguration(id) }

// Suffrage is id's suffrage in the node's latest configuration: "voter",
// "nonvoter", or "" when absent.
func (n *Node) Suffrage(id string) string {
	s, ok := n.server(id)
	switch {
	case !ok:
		return ""
	case s.Suffrage == raft.Voter:
		return "voter"
	default:
		return "nonvoter"
	}
}

// ServerIDs lists the servers in the node's latest configuration.
func (n *Node) ServerIDs() []string {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var ids []string
	for _, s := range f.Configuration().Servers {
		ids = append(ids, string(s.ID))
	}
	return ids
}

// GossipMember is id's status in the node's gossip table and since when
// the node has seen it so: the dead-node grace period counts from since.
func (n *Node) GossipMember(id string) (status string, since time.Time, ok bool) {
	m, ok := n.gossip.lookup(id)
	return m.status, m.since, ok
}

// SetReservedHook makes the leader's mint cache call f after a block's
// reservation has applied and before the block is installed.
func (n *Node) SetReservedHook(f func()) {
	n.mints.mu.Lock()
	defer n.mints.mu.Unlock()
	n.mints.reservedHook = f
}

// SimulateStall makes the node behave as if its process had just stopped
// running for longer than the stall threshold.
func (n *Node) SimulateStall() {
	w := n.stalls
	w.lastTick.Store(int64(time.Since(w.start) - w.threshold - time.Millisecond))
}

// LogConfirmations is how many leadership checks went through the log.
func (n *Node) LogConfirmations() float64 {
	var m dto.Metric
	if err := n.metrics.logConfirmations.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
