package cluster

import (
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"
)

// Status is a node's view of the cluster.
type Status struct {
	NodeID       string
	ClusterName  string
	State        string // Leader, Follower, Candidate, Shutdown
	LeaderID     string
	LeaderHTTP   string
	Term         uint64
	CommitIndex  uint64
	AppliedIndex uint64
	// LastContact is the time since this node last heard from the leader:
	// zero on the leader, negative when it never has.
	LastContact time.Duration
	Members     []MemberStatus
}

// MemberStatus is one node as gossip and Raft see it.
type MemberStatus struct {
	ID         string
	HTTPAddr   string
	RESPAddr   string // empty when the member serves no Redis protocol
	RaftAddr   string
	GossipAddr string
	// GossipStatus is alive, dead or left; "unknown" for a Raft server
	// gossip has not seen.
	GossipStatus string
	// Suffrage is voter, nonvoter, or none when not in the Raft
	// configuration.
	Suffrage string
	Leader   bool
	// LastContact is how long ago the member last heard from the leader,
	// as it reported in its latest gossip probe ack (its own view, taken
	// when the ack arrived; zero for the leader); negative when unknown.
	LastContact time.Duration
	// Health is autopilot's verdict on the leader ("healthy" when caught up
	// and in touch with the leader, else "unhealthy"); empty elsewhere.
	Health string
}

// Status reports the node's current view of the cluster.
func (n *Node) Status() Status {
	leaderID, leaderHTTP := n.leader()
	st := Status{
		NodeID:       n.cfg.NodeID,
		ClusterName:  n.cfg.ClusterName,
		State:        n.raft.State().String(),
		LeaderID:     leaderID,
		LeaderHTTP:   leaderHTTP,
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.state.AppliedIndex(),
		LastContact:  n.LastContact(),
	}
	byID := make(map[string]*MemberStatus)
	get := func(id string) *MemberStatus {
		m := byID[id]
		if m == nil {
			m = &MemberStatus{ID: id, GossipStatus: "unknown", Suffrage: "none", Leader: id == leaderID, LastContact: -1}
			if id == n.cfg.NodeID {
				m.LastContact = st.LastContact
			} else if n.gossip != nil {
				if ps, ok := n.gossip.peerStats(id); ok && ps.LastContactMS >= 0 && time.Since(ps.at) <= statsMaxAge {
					m.LastContact = time.Duration(ps.LastContactMS) * time.Millisecond
				}
			}
			if healthy, ok := n.pilot.health(id); ok && n.raft.State() == raft.Leader {
				m.Health = "unhealthy"
				if healthy {
					m.Health = "healthy"
				}
			}
			byID[id] = m
		}
		return m
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			m := get(string(s.ID))
			m.RaftAddr = string(s.Address)
			if s.Suffrage == raft.Voter {
				m.Suffrage = "voter"
			} else {
				m.Suffrage = "nonvoter"
			}
		}
	}
	if n.gossip != nil {
		suspects := n.gossip.suspects(time.Now())
		for _, gm := range n.gossip.snapshot() {
			m := get(gm.id)
			m.GossipStatus, m.GossipAddr, m.HTTPAddr, m.RESPAddr = gm.status, gm.gossipAddr, gm.meta.HTTP, gm.meta.RESP
			if gm.status == statusAlive && suspects[gm.id] {
				m.GossipStatus = "suspect"
			}
			if m.RaftAddr == "" {
				m.RaftAddr = gm.meta.Raft
			}
		}
	} else {
		m := get(n.cfg.NodeID)
		m.HTTPAddr, m.RESPAddr, m.GossipStatus = n.cfg.HTTPAddr, n.cfg.RESPAddr, "alive"
	}
	for _, m := range byID {
		st.Members = append(st.Members, *m)
	}
	sort.Slice(st.Members, func(i, j int) bool { return st.Members[i].ID < st.Members[j].ID })
	return st
}

// Ready reports whether the node can usefully serve: it knows a leader (and
// where to redirect to) and has applied every entry it knows is committed.
// When not ready, reason says why in a sentence.
func (n *Node) Ready() (ready bool, reason string) {
	if n.isShutdown.Load() {
		return false, "the node is shutting down"
	}
	if n.leaving.Load() {
		return false, "the node is leaving the cluster"
	}
	if id, addr := n.leader(); id == "" {
		return false, "no leader is known"
	} else if addr == "" {
		return false, "the leader's HTTP address is not known yet"
	}
	// raft's own applied index counts no-op and barrier entries the state
	// machine never sees, so it catches up with the commit index when idle.
	if applied, commit := n.raft.AppliedIndex(), n.raft.CommitIndex(); applied < commit {
		return false, fmt.Sprintf("still applying committed entries (%d of %d)", applied, commit)
	}
	return true, ""
}
