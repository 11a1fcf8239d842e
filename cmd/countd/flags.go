package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/fsm"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/respapi"
)

// options is everything countd can be told on the command line or through
// COUNTD_* environment variables.
type options struct {
	nodeID          string
	dataDir         string
	httpAddr        string
	raftAddr        string
	respAddr        string
	gossipAddr      string
	join            string
	bootstrapExpect int
	clusterName     string
	dev             bool

	idempotencyWindow  time.Duration
	maxBody            byteSize
	maxDocSize         byteSize
	logStore           string
	memoryLimit        byteSize
	watchHistoryBytes  byteSize
	maxRestore         byteSize
	maxBatch           int
	watchHistory       int
	maxWatchers        int
	heartbeatTimeout   time.Duration
	electionTimeout    time.Duration
	leaderLeaseTimeout time.Duration
	deadNodeGrace      time.Duration
	promoteAfter       time.Duration
	leaveOnTerminate   bool

	logFormat string
	logLevel  string
	pprofAddr string

	forwardWrites bool

	respRedirect    string
	respIdleTimeout time.Duration
	respMaxPipeline int

	tlsCA             string
	tlsCert           string
	tlsKey            string
	tlsVerifyIncoming bool
	gossipKey         string
	gossipKeyFile     string
	gossipKeys        [][]byte // -gossip-key, decoded by checkSecurityFlags
	allowedOrigins    string
	bodyTimeout       time.Duration
	maxConnsPerClient int
	acl               bool
	aclInitialToken   string
	insecure          bool
}

