package cluster

// Membership reconciliation, run only on the leader: gossip says who is
// alive, Raft's configuration says who votes; the leader adds alive members
// of this cluster as voters (or fixes their address). Removing members is
// left to explicit operations for now; a node that stops stays a voter and
// rejoins when it restarts.

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

const reconcileInterval = time.Second

func (n *Node) reconcileLoop(ctx context.Context) {
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
	voters := make(map[raft.ServerID]raft.ServerAddress)
	for _, s := range f.Configuration().Servers {
		voters[s.ID] = s.Address
	}
	for _, m := range n.gossip.snapshot() {
		if ctx.Err() != nil {
			return
		}
		if m.status != statusAlive || m.id == n.cfg.NodeID || m.meta.Raft == "" {
			continue
		}
		addr, ok := voters[raft.ServerID(m.id)]
		if ok && string(addr) == m.meta.Raft {
			continue
		}
		n.logger.Info("adding voter", "member", m.id, "raft_addr", m.meta.Raft, "previous_addr", string(addr))
		err := n.await(n.raft.AddVoter(raft.ServerID(m.id), raft.ServerAddress(m.meta.Raft), 0, 5*time.Second))
		if err != nil {
			n.logger.Warn("failed to add voter", "member", m.id, "error", err)
		}
	}
}
