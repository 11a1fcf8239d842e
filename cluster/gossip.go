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
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// metaVersion is the gossip metadata format version.
const metaVersion = 1

// memberMeta is what a node tells the others about itself. It must fit in
// memberlist's 512-byte metadata limit; short JSON keys keep it well under.
type memberMeta struct {
	Cluster string `json:"c"`
	HTTP    string `json:"h"`
	// RESP is the node's Redis-protocol address; empty when it has none.
	RESP     string `json:"p,omitempty"`
	Raft     string `json:"r"`
	Expect   int    `json:"e"`
	HasState bool   `json:"s"`
	Version  int    `json:"v"`
	// Leaving is set just before a graceful leave. memberlist's event
	// delegate reports a leave exactly like a death (the node's own state
	// field is not updated), so this is how the leader tells a member that
	// left, to be removed at once, from one that died, to be given the
	// grace period.
	Leaving bool `json:"l,omitempty"`
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
	// since is when this node first saw the member in its current status:
	// the dead-node grace period counts from it.
	since time.Time
	meta  memberMeta
}

// raftStats is what a node reports about its Raft log in every gossip probe
// ack (memberlist's ping delegate). The leader's autopilot needs each
// server's progress to decide when a new member has caught up; riding on
// the probes memberlist already sends costs no extra connection, and every
// node probes every other one every few seconds.
type raftStats struct {
	LastTerm  uint64 `json:"t"`
	LastIndex uint64 `json:"i"`
	// LastContactMS is how long ago the member last heard from a leader:
	// 0 on the leader, -1 when it never has.
	LastContactMS int64 `json:"c"`
}

// peerStats is a member's last reported raftStats as this node received it.
type peerStats struct {
	raftStats
	at time.Time // when the ack arrived
	// behind is how many entries the member's log trailed this node's log
	// when the ack arrived. The leader compares it with its own log later,
	// so a busy leader's log growing between probes does not make a healthy
	// follower look further behind than it was.
	behind uint64
}

// gossip owns this node's memberlist and a member table of its own, fed by
// memberlist's event delegate. Memberlist's *Node values are its internal
// state, rewritten under its own lock (an alive message can change a node's
// address), so none of them is kept or used outside a delegate callback:
// everything this package needs is copied into member while the callback
// runs, and messages are addressed from those copies.
type gossip struct {
	ml      *memberlist.Memberlist
	cluster string
	logger  *slog.Logger
	// name and addr are this node's gossip name and advertised host:port,
	// fixed once memberlist has bound its port.
	name string
	addr string
	// probeInterval is memberlist's: one member is probed per interval.
	probeInterval time.Duration
	// peer signs this node's membership notices and checks others'; nil
	// without TLS (see notice.go).
	peer *PeerTLS

	// local reports this node's Raft progress for probe acks; lastIndex is
	// the cheap part of it, for measuring how far behind a peer is.
	local     func() raftStats
	lastIndex func() uint64

	mu      sync.Mutex
	self    memberMeta
	members map[string]member
	stats   map[string]peerStats
	// leaving holds members that announced a graceful leave directly.
	leaving map[string]bool
	// removed is closed when the leader tells this node it has been
	// removed from the Raft configuration (see removedMsg).
	removed     chan struct{}
	removedOnce sync.Once
	// changed is signalled (never blocking) whenever the member table
	// changes; the bootstrapper and reconciler wait on it.
	changed chan struct{}
}

