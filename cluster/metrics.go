package cluster

// Prometheus metrics of one node. Raft's own numbers (state, term, indexes,
// voters) are read from raft when a scrape asks, so they cost nothing
// between scrapes and can never go stale; what only exists as it happens
// (state machine and Apply latencies, IDs minted) is recorded on the hot
// path into pre-resolved metrics, one atomic add or histogram observation
// each.

import (
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/countd/countd/fsm"
)

// latencyBuckets span 100µs to 10s: an Apply waits for an fsync on a
// quorum, which takes from well under a millisecond (tmpfs) to seconds (a
// struggling disk or an election).
var latencyBuckets = prometheus.ExponentialBucketsRange(0.0001, 10, 16)

// LatencyBuckets are the histogram buckets, in seconds, of countd's request
// latencies; the HTTP layer uses them too so its histograms line up with
// Apply's.
func LatencyBuckets() []float64 { return append([]float64(nil), latencyBuckets...) }

// nodeMetrics is what a node records as it happens.
type nodeMetrics struct {
	fsmApply prometheus.Histogram
	apply    *prometheus.HistogramVec
	applyOK  prometheus.Observer // apply's children, resolved once
	applyErr prometheus.Observer
	minted   prometheus.Counter
	// appliedMints counts, on every node alike, the IDs minted through
	// the log as this node applied them.
	appliedMints prometheus.Counter
	// sessionsExpired counts sessions this node ended as leader.
	sessionsExpired prometheus.Counter
	// logConfirmations counts leadership confirmations made through the
	// log because the process had just stalled (stall.go).
	logConfirmations prometheus.Counter
}

func newNodeMetrics() *nodeMetrics {
	m := &nodeMetrics{
		fsmApply: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "countd_fsm_apply_duration_seconds",
			Help: "Time the state machine spent applying one batch of committed log entries.",
			// A batch is in-memory work: microseconds, up to about a
			// second for a large item batch or snapshot-sized document.
			Buckets: prometheus.ExponentialBucketsRange(0.000001, 1, 13),
		}),
		apply: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "countd_apply_duration_seconds",
			Help:    "Time from Node.Apply being called to its result, by outcome: ok (committed and applied, rule refusals included) or error (not leader, unavailable, or unknown result).",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
		minted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "countd_minted_ids_total",
			Help: "IDs minted by counter next commands this node applied as leader (idempotent replays excluded).",
		}),
	}
	m.appliedMints = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "countd_applied_minted_ids_total",
		Help: "IDs minted by the counter next entries this node applied, leader or follower alike, so any node shows the cluster's mint rate (a cached counter's block counts whole when it is reserved; countd_minted_ids_total on the leader counts what it hands out).",
	})
	m.sessionsExpired = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "countd_sessions_expired_total",
		Help: "Sessions this node ended as leader because their holder stopped renewing them.",
	})
	m.logConfirmations = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "countd_log_leadership_confirmations_total",
		Help: "Linearizable reads and cached-mint rounds whose leadership check committed a log entry instead of a heartbeat round, because this process had just stopped running for half a heartbeat timeout or more (a pause, a stall).",
	})
	m.applyOK = m.apply.WithLabelValues("ok")
	m.applyErr = m.apply.WithLabelValues("error")
	return m
}

// observeApply records one Node.Apply call that began at start. Without
// countMints its IDs are not counted as minted: a cached counter's block
// reservation is not, its values are as the cache hands them out
// (observeCachedMint).
func (m *nodeMetrics) observeApply(start time.Time, res fsm.Result, err error, countMints bool) {
	if err != nil {
		m.applyErr.Observe(time.Since(start).Seconds())
		return
	}
	m.applyOK.Observe(time.Since(start).Seconds())
	if countMints {
		m.observeMinted(res)
	}
}

// observeCachedMint records a cached next's outcome.
func (m *nodeMetrics) observeCachedMint(res fsm.Result, err error) {
	if err == nil {
		m.observeMinted(res)
	}
}

