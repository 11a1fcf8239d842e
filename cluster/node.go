// Package cluster runs one countd node: hashicorp/raft with raft-boltdb
// storage, memberlist discovery, bootstrap, membership reconciliation on the
// leader, and the Apply and read paths. A Go program can embed a Node and
// call it directly, without HTTP. See DESIGN.md for the reasoning behind the
// bootstrap and read rules.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/countd/countd/fsm"
)

// Node is one member of a countd cluster.
type Node struct {
	cfg    Config
	logger *slog.Logger
	state  *fsm.State
	raft   *raft.Raft
	gossip *gossip // nil when gossip is disabled
	closer func() error
	// mints is the leader's mint cache for cached counters.
	mints *mintCache
	// stalls notes when this process last stopped running for a while
	// (stall.go).
	stalls *stallWatch
	// logStore is the kind of Raft log store the data dir holds
	// (LogStoreWAL or LogStoreBolt); "" in memory.
	logStore string

	// autopilot and pilot manage voting rights and dead members while this
	// node leads; nil without gossip.
	autopilot *autopilot.Autopilot
	pilot     *pilot
	leaving   atomic.Bool

	raftAddr string // actual Raft address after binding

	watches  *watchHub
	metrics  *nodeMetrics
	stopping chan struct{} // closed when shutdown begins

	notifyCh    chan bool
	stop        chan struct{}
	raftStopped chan struct{} // closed once raft.Shutdown has returned
	wg          sync.WaitGroup

	// readyTerm is the term whose Barrier this node completed as leader:
	// linearizable reads are served only when it equals the current term.
	// leaderSince is when this node last became a ready leader (Unix ns),
	// the start every session's TTL counts from at the earliest.
	leaderSince atomic.Int64
	readyMu     sync.Mutex
	readyTerm   uint64
	readyWake   chan struct{} // closed and replaced whenever readyTerm changes

	shutdownOnce sync.Once
	shutdownErr  error
	isShutdown   atomic.Bool
}

// Start opens the node's storage, starts Raft and gossip, and bootstraps or
// joins according to cfg. It returns once the node is running; it does not
// wait for a leader (see WaitLeader).
func Start(cfg Config) (*Node, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	n := &Node{
		cfg:         cfg,
		logger:      cfg.Logger.With("node", cfg.NodeID),
		watches:     newWatchHub(cfg.MaxWatchers),
		metrics:     newNodeMetrics(),
		stopping:    make(chan struct{}),
		notifyCh:    make(chan bool, 16),
		stop:        make(chan struct{}),
		raftStopped: make(chan struct{}),
		readyWake:   make(chan struct{}),
	}
	n.state = fsm.NewWithOptions(fsm.Options{WatchHistory: cfg.WatchHistory, WatchHistoryBytes: cfg.WatchHistoryBytes, OnChange: n.watches.changed})
	if err := n.startRaft(); err != nil {
		return nil, err
	}
	if err := n.startDiscovery(); err != nil {
		n.raft.Shutdown()
		_ = n.closer()
		return nil, err
	}
	n.mints = newMintCache(n)
	n.stalls = newStallWatch(n.cfg.HeartbeatTimeout, n.cfg.ElectionTimeout)
	n.wg.Add(3)
	go n.leadershipLoop()
	go func() { defer n.wg.Done(); n.mints.run(n.stop) }()
	go func() { defer n.wg.Done(); n.stalls.run(n.stop) }()
	return n, nil
}

