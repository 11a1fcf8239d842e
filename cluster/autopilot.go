package cluster

// Membership decisions that need care, delegated to hashicorp/raft-autopilot
// (the library Consul and Nomad use): new members join as non-voters and are
// promoted once they have kept up with the leader for PromoteAfter; failed
// members are removed only within quorum limits — at most (voters-1)/2 at a
// time and never below bootstrap-expect voters. This file is the
// application side autopilot asks: who is known, how far along each server
// is, and how to remove a failed one (after the dead-node grace period).

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
)

const (
	// lastContactThreshold: a server that has not heard from the leader for
	// longer is unhealthy. The leader heartbeats every HeartbeatTimeout/10;
	// stats arrive with gossip probes and may be a little old.
	lastContactThreshold = time.Second
	// maxTrailingLogs: a server further behind the leader's log than this is
	// not caught up, and is not promoted to voter.
	maxTrailingLogs = 1000
	// statsMaxAge: probe stats older than this (a member probes each other
	// one every ProbeInterval × members) are treated as missing.
	statsMaxAge = 10 * time.Second
	// autopilotInterval is how often autopilot refreshes its view and
	// reconciles voting rights.
	autopilotInterval = 500 * time.Millisecond
)

// pilot implements autopilot.ApplicationIntegration for a Node.
type pilot struct {
	n     *Node
	state atomic.Pointer[autopilot.State]
}

func (n *Node) newAutopilot() *autopilot.Autopilot {
	n.pilot = &pilot{n: n}
	return autopilot.New(n.raft, n.pilot,
		autopilot.WithLogger(newHclog(n.cfg.Logger, "autopilot")),
		autopilot.WithReconcileInterval(autopilotInterval),
		autopilot.WithUpdateInterval(autopilotInterval),
	)
}

// AutopilotConfig implements autopilot.ApplicationIntegration.
func (p *pilot) AutopilotConfig() *autopilot.Config {
	return &autopilot.Config{
		CleanupDeadServers:      true,
		LastContactThreshold:    lastContactThreshold,
		MaxTrailingLogs:         maxTrailingLogs,
		MinQuorum:               uint(p.n.cfg.BootstrapExpect),
		ServerStabilizationTime: p.n.cfg.PromoteAfter,
	}
}

// NotifyState implements autopilot.ApplicationIntegration; the state feeds
// the health column of Status.
func (p *pilot) NotifyState(s *autopilot.State) { p.state.Store(s) }

// health reports autopilot's verdict on a server, when this node leads.
func (p *pilot) health(id string) (healthy, known bool) {
	if p == nil {
		return false, false
	}
	s := p.state.Load()
	if s == nil {
		return false, false
	}
	srv, ok := s.Servers[raft.ServerID(id)]
	if !ok {
		return false, false
	}
	return srv.Health.Healthy, true
}

// FetchServerStats implements autopilot.ApplicationIntegration from the
// stats gossip probes carry. A server with no recent stats gets a negative
// last contact, which autopilot reads as unhealthy (it would otherwise keep
// the last stats it saw).
func (p *pilot) FetchServerStats(_ context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	out := make(map[raft.ServerID]*autopilot.ServerStats, len(servers))
	mine := p.n.localRaftStats()
	for id := range servers {
		if string(id) == p.n.cfg.NodeID {
			out[id] = &autopilot.ServerStats{LastContact: 0, LastTerm: mine.LastTerm, LastIndex: mine.LastIndex}
			continue
		}
		st, ok := p.n.gossip.peerStats(string(id))
		if !ok || time.Since(st.at) > statsMaxAge || st.LastContactMS < 0 {
			out[id] = &autopilot.ServerStats{LastContact: -1}
			continue
		}
		index := st.LastIndex
		if mine.LastIndex > st.behind {
			index = max(index, mine.LastIndex-st.behind)
		}
		out[id] = &autopilot.ServerStats{
			LastContact: time.Duration(st.LastContactMS) * time.Millisecond,
			LastTerm:    st.LastTerm,
			LastIndex:   index,
		}
	}
	return out
}

// KnownServers implements autopilot.ApplicationIntegration: every member
// gossip knows of, plus every Raft server gossip has not heard of (yet) as
// "unknown". Leaving one out would make autopilot remove it as stale the
// moment a freshly elected leader's gossip table is still filling up.
func (p *pilot) KnownServers() map[raft.ServerID]*autopilot.Server {
	leaderID, _ := p.n.leader()
	out := make(map[raft.ServerID]*autopilot.Server)
	for _, m := range p.n.gossip.snapshot() {
		status := autopilot.NodeAlive
		switch m.status {
		case statusDead:
			status = autopilot.NodeFailed
		case statusLeft:
			status = autopilot.NodeLeft
		}
		out[raft.ServerID(m.id)] = &autopilot.Server{
			ID: raft.ServerID(m.id), Name: m.id, Address: raft.ServerAddress(m.meta.Raft),
			NodeStatus: status, Version: strconv.Itoa(m.meta.Version), RaftVersion: raft.ProtocolVersionMax,
			IsLeader: m.id == leaderID, NodeType: autopilot.NodeVoter,
		}
	}
	if f := p.n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if _, ok := out[s.ID]; !ok {
				out[s.ID] = &autopilot.Server{
					ID: s.ID, Name: string(s.ID), Address: s.Address, NodeStatus: autopilot.NodeUnknown,
					RaftVersion: raft.ProtocolVersionMax, IsLeader: string(s.ID) == leaderID, NodeType: autopilot.NodeVoter,
				}
			}
		}
	}
	return out
}

// RemoveFailedServer implements autopilot.ApplicationIntegration. Autopilot
// has already applied the quorum limits; this adds the grace period: a
// member that left is removed at once, a dead one only after gossip has
// reported it dead for DeadNodeGrace, and one gossip does not know at all
// never automatically.
func (p *pilot) RemoveFailedServer(srv *autopilot.Server) {
	n := p.n
	m, ok := n.gossip.lookup(string(srv.ID))
	switch {
	case !ok:
		return
	case m.status == statusLeft:
		n.removeLeft(m)
		return
	case m.status == statusDead && time.Since(m.since) >= n.cfg.DeadNodeGrace:
		n.logger.Warn("removing dead member after the grace period", "member", m.id,
			"dead_for", time.Since(m.since).Round(time.Second), "grace", n.cfg.DeadNodeGrace)
	default:
		return
	}
	if err := n.removeServer(m.id); err != nil {
		n.logger.Warn("failed to remove member", "member", m.id, "error", err)
	}
}

// removeServer takes id out of the Raft configuration (leader only).
func (n *Node) removeServer(id string) error {
	return n.await(n.raft.RemoveServer(raft.ServerID(id), 0, 5*time.Second))
}

// localRaftStats is this node's Raft progress, for probe acks and autopilot.
func (n *Node) localRaftStats() raftStats {
	st := raftStats{LastIndex: n.raft.LastIndex(), LastContactMS: -1}
	st.LastTerm, _ = strconv.ParseUint(n.raft.Stats()["last_log_term"], 10, 64)
	if lc := n.LastContact(); lc >= 0 {
		st.LastContactMS = lc.Milliseconds()
	}
	return st
}
