package cluster

// Operator actions on membership: a graceful leave, a leadership transfer,
// and force-removing a dead member.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/countd/countd/fsm"
)

// LeaveResult says what a graceful leave did.
type LeaveResult struct {
	// TransferredLeadership is true when this node led and handed
	// leadership to another voter first.
	TransferredLeadership bool
	// Removed is true once this node knows it is out of the Raft
	// configuration: the leader confirmed it (Confirmed), this node removed
	// itself as leader, or, when no confirmation came before the deadline,
	// its own latest configuration lacks it (an entry that may not have
	// been committed). False means none of these: the leader has not
	// removed it yet (it will, since gossip reports the node as left).
	Removed bool
	// Confirmed is true when the leader told this node, after committing
	// the change, that it removed it. Raft stops replicating to a removed
	// server at once, so this notice is often the only word of its removal
	// a leaving node gets.
	Confirmed bool
}

// Leave takes this node out of the cluster gracefully, the way Consul
// servers leave: a leader hands leadership to another voter first, the node
// leaves gossip, and the leader, seeing it leave, removes it from the Raft
// configuration and tells this node so; Leave waits (until ctx ends) for
// that confirmation. The remaining nodes keep serving throughout. Call
// Shutdown afterwards; a restart with the same data dir rejoins as a new
// member.
func (n *Node) Leave(ctx context.Context) (LeaveResult, error) {
	var res LeaveResult
	if n.gossip == nil {
		return res, &fsm.Error{Code: fsm.CodeConflict, Message: "this node runs without gossip (-dev) and has no cluster to leave"}
	}
	if !n.leaving.CompareAndSwap(false, true) {
		return res, &fsm.Error{Code: fsm.CodeConflict, Message: "this node is already leaving"}
	}
	n.logger.Info("leaving the cluster")
	// A node outside the configuration (removed earlier, or never added)
	// has nothing to wait for.
	member := n.inConfiguration(n.cfg.NodeID)
	if n.raft.State() == raft.Leader && n.otherVoters() > 0 {
		if err := n.await(n.raft.LeadershipTransfer()); err == nil {
			res.TransferredLeadership = true
			n.logger.Info("handed over leadership before leaving")
		} else {
			// Still the leader: remove ourselves. Raft commits the change
			// with the remaining voters and then steps down.
			n.logger.Warn("leadership transfer failed; removing this node as leader", "error", err)
			if err := n.removeServer(n.cfg.NodeID); err != nil {
				return res, fmt.Errorf("remove this node from the raft configuration: %w", err)
			}
			member = false // committed: the removal needs no confirmation
		}
	}
	lastVoter := n.otherVoters() == 0
	if err := n.gossip.leave(2 * time.Second); err != nil {
		return res, err
	}
	if !member {
		res.Removed = true
		return res, nil
	}
	if lastVoter {
		// Nobody is left to remove it, and a configuration without voters
		// could never elect a leader again: it stays, and a restart with
		// its data dir brings the cluster back.
		n.logger.Info("this node is the last voter; it stays in the raft configuration")
		return res, nil
	}
	// Wait for the leader's notice. This node's own configuration may show
	// the removal sooner, from an entry the leader sent but had not yet
	// committed: that counts only when no notice comes in time.
	select {
	case <-n.gossip.removed:
		res.Removed, res.Confirmed = true, true
		n.logger.Info("the leader removed this node from the raft configuration")
	case <-ctx.Done():
		if !n.inConfiguration(n.cfg.NodeID) {
			res.Removed = true
			n.logger.Warn("this node's configuration no longer lists it, but the leader has not confirmed the removal")
		} else {
			n.logger.Warn("left gossip, but this node has not seen its removal from the raft configuration")
		}
	}
	return res, nil
}

// Leaving reports whether Leave has begun.
func (n *Node) Leaving() bool { return n.leaving.Load() }

// otherVoters counts the voters in the configuration other than this node.
func (n *Node) otherVoters() int {
	if s, ok := n.server(n.cfg.NodeID); ok && s.Suffrage == raft.Voter {
		return n.voters() - 1
	}
	return n.voters()
}

// inConfiguration reports whether id is in this node's latest Raft
// configuration.
func (n *Node) inConfiguration(id string) bool {
	_, ok := n.server(id)
	return ok
}

func (n *Node) server(id string) (raft.Server, bool) {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return raft.Server{}, false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s, true
		}
	}
	return raft.Server{}, false
}

// TransferLeadership hands leadership to the voter named to, or to the
// most up-to-date other voter when to is empty, and returns the new
// leader's ID once this node knows it. Only the leader can do this; others
// get a NotLeaderError.
func (n *Node) TransferLeadership(ctx context.Context, to string) (string, error) {
	if n.raft.State() != raft.Leader {
		return "", n.notLeader()
	}
	var f raft.Future
	switch {
	case to == n.cfg.NodeID:
		return to, nil // already there
	case to != "":
		s, ok := n.server(to)
		if !ok {
			return "", &fsm.Error{Code: fsm.CodeNotFound, Message: fmt.Sprintf("%s is not a member of the raft configuration", to)}
		}
		if s.Suffrage != raft.Voter {
			return "", &fsm.Error{Code: fsm.CodeConflict, Message: fmt.Sprintf("%s is not a voter yet, so it cannot lead", to)}
		}
		f = n.raft.LeadershipTransferToServer(s.ID, s.Address)
	default:
		if n.otherVoters() == 0 {
			return "", &fsm.Error{Code: fsm.CodeConflict, Message: "there is no other voter to hand leadership to"}
		}
		f = n.raft.LeadershipTransfer()
	}
	if err := n.await(f); err != nil {
		return "", fmt.Errorf("transfer leadership: %w: %v", ErrUnavailable, err)
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if id, _ := n.leader(); id != "" && id != n.cfg.NodeID {
			n.logger.Info("transferred leadership", "to", id)
			return id, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("transfer leadership: waiting for the new leader: %w", ErrUnavailable)
		case <-t.C:
		}
	}
}

// RemoveMember force-removes a member from the Raft configuration, for a
// node that is gone for good. A member gossip reports alive is refused: it
// would be added back at once, and a node that should go should leave
// itself. Only the leader can do this.
func (n *Node) RemoveMember(id string) error {
	if err := fsm.CheckName("member id", id); err != nil {
		return err
	}
	if n.raft.State() != raft.Leader {
		return n.notLeader()
	}
	if id == n.cfg.NodeID {
		return &fsm.Error{Code: fsm.CodeConflict, Message: fmt.Sprintf("%s is the leader; make it leave (POST /v1/cluster/leave on it) instead", id)}
	}
	if !n.inConfiguration(id) {
		return &fsm.Error{Code: fsm.CodeNotFound, Message: fmt.Sprintf("%s is not a member of the raft configuration", id)}
	}
	if n.gossip != nil {
		if m, ok := n.gossip.lookup(id); ok && m.status == statusAlive {
			return &fsm.Error{Code: fsm.CodeConflict, Message: fmt.Sprintf("%s is alive; stop it or make it leave (POST /v1/cluster/leave on it) instead", id)}
		}
	}
	if err := n.removeServer(id); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return n.notLeader()
		}
		return fmt.Errorf("remove %s: %w: %v", id, ErrUnavailable, err)
	}
	n.logger.Warn("force-removed member", "member", id)
	return nil
}
