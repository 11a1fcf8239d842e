package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/countd/countd/fsm"
)

// Default Raft timing, chosen for a LAN (sub-millisecond round trips).
// Followers notice a dead leader after one to two heartbeat timeouts; an
// election then takes one round trip, or another election timeout when two
// candidates split the vote. Shorter values fail over faster but mistake a
// busy or briefly paused node (GC, a loaded host) for a dead one, which
// costs an election and some unavailability; see README "Failover speed".
const (
	DefaultHeartbeatTimeout   = 150 * time.Millisecond
	DefaultElectionTimeout    = 150 * time.Millisecond
	DefaultLeaderLeaseTimeout = 150 * time.Millisecond
	DefaultIdempotencyWindow  = 10 * time.Minute
	// DefaultMaxDocSize is the largest document, in bytes of JSON (SPEC §12).
	DefaultMaxDocSize   = 1 << 20
	DefaultApplyTimeout = 10 * time.Second
	// DefaultDeadNodeGrace is how long gossip must report a member dead
	// before the leader removes it from the Raft configuration. A node that
	// restarts within it keeps its vote.
	DefaultDeadNodeGrace = 2 * time.Minute
	// DefaultPromoteAfter is how long a new member must keep up with the
	// leader before it becomes a voter.
	DefaultPromoteAfter = 3 * time.Second
)