// parseOptions reads flags, with COUNTD_<FLAG> environment variables as
// defaults (flag name upper-cased, dashes as underscores). An explicit flag
// wins over the environment.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	host, _ := os.Hostname()
	o := &options{maxBody: httpapi.DefaultMaxBody, maxRestore: httpapi.DefaultMaxRestore,
		maxDocSize: cluster.DefaultMaxDocSize, watchHistoryBytes: fsm.DefaultWatchHistoryBytes,
		memoryLimit: defaultMemoryLimit}
	fs := flag.NewFlagSet("countd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.nodeID, "node-id", host, "stable node ID: Raft server ID and gossip name; never change it for a data dir")
	fs.StringVar(&o.dataDir, "data-dir", "data", "directory for the Raft log, stable store and snapshots")
	fs.StringVar(&o.logStore, "log-store", cluster.LogStoreWAL, "Raft log store of a new data dir: wal (raft-wal, one fsync per append) or bolt (raft-boltdb); a data dir keeps the store it has")
	fs.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "host:port to serve the HTTP API on (also advertised to other nodes)")
	fs.StringVar(&o.respAddr, "resp-addr", "", "host:port to serve the Redis protocol (RESP2) on, with the same TLS and ACLs as HTTP (off when empty; also advertised to other nodes)")
	fs.StringVar(&o.respRedirect, "resp-redirect", respapi.RedirectTry, "how a follower sends Redis clients to the leader: try (-TRY host:port, as SummitDB) or moved (-MOVED slot host:port, for Redis Cluster clients)")
	fs.DurationVar(&o.respIdleTimeout, "resp-idle-timeout", respapi.DefaultIdleTimeout, "close a Redis-protocol connection that sends nothing for this long")
	fs.IntVar(&o.respMaxPipeline, "resp-max-pipeline", respapi.DefaultMaxPipeline, "most commands of one Redis-protocol connection in flight at once; reading more waits for their answers")
	fs.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:8300", "host:port for Raft traffic (bound and advertised)")
	fs.StringVar(&o.gossipAddr, "gossip-addr", "127.0.0.1:8301", "host:port for gossip (memberlist, TCP and UDP)")
	fs.StringVar(&o.join, "join", "", "comma-separated gossip addresses of other nodes; retried until one answers")
	fs.IntVar(&o.bootstrapExpect, "bootstrap-expect", 0, "bootstrap once this many nodes are seen (all started with the same value)")
	fs.StringVar(&o.clusterName, "cluster", "countd", "cluster name; nodes of other clusters are ignored")
	fs.BoolVar(&o.dev, "dev", false, "run one in-memory node on 127.0.0.1:8080 for trying things out (nothing is kept)")
	fs.DurationVar(&o.idempotencyWindow, "idempotency-window", cluster.DefaultIdempotencyWindow, "how long an Idempotency-Key is remembered")
	fs.Var(&o.maxBody, "max-body", "largest request body, or Redis command, accepted (bytes, or with KiB/MiB/GiB)")
	fs.Var(&o.maxRestore, "max-restore-size", "largest backup POST /v1/snapshot accepts; the restore is one Raft log entry this large (bytes, or with KiB/MiB/GiB)")
	fs.IntVar(&o.maxBatch, "max-batch", httpapi.DefaultMaxBatch, "most items one POST /v1/items may carry, and most arguments of one Redis command")
	fs.IntVar(&o.watchHistory, "watch-history", fsm.DefaultWatchHistory, "versions of changes kept per document for watchers that resume; older resume points get a reset")
	fs.Var(&o.watchHistoryBytes, "watch-history-bytes", "bytes of document change history this node keeps for all documents together; the oldest versions go first (bytes, or with KiB/MiB/GiB)")
	fs.Var(&o.memoryLimit, "memory-limit", "soft limit on the Go heap: below it garbage is collected lazily (GOGC=400), at it as often as needed; it never stays below twice the live heap (bytes, or with KiB/MiB/GiB; GOGC or GOMEMLIMIT in the environment turn this off)")
	fs.Var(&o.maxDocSize, "max-doc-size", "largest document, in bytes of JSON, a put or patch may make; larger gets 413 (bytes, or with KiB/MiB/GiB)")
	fs.IntVar(&o.maxWatchers, "max-watchers", cluster.DefaultMaxWatchers, "most blocking queries and document watches this node serves at once")
	fs.DurationVar(&o.heartbeatTimeout, "heartbeat-timeout", cluster.DefaultHeartbeatTimeout, "Raft heartbeat timeout: followers call an election after 1-2x this without the leader")
	fs.DurationVar(&o.electionTimeout, "election-timeout", cluster.DefaultElectionTimeout, "Raft election timeout: a candidate retries after 1-2x this")
	fs.DurationVar(&o.leaderLeaseTimeout, "leader-lease-timeout", cluster.DefaultLeaderLeaseTimeout, "a leader that cannot reach a quorum for this long steps down (at most the heartbeat timeout)")
	fs.DurationVar(&o.deadNodeGrace, "dead-node-grace", cluster.DefaultDeadNodeGrace, "the leader removes a member gossip has reported dead this long (never below -bootstrap-expect voters, never a majority at once)")
	fs.DurationVar(&o.promoteAfter, "promote-after", cluster.DefaultPromoteAfter, "a new member becomes a voter once it has kept up with the leader this long")
	fs.BoolVar(&o.leaveOnTerminate, "leave-on-terminate", true, "on SIGTERM/SIGINT, leave the cluster (removed from Raft) instead of only stopping; set false for restarts that must keep the vote")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text (key=value) or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&o.forwardWrites, "forward-writes", false, "on a follower, proxy writes and linearizable reads to the leader and return its answer instead of redirecting with 307")
	fs.StringVar(&o.pprofAddr, "pprof-addr", "", "if set, serve Go's net/http/pprof profiles on this host:port (off by default)")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "PEM file of the cluster's CA; with -tls-cert and -tls-key, HTTP is served over TLS and Raft is mutual TLS")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate of this node, issued to its node ID (countctl tls cert create --name ID); SIGHUP re-reads it")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM key of -tls-cert; SIGHUP re-reads it")
	fs.BoolVar(&o.tlsVerifyIncoming, "tls-verify-incoming", false, "require every HTTP client to present a certificate signed by -tls-ca")
	fs.StringVar(&o.gossipKey, "gossip-key", "", "base64 gossip encryption key (16, 24 or 32 bytes); a comma-separated list rotates keys: the first encrypts, all decrypt")
	fs.StringVar(&o.gossipKeyFile, "gossip-key-file", "", "file holding -gossip-key's value (keeps the key out of the process list)")
	fs.BoolVar(&o.acl, "acl", false, "enforce ACL tokens (give every node the same value): requests need \"Authorization: Bearer <secret>\"")
	fs.StringVar(&o.aclInitialToken, "acl-initial-management-token-file", "", "file holding a management token's secret the leader bootstraps ACLs with, once per cluster")
	fs.DurationVar(&o.bodyTimeout, "body-timeout", httpapi.DefaultBodyTimeout, "a request body, or the rest of a Redis command, must arrive within this long (408, or an error, and the connection closed otherwise)")
	fs.IntVar(&o.maxConnsPerClient, "max-conns-per-client", httpapi.DefaultMaxConnsPerClient, "most HTTP connections one client IP may hold open, and as many Redis-protocol ones; further ones are closed at once")
	fs.StringVar(&o.allowedOrigins, "allowed-origins", "", "comma-separated web origins (https://console.example) whose pages may send state-changing requests; others get 403")
	fs.BoolVar(&o.insecure, "insecure", false, "allow addresses off loopback without TLS, a gossip key and -acl (logs a warning)")

	var envErrs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := "COUNTD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	if err := errors.Join(envErrs...); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"max-batch", o.maxBatch}, {"watch-history", o.watchHistory}, {"max-watchers", o.maxWatchers}, {"max-conns-per-client", o.maxConnsPerClient}, {"resp-max-pipeline", o.respMaxPipeline}} {
		if f.v < 1 {
			return nil, fmt.Errorf("-%s must be at least 1, got %d", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    byteSize
	}{{"max-doc-size", o.maxDocSize}, {"watch-history-bytes", o.watchHistoryBytes}, {"memory-limit", o.memoryLimit}} {
		if f.v < 1 {
			return nil, fmt.Errorf("-%s must be at least 1 byte, got %d", f.name, f.v)
		}
	}
	if o.respRedirect != respapi.RedirectTry && o.respRedirect != respapi.RedirectMoved {
		return nil, fmt.Errorf("-resp-redirect must be %s or %s, got %q", respapi.RedirectTry, respapi.RedirectMoved, o.respRedirect)
	}
	if o.respIdleTimeout <= 0 {
		return nil, fmt.Errorf("-resp-idle-timeout must be positive, got %s", o.respIdleTimeout)
	}
	if o.bodyTimeout <= 0 {
		return nil, fmt.Errorf("-body-timeout must be positive, got %s", o.bodyTimeout)
	}
	if o.maxBatch > fsm.MaxItemBatch {
		return nil, fmt.Errorf("-max-batch must be at most %d, got %d", fsm.MaxItemBatch, o.maxBatch)
	}
	if o.logStore != cluster.LogStoreWAL && o.logStore != cluster.LogStoreBolt {
		return nil, fmt.Errorf("-log-store must be %s or %s, got %q", cluster.LogStoreWAL, cluster.LogStoreBolt, o.logStore)
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return nil, fmt.Errorf("-log-format must be text or json, got %q", o.logFormat)
	}
	if err := o.checkSecurityFlags(); err != nil {
		return nil, err
	}
	return o, nil
}

// joinList splits the -join value.
func (o *options) joinList() []string { return splitList(o.join) }

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// byteSize is a flag value in bytes that accepts KiB, MiB and GiB suffixes.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || v <= 0 {
		return fmt.Errorf("want a positive size like 4194304 or 4MiB")
	}
	*b = byteSize(v * mult)
	return nil
}