func (n *Node) startRaft() error {
	cfg := &n.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	// Followers learn the commit index with the next append; keep that
	// prompt so stale reads on followers lag little.
	rc.CommitTimeout = 5 * time.Millisecond
	// Many concurrent writes become one append and one fsync.
	rc.MaxAppendEntries = 512
	rc.BatchApplyCh = true
	rc.NotifyCh = n.notifyCh
	rc.Logger = newHclog(cfg.Logger, "raft")
	rc.NoLegacyTelemetry = true
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}

	var (
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
		trans  raft.Transport
	)
	n.closer = func() error { return nil }
	if cfg.InMemory {
		store := raft.NewInmemStore()
		logs, stable, snaps = store, store, raft.NewInmemSnapshotStore()
		addr, t := raft.NewInmemTransport(raft.ServerAddress(cfg.RaftAddr))
		n.raftAddr, trans = string(addr), t
	} else {
		// The data dir holds the whole state, idempotency results and
		// ACL token hashes included: only the node's own user may read
		// it. raft's snapshot store creates its files with the process's
		// umask, which countd sets to 077; an embedding program should too.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
		if err := os.Chmod(cfg.DataDir, 0o700); err != nil {
			return fmt.Errorf("restrict data dir %s to its owner: %w", cfg.DataDir, err)
		}
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return err
		}
		kind, err := chooseLogStore(cfg.DataDir, cfg.LogStore)
		if err != nil {
			unlock()
			return err
		}
		store, err := openLogStore(cfg.DataDir, kind)
		if err != nil {
			unlock()
			return err
		}
		n.logStore = kind
		n.closer = func() error { defer unlock(); return store.close() }
		logs, stable = store.logs, store.stable
		fss, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, rc.Logger.Named("snapshots"))
		if err != nil {
			_ = n.closer()
			return fmt.Errorf("snapshot store: %w", err)
		}
		snaps = fss
		resolved, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
		if err != nil {
			_ = n.closer()
			return fmt.Errorf("raft address %q: %w", cfg.RaftAddr, err)
		}
		var advertise net.Addr // nil: advertise the port the transport bound
		if resolved.Port != 0 {
			advertise = resolved
		}
		ntc := &raft.NetworkTransportConfig{
			MaxPool: 5,
			// No pipelined replication. In raft v1.8.0, when a follower
			// rejects an append (it restarted behind, say), the pipeline's
			// decoder exits while the sender may be blocked handing the next
			// request to it: replication to that follower stops for good,
			// and raft.Shutdown then waits forever (jepsen-lite caught a
			// leader that had just left hanging exactly there;
			// hashicorp/raft#612, grafana/pyroscope#5518). Requests carry
			// up to MaxAppendEntries entries each, so synchronous
			// replication costs little on a LAN (hashicorp/raft#541).
			MaxRPCsInFlight: 1,
			Timeout:         10 * time.Second,
			Logger:          rc.Logger.Named("transport"),
		}
		var nt *raft.NetworkTransport
		if cfg.PeerTLS != nil {
			var sl *tlsStreamLayer
			if sl, err = newTLSStreamLayer(cfg.RaftAddr, advertise, *cfg.PeerTLS); err == nil {
				ntc.Stream = sl
				nt = raft.NewNetworkTransportWithConfig(ntc)
			}
		} else {
			nt, err = raft.NewTCPTransportWithConfig(cfg.RaftAddr, advertise, ntc)
		}
		if err != nil {
			_ = n.closer()
			return fmt.Errorf("raft transport on %s: %w", cfg.RaftAddr, err)
		}
		n.raftAddr, trans = string(nt.LocalAddr()), nt
	}
	hasState, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		_ = n.closer()
		return fmt.Errorf("check raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, &raftFSM{state: n.state, applySeconds: n.metrics.fsmApply, appliedMints: n.metrics.appliedMints}, logs, stable, snaps, trans)
	if err != nil {
		_ = n.closer()
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	n.logger.Info("raft started", "raft_addr", n.raftAddr, "has_state", hasState, "data_dir", cfg.DataDir)
	return nil
}

// startDiscovery starts gossip and decides how this node becomes part of a
// cluster: it already is one (has Raft state), bootstraps alone, waits for
// bootstrap-expect peers, or waits for a leader to add it.
func (n *Node) startDiscovery() error {
	cfg := &n.cfg
	hasState := n.hasRaftState()
	if cfg.GossipAddr != "" {
		g, err := newGossip(cfg, memberMeta{
			Cluster: cfg.ClusterName, HTTP: cfg.HTTPAddr, RESP: cfg.RESPAddr, Raft: n.raftAddr,
			Expect: cfg.BootstrapExpect, HasState: hasState, Version: metaVersion,
		}, n.localRaftStats, n.raft.LastIndex)
		if err != nil {
			return err
		}
		n.gossip = g
		n.autopilot = n.newAutopilot()
		if seeds := n.seeds(); len(seeds) > 0 {
			n.goRun(func() { g.joinLoop(seeds, n.stop) })
		}
		if !hasState {
			n.goRun(n.advertiseStateWhenSet)
		}
	}
	switch {
	case hasState:
		n.logger.Info("found existing raft state; not bootstrapping")
	case cfg.BootstrapExpect > 0 && n.gossip != nil:
		n.logger.Info("waiting for peers to bootstrap", "expect", cfg.BootstrapExpect)
		n.goRun(n.bootstrapLoop)
	case len(cfg.Join) == 0:
		return n.bootstrap([]raft.Server{{ID: raft.ServerID(cfg.NodeID), Address: raft.ServerAddress(n.raftAddr)}})
	default:
		n.logger.Info("waiting to be added to an existing cluster", "join", cfg.Join)
	}
	return nil
}

// seeds is the join list without this node's own gossip address.
func (n *Node) seeds() []string {
	var out []string
	for _, s := range n.cfg.Join {
		if s != n.cfg.GossipAddr {
			out = append(out, s)
		}
	}
	return out
}

func (n *Node) goRun(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func (n *Node) hasRaftState() bool { return n.raft.LastIndex() > 0 }

func (n *Node) bootstrap(servers []raft.Server) error {
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap raft: %w", err)
	}
	ids := make([]string, len(servers))
	for i, s := range servers {
		ids[i] = string(s.ID)
	}
	n.logger.Info("bootstrapped cluster", "servers", ids)
	if n.gossip != nil {
		n.gossip.setHasState()
	}
	return nil
}

// advertiseStateWhenSet flips the gossip has-state flag once this node holds
// any Raft log (bootstrapped, or added by a leader), so no peer ever counts it
// toward a fresh bootstrap again.
func (n *Node) advertiseStateWhenSet() {
	n.every(200*time.Millisecond, func() bool {
		if !n.hasRaftState() {
			return false
		}
		n.gossip.setHasState()
		return true
	})
}

// every calls step every interval until it returns true or the node stops.
func (n *Node) every(interval time.Duration, step func() (done bool)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
			if step() {
				return
			}
		}
	}
}