// Config describes one node. A node binds and advertises exactly the
// addresses it is given.
type Config struct {
	// NodeID is the node's stable identity: its Raft server ID and its
	// gossip name. It must not change across restarts.
	NodeID string
	// ClusterName keeps nodes of different clusters from joining each other.
	ClusterName string
	// DataDir holds the Raft log, stable store and snapshots.
	DataDir string
	// InMemory keeps all Raft state in memory (countd -dev): nothing
	// survives the process.
	InMemory bool
	// HTTPAddr is the host:port clients reach this node's HTTP API at; it is
	// advertised to other nodes so they can redirect to the leader.
	HTTPAddr string
	// RESPAddr is the host:port of this node's Redis-protocol front end,
	// empty when it serves none; it is advertised like HTTPAddr, so
	// followers can send Redis clients on to the leader.
	RESPAddr string
	// RaftAddr is the host:port of the Raft TCP transport.
	RaftAddr string
	// GossipAddr is the host:port memberlist binds. Empty disables gossip:
	// the node runs alone (InMemory dev mode).
	GossipAddr string
	// Join lists gossip addresses of other nodes. Joining is retried with
	// backoff until one answers; it is never fatal.
	Join []string
	// LogStore is the Raft log store a new data dir gets: LogStoreWAL (the
	// default) or LogStoreBolt. A data dir that already holds one keeps
	// it, whatever this says.
	LogStore string
	// BootstrapExpect, when > 0, makes the node wait until that many nodes
	// (all without Raft state) are seen in gossip and then bootstrap them
	// together. Zero with no Join: bootstrap alone. Zero with Join: join an
	// existing cluster and wait to be added.
	BootstrapExpect int

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// IdempotencyWindow is how long an Idempotency-Key is remembered.
	IdempotencyWindow time.Duration
	// ApplyTimeout bounds a write when the caller's context has no deadline.
	ApplyTimeout time.Duration
	// WatchHistory is how many versions of changes each document keeps for
	// watchers that resume (default fsm.DefaultWatchHistory).
	WatchHistory int
	// WatchHistoryBytes bounds the change histories of all documents
	// together (default fsm.DefaultWatchHistoryBytes); past it the oldest
	// versions go first and watchers that need them get a reset.
	WatchHistoryBytes int64
	// MaxDocSize is the largest a document may become, in bytes of JSON
	// (default DefaultMaxDocSize). The leader stamps it into each document
	// write, so a patch is judged by one limit on every replica.
	MaxDocSize int64
	// MaxWatchers bounds concurrent blocking queries and watches (default
	// DefaultMaxWatchers).
	MaxWatchers int
	// DeadNodeGrace is how long a member must be dead in gossip before the
	// leader removes it (default DefaultDeadNodeGrace); removals never go
	// below BootstrapExpect voters or remove a majority.
	DeadNodeGrace time.Duration
	// PromoteAfter is how long a new member must stay caught up before it is
	// promoted from non-voter to voter (default DefaultPromoteAfter).
	PromoteAfter time.Duration
	// TrailingLogs is how many log entries a snapshot leaves behind the last
	// one, so that a follower only a little behind catches up from the log
	// rather than by installing the whole snapshot. Zero means raft's
	// default (10240). Tests set it low to force snapshot installs.
	TrailingLogs uint64

	// GossipKeys encrypt and authenticate gossip with memberlist's keyring:
	// the first key encrypts, every key decrypts, and gossip without one of
	// them is dropped both ways. Keys rotate by adding the new one second,
	// then moving it first on every node, then dropping the old one. Each is
	// 16, 24 or 32 bytes (AES-128/192/256). Empty: gossip in clear, fit only
	// for loopback.
	GossipKeys [][]byte
	// PeerTLS, when set, makes the Raft transport mutual TLS: peers must
	// present a node certificate of the CA.
	PeerTLS *PeerTLS
	// InitialManagementToken, when not zero, is the hash of a management
	// token's secret the operator chose: a leader of a cluster whose ACLs
	// were never bootstrapped bootstraps them with it (accessor
	// InitialManagementAccessor), so automation need not call the
	// bootstrap endpoint.
	InitialManagementToken fsm.SecretHash

	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	orDefault(&c.ClusterName, "countd")
	orDefault(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	orDefault(&c.ElectionTimeout, DefaultElectionTimeout)
	orDefault(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	orDefault(&c.IdempotencyWindow, DefaultIdempotencyWindow)
	orDefault(&c.ApplyTimeout, DefaultApplyTimeout)
	orDefault(&c.WatchHistory, fsm.DefaultWatchHistory)
	orDefault(&c.WatchHistoryBytes, fsm.DefaultWatchHistoryBytes)
	orDefault(&c.MaxDocSize, DefaultMaxDocSize)
	orDefault(&c.LogStore, LogStoreWAL)
	orDefault(&c.MaxWatchers, DefaultMaxWatchers)
	orDefault(&c.DeadNodeGrace, DefaultDeadNodeGrace)
	orDefault(&c.PromoteAfter, DefaultPromoteAfter)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// orDefault sets an unset (zero) setting to its default.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

func (c *Config) validate() error {
	var errs []error
	if err := fsm.CheckName("node id", c.NodeID); err != nil {
		errs = append(errs, err)
	}
	if err := fsm.CheckName("cluster name", c.ClusterName); err != nil {
		errs = append(errs, err)
	} else if len(c.ClusterName) > memberlist.LabelMaxSize {
		// The name labels every gossip packet.
		errs = append(errs, fmt.Errorf("cluster name must be at most %d bytes, got %d", memberlist.LabelMaxSize, len(c.ClusterName)))
	}
	for i, k := range c.GossipKeys {
		if err := memberlist.ValidateKey(k); err != nil {
			errs = append(errs, fmt.Errorf("gossip key %d: %w (it is %d bytes)", i+1, err, len(k)))
		}
	}
	if c.PeerTLS != nil && (c.PeerTLS.KeyPair == nil || c.PeerTLS.CA == nil) {
		errs = append(errs, errors.New("raft TLS needs both a certificate and a CA"))
	} else if c.PeerTLS != nil {
		// Membership notices are honoured only from the node they name
		// (notice.go): the certificate is the node's identity.
		if leaf := c.PeerTLS.KeyPair.Certificate().Leaf; leaf == nil || !certNames(leaf, c.NodeID) {
			errs = append(errs, fmt.Errorf("the TLS certificate is not issued to node %q (its common name or a DNS name must be the node ID; countctl tls cert create --name %s)", c.NodeID, c.NodeID))
		}
	}
	if c.DataDir == "" && !c.InMemory {
		errs = append(errs, errors.New("a data dir is required"))
	}
	for _, a := range []struct{ name, addr string }{{"http", c.HTTPAddr}, {"raft", c.RaftAddr}, {"gossip", c.GossipAddr}, {"resp", c.RESPAddr}} {
		name, addr := a.name, a.addr
		if ((name == "gossip" || name == "resp") && addr == "") || (name == "raft" && c.InMemory) {
			continue // gossip is optional; an in-memory node's Raft transport has no port
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s address %q: %w", name, addr, err))
		}
	}
	if c.GossipAddr == "" && (len(c.Join) > 0 || c.BootstrapExpect > 1) {
		errs = append(errs, errors.New("joining other nodes needs a gossip address"))
	}
	if c.BootstrapExpect < 0 {
		errs = append(errs, fmt.Errorf("bootstrap-expect must not be negative, got %d", c.BootstrapExpect))
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("leader lease timeout %s must not exceed the heartbeat timeout %s", c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	if c.WatchHistory < 0 {
		errs = append(errs, fmt.Errorf("watch history must not be negative, got %d", c.WatchHistory))
	}
	if c.LogStore != LogStoreWAL && c.LogStore != LogStoreBolt {
		errs = append(errs, fmt.Errorf("log store must be %s or %s, got %q", LogStoreWAL, LogStoreBolt, c.LogStore))
	}
	if c.WatchHistoryBytes < 0 {
		errs = append(errs, fmt.Errorf("watch history bytes must not be negative, got %d", c.WatchHistoryBytes))
	}
	if c.MaxDocSize < 0 {
		errs = append(errs, fmt.Errorf("max doc size must not be negative, got %d", c.MaxDocSize))
	}
	if c.MaxWatchers < 0 {
		errs = append(errs, fmt.Errorf("max watchers must not be negative, got %d", c.MaxWatchers))
	}
	if c.DeadNodeGrace < 0 {
		errs = append(errs, fmt.Errorf("dead node grace must not be negative, got %s", c.DeadNodeGrace))
	}
	if c.PromoteAfter < 0 {
		errs = append(errs, fmt.Errorf("promote-after must not be negative, got %s", c.PromoteAfter))
	}
	if c.IdempotencyWindow < 0 {
		errs = append(errs, fmt.Errorf("idempotency window must not be negative, got %s", c.IdempotencyWindow))
	}
	return errors.Join(errs...)
}