func (m *nodeMetrics) observeMinted(res fsm.Result) {
	if mint, ok := res.Value.(*fsm.Mint); ok && res.Err == nil && !res.Replayed {
		m.minted.Add(float64(mint.Count))
	}
}

// raftStates are the values of countd_raft_state's label, in a fixed order
// so every scrape lists the same series.
var raftStates = []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}

var (
	descRaftState = prometheus.NewDesc("countd_raft_state",
		"Raft state of this node: 1 for the current state, 0 for the others.", []string{"state"}, nil)
	descRaftTerm = prometheus.NewDesc("countd_raft_term",
		"Current Raft term.", nil, nil)
	descCommitIndex = prometheus.NewDesc("countd_raft_commit_index",
		"Highest log index this node knows to be committed.", nil, nil)
	descRaftApplied = prometheus.NewDesc("countd_raft_applied_index",
		"Highest log index raft has handed to the state machine, counting entries the state machine never sees (no-ops, barriers, configuration changes).", nil, nil)
	descFSMApplied = prometheus.NewDesc("countd_fsm_applied_index",
		"Highest log index the state machine has applied: the index reads on this node reflect.", nil, nil)
	descLastLog = prometheus.NewDesc("countd_raft_last_log_index",
		"Index of the last entry in this node's Raft log, committed or not.", nil, nil)
	descLastContact = prometheus.NewDesc("countd_raft_last_contact_seconds",
		"Seconds since this node last heard from the leader: 0 on the leader, -1 if it never has.", nil, nil)
	descVoters = prometheus.NewDesc("countd_raft_voters",
		"Voters in the latest Raft configuration this node knows.", nil, nil)
	descIsLeader = prometheus.NewDesc("countd_is_leader",
		"1 if this node is the Raft leader, else 0.", nil, nil)
	descSessions = prometheus.NewDesc("countd_sessions",
		"Live sessions in this node's state.", nil, nil)
)

// nodeCollector reads a node's Raft gauges at scrape time and reports its
// recorded metrics alongside them.
type nodeCollector struct{ n *Node }

// Collector is the node's metrics, for registering with a Prometheus
// registry. Register it once per registry: every call describes the same
// metrics, so a second registration fails as a duplicate.
func (n *Node) Collector() prometheus.Collector { return nodeCollector{n} }

// Describe implements prometheus.Collector.
func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftState, descRaftTerm, descCommitIndex, descRaftApplied,
		descFSMApplied, descLastLog, descLastContact, descVoters, descIsLeader, descSessions} {
		ch <- d
	}
	c.recorded(func(col prometheus.Collector) { col.Describe(ch) })
}

// Collect implements prometheus.Collector.
func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.n.raft
	state := r.State()
	for _, s := range raftStates {
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, boolFloat(s == state), strings.ToLower(s.String()))
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(descRaftTerm, float64(r.CurrentTerm()))
	gauge(descCommitIndex, float64(r.CommitIndex()))
	gauge(descRaftApplied, float64(r.AppliedIndex()))
	gauge(descFSMApplied, float64(c.n.state.AppliedIndex()))
	gauge(descLastLog, float64(r.LastIndex()))
	lastContact := -1.0
	if lc := c.n.LastContact(); lc >= 0 {
		lastContact = lc.Seconds()
	}
	gauge(descLastContact, lastContact)
	gauge(descVoters, float64(c.n.voters()))
	gauge(descIsLeader, boolFloat(state == raft.Leader))
	gauge(descSessions, float64(c.n.state.SessionCount()))
	c.recorded(func(col prometheus.Collector) { col.Collect(ch) })
}

func (c nodeCollector) recorded(f func(prometheus.Collector)) {
	m := c.n.metrics
	for _, col := range []prometheus.Collector{m.fsmApply, m.apply, m.minted, m.appliedMints, m.sessionsExpired, m.logConfirmations} {
		f(col)
	}
}

// voters counts the voters in the latest configuration; raft answers
// GetConfiguration from a copy it keeps, without a round trip through its
// main loop.
func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	count := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			count++
		}
	}
	return count
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