// State is the node's local state machine, for reads. Call ReadBarrier
// first unless a stale read is acceptable.
func (n *Node) State() *fsm.State { return n.state }

// ID is the node's ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// ClusterName is the name of the cluster the node belongs to.
func (n *Node) ClusterName() string { return n.cfg.ClusterName }

// HTTPAddr is the HTTP address this node advertises.
func (n *Node) HTTPAddr() string { return n.cfg.HTTPAddr }

// RaftAddr is the Raft address this node listens on.
func (n *Node) RaftAddr() string { return n.raftAddr }

// GossipAddr is the gossip address this node listens on ("" without gossip).
func (n *Node) GossipAddr() string {
	if n.gossip == nil {
		return ""
	}
	return n.gossip.addr
}

// MaxLogEntry is the largest log entry the node's log store takes, in
// bytes; 0 when it has no limit of its own.
func (n *Node) MaxLogEntry() int64 {
	if n.logStore == LogStoreWAL {
		return MaxWALEntry
	}
	return 0
}

// LogStore is the kind of Raft log store the node runs on (LogStoreWAL or
// LogStoreBolt), or "" in memory.
func (n *Node) LogStore() string { return n.logStore }

// MaxDocSize is the largest document this node writes, in bytes of JSON.
func (n *Node) MaxDocSize() int64 { return n.cfg.MaxDocSize }

// IsLeader reports whether this node currently believes it is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Apply replicates cmd and returns its result once the leader has applied it.
//
// Errors: a *fsm.Error for invalid input, on any node (nothing reached the
// log); ErrNotLeader (never appended, retry at the leader); ErrUnavailable
// (never appended, retry); ErrUnknownResult (the command may or may not
// have been applied — retry with the same idempotency key). Rule refusals
// (conflict, overflow, …) are not errors here: they come back in
// Result.Err, because they are decided by the log and remembered for
// idempotent replays.
func (n *Node) Apply(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	return n.apply(ctx, cmd, true)()
}

