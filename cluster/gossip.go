package cluster

// Discovery through hashicorp/memberlist. Each node gossips a small metadata
// record (cluster name, Raft and HTTP addresses, bootstrap-expect, whether it
// has Raft state); the bootstrapper and the leader's reconciler read the
// member table this file keeps up to date from memberlist's events.

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// metaVersion is the gossip metadata format version.
const metaVersion = 1

// memberMeta is what a node tells the others about itself. It must fit in
// memberlist's 512-byte metadata limit; short JSON keys keep it well under.
type memberMeta struct {
	Cluster  string `json:"c"`
	HTTP     string `json:"h"`
	Raft     string `json:"r"`
	Expect   int    `json:"e"`
	HasState bool   `json:"s"`
	Version  int    `json:"v"`
}

// Gossip statuses as reported in the member table.
const (
	statusAlive = "alive"
	statusDead  = "dead"
	statusLeft  = "left"
)

type member struct {
	id         string
	gossipAddr string
	status     string
	meta       memberMeta
}

type gossip struct {
	ml      *memberlist.Memberlist
	cluster string
	logger  *slog.Logger

	mu      sync.Mutex
	self    memberMeta
	members map[string]member
	// changed is signalled (never blocking) whenever the member table
	// changes; the bootstrapper and reconciler wait on it.
	changed chan struct{}
}

func newGossip(cfg *Config, self memberMeta) (*gossip, error) {
	host, portStr, err := net.SplitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip port %q: %w", portStr, err)
	}
	g := &gossip{
		cluster: cfg.ClusterName,
		logger:  cfg.Logger.With("component", "gossip"),
		self:    self,
		members: make(map[string]member),
		changed: make(chan struct{}, 1),
	}
	if b, _ := json.Marshal(self); len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("gossip metadata is %d bytes, over memberlist's %d-byte limit (shorten the addresses or cluster name)", len(b), memberlist.MetaMaxSize)
	}
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = host, port
	mc.Delegate = g
	mc.Events = g
	mc.Logger = newHclog(cfg.Logger, "memberlist").StandardLogger(nil)
	// A LAN of a few nodes: notice failures within a couple of seconds and
	// let a restarted node refute its death quickly.
	mc.ProbeInterval = 500 * time.Millisecond
	mc.ProbeTimeout = 250 * time.Millisecond
	mc.GossipInterval = 100 * time.Millisecond
	mc.PushPullInterval = 10 * time.Second
	mc.TCPTimeout = 2 * time.Second
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.GossipAddr, err)
	}
	g.ml = ml
	return g, nil
}

// joinLoop keeps trying the seeds with backoff until one answers or stop is
// closed. A node that cannot reach anyone yet is not broken: the others may
// simply not have started.
func (g *gossip) joinLoop(seeds []string, stop <-chan struct{}) {
	backoff := 100 * time.Millisecond
	for {
		n, err := g.ml.Join(seeds)
		if n > 0 {
			g.logger.Info("joined gossip", "contacted", n, "seeds", seeds)
			return
		}
		g.logger.Warn("gossip join failed, will retry", "seeds", seeds, "error", err, "retry_in", backoff)
		select {
		case <-stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// setHasState advertises that this node now has Raft state, so no peer
// counts it toward a fresh bootstrap.
func (g *gossip) setHasState() {
	g.mu.Lock()
	if g.self.HasState {
		g.mu.Unlock()
		return
	}
	g.self.HasState = true
	g.mu.Unlock()
	if err := g.ml.UpdateNode(time.Second); err != nil {
		g.logger.Warn("failed to gossip updated metadata", "error", err)
	}
}

// snapshot returns the member table sorted by ID.
func (g *gossip) snapshot() []member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b member) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return out
}

func (g *gossip) lookup(id string) (member, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.members[id]
	return m, ok
}

func (g *gossip) leave(timeout time.Duration) {
	if err := g.ml.Leave(timeout); err != nil {
		g.logger.Warn("gossip leave", "error", err)
	}
	if err := g.ml.Shutdown(); err != nil {
		g.logger.Warn("gossip shutdown", "error", err)
	}
}

// record updates the table from a memberlist event. Nodes of another
// cluster are ignored (and logged): they must never become Raft peers.
func (g *gossip) record(n *memberlist.Node, status string) {
	var meta memberMeta
	if err := json.Unmarshal(n.Meta, &meta); err != nil {
		g.logger.Warn("ignoring gossip member with unreadable metadata", "member", n.Name, "error", err)
		return
	}
	if meta.Cluster != g.cluster {
		g.logger.Warn("ignoring gossip member of another cluster", "member", n.Name, "cluster", meta.Cluster)
		return
	}
	g.mu.Lock()
	g.members[n.Name] = member{id: n.Name, gossipAddr: n.Address(), status: status, meta: meta}
	g.mu.Unlock()
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// NotifyJoin implements memberlist.EventDelegate.
func (g *gossip) NotifyJoin(n *memberlist.Node) { g.record(n, statusAlive) }

// NotifyLeave implements memberlist.EventDelegate.
func (g *gossip) NotifyLeave(n *memberlist.Node) {
	status := statusDead
	if n.State == memberlist.StateLeft {
		status = statusLeft
	}
	g.record(n, status)
}

// NotifyUpdate implements memberlist.EventDelegate.
func (g *gossip) NotifyUpdate(n *memberlist.Node) { g.record(n, statusAlive) }

// NodeMeta implements memberlist.Delegate.
func (g *gossip) NodeMeta(limit int) []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, err := json.Marshal(g.self)
	if err != nil || len(b) > limit {
		// Checked at start-up; the fields never grow afterwards.
		panic(fmt.Sprintf("cluster: gossip metadata does not fit (%d > %d bytes): %v", len(b), limit, err))
	}
	return b
}

// NotifyMsg implements memberlist.Delegate; countd sends no user messages.
func (g *gossip) NotifyMsg([]byte) {}

// GetBroadcasts implements memberlist.Delegate.
func (g *gossip) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (g *gossip) LocalState(bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (g *gossip) MergeRemoteState([]byte, bool) {}
