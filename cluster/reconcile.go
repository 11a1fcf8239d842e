package cluster

// Membership reconciliation, run only on the leader. Gossip says who is
// alive, Raft's configuration says who votes. The leader adds alive members
// of this cluster through autopilot (as non-voters that autopilot promotes
// once they have caught up), fixes changed addresses, removes members that
// left gracefully, and re-adds a voter whose data was wiped as a fresh
// member. Dead members are autopilot's: removed after the grace period,
// within quorum limits (autopilot.go).

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

const reconcileInterval = time.Second

func (n *Node) reconcileLoop(ctx context.Context) {
	n.autopilot.Start(ctx)
	defer func() { <-n.autopilot.Stop() }()
	t := time.NewTicker(reconcileInterval)
	defer t.Stop()
	for {
		n.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.stop:
			return
		case <-t.C:
		case <-n.gossip.changed:
		}
	}
}

func (n *Node) reconcile(ctx context.Context) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.logger.Warn("reconcile: read raft configuration", "error", err)
		return
	}
	servers := make(map[string]raft.Server)
	for _, s := range f.Configuration().Servers {
		servers[string(s.ID)] = s
	}
	for _, m := range n.gossip.snapshot() {
		if ctx.Err() != nil || n.raft.State() != raft.Leader {
			return
		}
		if m.id == n.cfg.NodeID || m.meta.Raft == "" {
			continue
		}
		s, inConfig := servers[m.id]
		switch {
		case m.status == statusLeft && inConfig:
			n.removeLeft(m)
		case m.status != statusAlive:
			// Dead members are autopilot's, after the grace period.
		case !inConfig || string(s.Address) != m.meta.Raft:
			n.logger.Info("adding member", "member", m.id, "raft_addr", m.meta.Raft, "previous_addr", string(s.Address))
			n.addServer(m)
		}
	}
	n.autopilot.RemoveDeadServers()
}

// removeLeft removes a member that left and tells it so.
func (n *Node) removeLeft(m member) {
	n.logger.Info("removing member that left", "member", m.id)
	if err := n.removeServer(m.id); err != nil {
		n.logger.Warn("failed to remove member that left", "member", m.id, "error", err)
		return
	}
	n.gossip.tellRemoved(m)
}

// addServer adds a member as a non-voter (or updates a voter's address);
// autopilot promotes it once it is stable and caught up.
func (n *Node) addServer(m member) {
	err := n.autopilot.AddServer(&autopilot.Server{
		ID: raft.ServerID(m.id), Name: m.id, Address: raft.ServerAddress(m.meta.Raft),
		NodeStatus: autopilot.NodeAlive, RaftVersion: raft.ProtocolVersionMax, NodeType: autopilot.NodeVoter,
	})
	if err != nil {
		n.logger.Warn("failed to add member", "member", m.id, "error", err)
	}
}