// Submit is Apply in two steps: it appends cmd and returns a func that
// waits for the outcome (call it once). Commands one goroutine submits
// one after another are appended, and applied, in that order, so a
// pipeline of writes (a Redis client's) replicates together and still in
// order.
func (n *Node) Submit(ctx context.Context, cmd fsm.Command) func() (fsm.Result, error) {
	return n.apply(ctx, cmd, true)
}

// apply submits cmd; without countMints the IDs a next mints are left for
// the caller to count (the mint cache counts what it hands out, not the
// blocks it reserves).
func (n *Node) apply(ctx context.Context, cmd fsm.Command, countMints bool) func() (fsm.Result, error) {
	start := time.Now()
	cmd.Time = start.UnixNano()
	cmd.KeyWindow = n.cfg.IdempotencyWindow
	cmd.MaxDocSize = n.cfg.MaxDocSize
	// The one check of the input before the log, before the leader check
	// so that a follower refuses bad input rather than redirecting it.
	data, err := fsm.Encode(cmd)
	if err != nil {
		return done(fsm.Result{}, err) // bad input is not an apply outcome: no metric
	}
	wait := n.replicate(ctx, cmd.Payload.Op(), data)
	return func() (fsm.Result, error) {
		res, err := wait()
		n.metrics.observeApply(start, res, err, countMints)
		return res, err
	}
}

// done is an outcome known at once, as a wait func.
func done(res fsm.Result, err error) func() (fsm.Result, error) {
	return func() (fsm.Result, error) { return res, err }
}

// replicate appends an encoded command as leader and returns the wait for
// its result.
func (n *Node) replicate(ctx context.Context, op fsm.Op, data []byte) func() (fsm.Result, error) {
	if n.raft.State() != raft.Leader {
		return done(fsm.Result{}, n.notLeader())
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := ctx.Err(); err != nil || timeout <= 0 {
		// raft reads a timeout ≤ 0 as none at all; a caller that has
		// given up must not have its command appended.
		return done(fsm.Result{}, fmt.Errorf("apply %s: %w: %v", op, ErrUnavailable, context.DeadlineExceeded))
	}
	f := n.raft.Apply(data, timeout)
	return func() (fsm.Result, error) {
		// The future resolves on commit or on loss of leadership (a leader
		// cut off from its quorum steps down after LeaderLeaseTimeout);
		// await also gives up when this node stops.
		if err := n.await(f); err != nil {
			return fsm.Result{}, n.applyError(op, err)
		}
		return *f.Response().(*fsm.Result), nil
	}
}

// await waits for a raft future, but gives up with raft.ErrRaftShutdown once
// this node has stopped Raft. hashicorp/raft can leave a future it accepted
// unanswered when it shuts down first: a command still buffered in its apply
// channel or queued for its FSM goroutine. Its log futures carry no shutdown
// channel, so Error() would block forever.
func (n *Node) await(f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }() // left blocked only in that shutdown case
	select {
	case err := <-done:
		return err
	case <-n.raftStopped:
		return raft.ErrRaftShutdown
	}
}

// applyError sorts raft's errors into never-appended (safe to retry
// anywhere) and indeterminate (retry only with the same idempotency key).
func (n *Node) applyError(op fsm.Op, err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader):
		return n.notLeader()
	case errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("apply %s: %w: %v", op, ErrUnavailable, err)
	default: // ErrLeadershipLost, ErrRaftShutdown, and anything new
		return fmt.Errorf("apply %s: %w: %v", op, ErrUnknownResult, err)
	}
}

// leader is the current leader's ID and HTTP address, either empty when
// unknown (an election, or gossip has not told us the address yet).
// NotLeader is nil on the leader, and elsewhere the *NotLeaderError that
// sends a request on to the leader (with an empty LeaderHTTP when no leader
// is known).
func (n *Node) NotLeader() error {
	if n.IsLeader() {
		return nil
	}
	return n.notLeader()
}