func newGossip(cfg *Config, self memberMeta, local func() raftStats, lastIndex func() uint64) (*gossip, error) {
	host, portStr, err := net.SplitHostPort(cfg.GossipAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.GossipAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip port %q: %w", portStr, err)
	}
	g := &gossip{
		cluster:   cfg.ClusterName,
		peer:      cfg.PeerTLS,
		logger:    cfg.Logger.With("component", "gossip"),
		self:      self,
		local:     local,
		lastIndex: lastIndex,
		members:   make(map[string]member),
		stats:     make(map[string]peerStats),
		leaving:   make(map[string]bool),
		removed:   make(chan struct{}),
		changed:   make(chan struct{}, 1),
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
	mc.Ping = g
	mc.Logger = newHclog(cfg.Logger, "memberlist").StandardLogger(nil)
	// Every packet and stream carries the cluster name; memberlist drops
	// any with another label, so two clusters never merge, key or not.
	mc.Label = cfg.ClusterName
	if len(cfg.GossipKeys) > 0 {
		kr, err := memberlist.NewKeyring(cfg.GossipKeys, cfg.GossipKeys[0])
		if err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
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
	g.name = cfg.NodeID
	// The only read of memberlist's own node struct: nothing else runs yet.
	g.addr = ml.LocalNode().Address()
	g.probeInterval = mc.ProbeInterval
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

// User messages, sent over memberlist's TCP channel: a tag byte and a
// notice (notice.go).
const (
	// leavingMsg: sent to every member just before a node leaves.
	leavingMsg = 'L'
	// removedMsg: the leader tells a node that left that it is out of the
	// Raft configuration. Raft stops replicating to a removed server at
	// once, so the entry that removes it often never reaches it.
	removedMsg = 'R'
)

// send delivers a user message to m over memberlist's TCP channel. The
// destination is built from this package's own copy of m's address, never
// from memberlist's node table (see gossip).
func (g *gossip) send(m member, msg []byte) error {
	host, portStr, err := net.SplitHostPort(m.gossipAddr)
	if err != nil {
		return fmt.Errorf("gossip address %q of %s: %w", m.gossipAddr, m.id, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("gossip port %q of %s: %w", portStr, m.id, err)
	}
	to := &memberlist.Node{Name: m.id, Addr: net.ParseIP(host), Port: uint16(port)}
	return g.ml.SendReliable(to, msg)
}

// tellRemoved tells the member that left that the leader removed it.
// Best effort: without it the leaving node only waits longer.
func (g *gossip) tellRemoved(m member) {
	msg, err := makeNotice(removedMsg, g.cluster, m.id, g.name, g.peer, time.Now())
	if err == nil {
		err = g.send(m, msg)
	}
	if err != nil {
		g.logger.Debug("could not tell a removed member", "member", m.id, "error", err)
	}
}

// leave announces a graceful leave, then leaves memberlist. Each member is
// told directly first: memberlist reports a leave like a death, and the
// leaving flag in the metadata alone can be lost, because a queued
// broadcast about a node is replaced by the next one about the same node.
func (g *gossip) leave(timeout time.Duration) error {
	g.mu.Lock()
	g.self.Leaving = true
	g.mu.Unlock()
	msg, err := makeNotice(leavingMsg, g.cluster, g.name, g.name, g.peer, time.Now())
	if err != nil {
		return fmt.Errorf("announce leave: %w", err)
	}
	for _, m := range g.snapshot() {
		if m.id == g.name || m.status != statusAlive {
			continue
		}
		if err := g.send(m, msg); err != nil {
			g.logger.Warn("could not tell a member this node is leaving", "member", m.id, "error", err)
		}
	}
	if err := g.ml.UpdateNode(timeout); err != nil {
		g.logger.Warn("failed to gossip the leaving flag", "error", err)
	}
	if err := g.ml.Leave(timeout); err != nil {
		return fmt.Errorf("leave gossip: %w", err)
	}
	return nil
}

// snapshot returns the member table sorted by ID.
func (g *gossip) snapshot() []member {
	g.mu.Lock()
	defer g.mu.Unlock()
	return sortedMembers(g.members)
}

// sortedMembers is the table's members ordered by ID: the bootstrap plan
// and the reconciler depend on every node seeing the same order.
func sortedMembers(table map[string]member) []member {
	out := make([]member, 0, len(table))
	for _, m := range table {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b member) int { return strings.Compare(a.id, b.id) })
	return out
}

func (g *gossip) lookup(id string) (member, bool) { return lockedGet(&g.mu, g.members, id) }

// lockedGet reads one entry of a table the mutex guards.
func lockedGet[V any](mu *sync.Mutex, table map[string]V, id string) (V, bool) {
	mu.Lock()
	defer mu.Unlock()
	v, ok := table[id]
	return v, ok
}

// shutdown stops gossip without announcing a leave: the others see this
// node fail, and it keeps its place in the Raft configuration for the
// dead-node grace period (a restart within it rejoins as a voter). A leave
// is announced only by Node.Leave.
func (g *gossip) shutdown() {
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
	// With TLS only a signed notice counts: metadata can be gossiped by
	// any holder of the gossip key, not only by the node itself.
	if status == statusDead && (meta.Leaving && g.peer == nil || g.leaving[n.Name]) {
		status = statusLeft
	}
	if status == statusAlive {
		delete(g.leaving, n.Name) // it came back
	}
	since := time.Now()
	if old, ok := g.members[n.Name]; ok && old.status == status {
		since = old.since
	}
	g.members[n.Name] = member{id: n.Name, gossipAddr: n.Address(), status: status, since: since, meta: meta}
	if status != statusAlive {
		delete(g.stats, n.Name)
	}
	g.mu.Unlock()
	g.signal()
}

// NotifyJoin implements memberlist.EventDelegate.
func (g *gossip) NotifyJoin(n *memberlist.Node) { g.record(n, statusAlive) }

// NotifyLeave implements memberlist.EventDelegate.
func (g *gossip) NotifyLeave(n *memberlist.Node) { g.record(n, statusDead) }

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

// signal wakes the bootstrapper or reconciler without ever blocking
// memberlist's event delivery.
func (g *gossip) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// suspects is the set of alive members that have missed this node's
// probes: no probe ack since the later of when one last answered and when
// it became alive, for longer than two probe rounds. Memberlist keeps its
// own suspect state private (its event delegate reports only alive, dead
// and left, and the State field of the nodes Members returns is never
// updated), so this is our own reading of the same signal, for display
// only: no decision depends on it.
func (g *gossip) suspects(now time.Time) map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return suspectsOf(g.members, g.stats, g.name, g.probeInterval, now)
}

// suspectsOf is suspects as a pure function of the member table. Memberlist
// probes the other members round-robin, one per interval, in an order it
// shuffles every round, so two probes of one member can be almost two
// rounds apart; a member gets two rounds and one interval more.
func suspectsOf(members map[string]member, stats map[string]peerStats, self string, probeInterval time.Duration, now time.Time) map[string]bool {
	others := 0
	for id, m := range members {
		if id != self && m.status == statusAlive {
			others++
		}
	}
	limit := time.Duration(2*others+1) * probeInterval
	out := make(map[string]bool)
	for id, m := range members {
		if id == self || m.status != statusAlive {
			continue
		}
		heard := m.since
		if st, ok := stats[id]; ok && st.at.After(heard) {
			heard = st.at
		}
		if now.Sub(heard) > limit {
			out[id] = true
		}
	}
	return out
}

// peerStats returns the member's last reported Raft progress.
func (g *gossip) peerStats(id string) (peerStats, bool) { return lockedGet(&g.mu, g.stats, id) }

// AckPayload implements memberlist.PingDelegate: every probe ack carries
// this node's Raft progress.
func (g *gossip) AckPayload() []byte {
	b, err := json.Marshal(g.local())
	if err != nil {
		return nil
	}
	return b
}

// NotifyPingComplete implements memberlist.PingDelegate.
func (g *gossip) NotifyPingComplete(other *memberlist.Node, _ time.Duration, payload []byte) {
	var st raftStats
	if len(payload) == 0 || json.Unmarshal(payload, &st) != nil {
		return // an older node, or a probe answered before raft started
	}
	ps := peerStats{raftStats: st, at: time.Now()}
	if mine := g.lastIndex(); mine > st.LastIndex {
		ps.behind = mine - st.LastIndex
	}
	g.mu.Lock()
	g.stats[other.Name] = ps
	g.mu.Unlock()
}

// NotifyMsg implements memberlist.Delegate: a member announcing its
// graceful leave, or the leader confirming this node's removal. A notice
// that does not authenticate (see notice.go) changes nothing.
func (g *gossip) NotifyMsg(b []byte) {
	nt, err := readNotice(b, g.cluster, g.peer, time.Now())
	if err != nil {
		g.logger.Warn("ignoring a membership notice", "reason", err)
		return
	}
	switch {
	case nt.Kind == removedMsg && nt.Node == g.name:
		g.removedOnce.Do(func() { close(g.removed) })
		return
	case nt.Kind != leavingMsg:
		return
	}
	id := nt.Node
	g.mu.Lock()
	g.leaving[id] = true
	if m, ok := g.members[id]; ok && m.status == statusDead {
		m.status = statusLeft
		g.members[id] = m
	}
	g.mu.Unlock()
	g.signal()
}

// GetBroadcasts implements memberlist.Delegate.
func (g *gossip) GetBroadcasts(int, int) [][]byte { return nil }

// LocalState implements memberlist.Delegate.
func (g *gossip) LocalState(bool) []byte { return nil }

// MergeRemoteState implements memberlist.Delegate.
func (g *gossip) MergeRemoteState([]byte, bool) {}