func (n *Node) leader() (id, httpAddr string) {
	_, rid := n.raft.LeaderWithID()
	if rid == "" {
		return "", ""
	}
	return string(rid), n.httpAddrOf(string(rid))
}

// notLeader describes the current leader, if any, for a redirect.
func (n *Node) notLeader() error {
	id, addr := n.leader()
	return &NotLeaderError{LeaderID: id, LeaderHTTP: addr, LeaderRESP: n.metaOf(id).RESP}
}

func (n *Node) httpAddrOf(id string) string { return n.metaOf(id).HTTP }

// metaOf is what member id advertises about itself: this node's own
// addresses for itself, gossip's record for others, nothing when unknown.
func (n *Node) metaOf(id string) memberMeta {
	if id == n.cfg.NodeID {
		return memberMeta{HTTP: n.cfg.HTTPAddr, RESP: n.cfg.RESPAddr}
	}
	if n.gossip != nil && id != "" {
		if m, ok := n.gossip.lookup(id); ok {
			return m.meta
		}
	}
	return memberMeta{}
}

// Consistency selects how fresh a read must be.
type Consistency uint8

const (
	// Linearizable reads reflect every write acknowledged before they began.
	// They are served only by the leader.
	Linearizable Consistency = iota
	// Stale reads are served from this node's state at once, however far it
	// lags the leader.
	Stale
)

// ReadBarrier returns nil once a read of State() at the given consistency
// may begin. For a linearizable read, this node must be the leader, must
// have applied everything committed before its term (the Barrier it runs on
// election), and must confirm with a quorum that it is still the leader.
// Every acknowledged write was applied by the leader before it was
// acknowledged, so the local state then holds all of them.
func (n *Node) ReadBarrier(ctx context.Context, c Consistency) error {
	if c == Stale {
		return nil
	}
	_, err := n.confirmLeadership(ctx)
	return err
}

// confirmLeadership is the linearizable read's barrier (see ReadBarrier):
// it returns once this node is the leader, has applied everything earlier
// terms committed, and a quorum has confirmed no newer leader exists, all
// after the call began. It returns the term it confirmed.
func (n *Node) confirmLeadership(ctx context.Context) (uint64, error) {
	for {
		if n.raft.State() != raft.Leader {
			return 0, n.notLeader()
		}
		term := n.raft.CurrentTerm()
		n.readyMu.Lock()
		ready, wake := n.readyTerm, n.readyWake
		n.readyMu.Unlock()
		if ready == term {
			if err := n.verifyLeadership(); err != nil {
				return 0, err
			}
			if n.raft.CurrentTerm() != term {
				continue // lost and regained leadership meanwhile; redo the checks
			}
			return term, nil
		}
		// A new leader has not finished its barrier yet; it usually takes
		// one fsync.
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for leader barrier: %w", ErrUnavailable)
		case <-time.After(n.cfg.ElectionTimeout):
		}
	}
}

// verifyLeadership confirms with a quorum that this node still leads, after
// the call began: a heartbeat round (VerifyLeader), or, just after this
// process stalled, a committed log entry, which raft's stale replies
// cannot confirm (stall.go).
func (n *Node) verifyLeadership() error {
	var f raft.Future
	if n.stalls.recent() {
		n.metrics.logConfirmations.Inc()
		f = n.raft.Barrier(n.cfg.ApplyTimeout)
	} else {
		f = n.raft.VerifyLeader()
	}
	switch err := n.await(f); {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrRaftShutdown), errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("verify leader: %w", ErrUnavailable)
	default:
		return n.notLeader()
	}
}

// LastContact is how long ago this node last heard from the leader; zero on
// the leader itself.
func (n *Node) LastContact() time.Duration {
	if n.raft.State() == raft.Leader {
		return 0
	}
	lc := n.raft.LastContact()
	if lc.IsZero() {
		return -1
	}
	return time.Since(lc)
}

// WaitLeader blocks until the cluster has a leader whose HTTP address this
// node knows, or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if n.raft.State() == raft.Leader {
			return nil
		}
		if _, addr := n.leader(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// leadershipLoop reacts to this node gaining and losing leadership. It reads
// raft's NotifyCh, which (unlike LeaderCh) delivers every transition.
func (n *Node) leadershipLoop() {
	defer n.wg.Done()
	stopLeading := func() {}
	defer func() { stopLeading() }()
	for {
		select {
		case <-n.stop:
			return
		case leader := <-n.notifyCh:
			stopLeading()
			stopLeading = func() {}
			if leader {
				ctx, cancel := context.WithCancel(context.Background())
				stopLeading = cancel
				n.logger.Info("became leader", "term", n.raft.CurrentTerm())
				n.goRun(func() { n.lead(ctx) })
			} else {
				n.logger.Info("lost leadership")
			}
		}
	}
}

// lead is the leader's work for one term: a Barrier so reads see every
// earlier commit, then membership reconciliation until leadership ends.
func (n *Node) lead(ctx context.Context) {
	term := n.raft.CurrentTerm()
	for {
		err := n.await(n.raft.Barrier(n.cfg.ApplyTimeout))
		if err == nil {
			break
		}
		n.logger.Warn("failed to wait for barrier", "error", err)
		if n.raft.State() != raft.Leader {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	since := time.Now().UnixNano()
	n.leaderSince.Store(since)
	n.readyMu.Lock()
	n.readyTerm = term
	close(n.readyWake)
	n.readyWake = make(chan struct{})
	n.readyMu.Unlock()
	n.goRun(func() { n.expireSessions(ctx, since) })
	n.applyInitialManagementToken(ctx)
	if n.gossip != nil {
		n.reconcileLoop(ctx)
	}
}

// InitialManagementAccessor is the accessor of the token
// Config.InitialManagementToken creates.
const InitialManagementAccessor = "initial-management"

// applyInitialManagementToken bootstraps ACLs with the operator's token
// once per cluster. Several leaders in a row may try; the first to commit
// wins and the others see that the cluster is bootstrapped.
func (n *Node) applyInitialManagementToken(ctx context.Context) {
	h := n.cfg.InitialManagementToken
	if h == (fsm.SecretHash{}) || n.state.ACLBootstrapped() {
		return
	}
	res, err := n.Apply(ctx, fsm.Command{Payload: fsm.ACLBootstrap{Accessor: InitialManagementAccessor, SecretHash: h,
		Description: "initial management token (-acl-initial-management-token-file)"}})
	switch {
	case err != nil:
		n.logger.Warn("could not apply the initial management token; the next leader will", "error", err)
	case res.Err != nil:
		n.logger.Info("ACLs were already bootstrapped; the initial management token is not used", "reason", res.Err)
	default:
		n.logger.Info("bootstrapped ACLs with the initial management token", "index", res.Index)
	}
}

// PrepareShutdown hands leadership to another voter if this node leads, so
// the cluster keeps serving while this node stops. Call it before stopping
// the HTTP server, so clients are redirected rather than refused.
func (n *Node) PrepareShutdown() {
	if n.raft.State() != raft.Leader {
		return
	}
	if f := n.raft.GetConfiguration(); f.Error() != nil || len(f.Configuration().Servers) < 2 {
		return // nobody to hand over to
	}
	if err := n.await(n.raft.LeadershipTransfer()); err != nil {
		n.logger.Warn("leadership transfer before shutdown failed", "error", err)
		return
	}
	n.logger.Info("handed over leadership before shutdown")
}

// Shutdown stops the node: leadership is handed over if possible, Raft is
// stopped (everything acknowledged is already fsync'd), gossip stops, and
// storage is closed. Unless Leave ran first, it stays in the Raft
// configuration: a restart with the same data dir within the dead-node
// grace period rejoins as a voter (later, as a new member).
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		close(n.stopping)
		n.watches.close()
		n.PrepareShutdown()
		n.isShutdown.Store(true)
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		close(n.raftStopped)
		close(n.stop)
		if n.gossip != nil {
			n.gossip.shutdown()
		}
		n.wg.Wait()
		if err := n.closer(); err != nil {
			errs = append(errs, fmt.Errorf("close raft store: %w", err))
		}
		n.shutdownErr = errors.Join(errs...)
		n.logger.Info("node stopped")
	})
	return n.shutdownErr
}
