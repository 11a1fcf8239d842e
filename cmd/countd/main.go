// Command countd runs one node of a countd cluster: a Raft-replicated
// counter service with an HTTP API.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	rpprof "runtime/pprof"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/countd/countd/cluster"
	"github.com/countd/countd/httpapi"
	"github.com/countd/countd/respapi"
	"github.com/countd/countd/tlsutil"
)

func main() {
	// Everything countd creates (data dir, Raft log and snapshots) is for
	// its own user only: directories 0700, files 0600 (SPEC §12).
	syscall.Umask(0o077)
	opts, err := parseOptions(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "countd:", err)
		os.Exit(2)
	}
	startGCTuner(int64(opts.memoryLimit))
	logger := newLogger(opts)
	if err := run(opts, logger); err != nil {
		logger.Error("countd stopped", "error", err)
		os.Exit(1)
	}
}

func newLogger(o *options) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	ho := &slog.HandlerOptions{Level: level}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, ho))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, ho))
}

// run starts the node and its HTTP API and blocks until SIGINT or SIGTERM,
// then shuts down gracefully: leadership is handed over first, in-flight
// requests finish, and Raft stops with everything acknowledged on disk.
func run(o *options, logger *slog.Logger) error {
	sec, err := o.loadSecurity()
	if err != nil {
		return err
	}
	cfg := nodeConfig(o, logger)
	cfg.GossipKeys = sec.gossipKeys
	cfg.InitialManagementToken = sec.initialToken
	if sec.tls() {
		cfg.PeerTLS = &cluster.PeerTLS{KeyPair: sec.keyPair, CA: sec.ca}
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen for HTTP: %w", err)
	}
	cfg.HTTPAddr = ln.Addr().String()
	ln = httpapi.LimitConnsPerClient(ln, o.maxConnsPerClient)
	if sec.tls() {
		ln = tls.NewListener(ln, tlsutil.ServerConfig(sec.keyPair, sec.ca, sec.verifyIncoming))
	}
	ln = httpapi.JSONProtocolErrors(ln)
	var respLn net.Listener
	if o.respAddr != "" {
		if respLn, err = net.Listen("tcp", o.respAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen for RESP: %w", err)
		}
		cfg.RESPAddr = respLn.Addr().String()
		respLn = httpapi.LimitConnsPerClient(respLn, o.maxConnsPerClient)
		if sec.tls() {
			respLn = tls.NewListener(respLn, tlsutil.ServerConfig(sec.keyPair, sec.ca, sec.verifyIncoming))
		}
	}
	node, err := cluster.Start(cfg)
	if err != nil {
		ln.Close()
		if respLn != nil {
			respLn.Close()
		}
		return err
	}
	left := make(chan struct{})
	var leftOnce sync.Once
	onLeave := func() { leftOnce.Do(func() { close(left) }) }
	handler := httpapi.New(node, httpapi.Config{
		MaxBody: int64(o.maxBody), MaxRestore: int64(o.maxRestore), MaxBatch: o.maxBatch, Logger: logger,
		Metrics: newRegistry(node), ForwardWrites: o.forwardWrites, OnLeave: onLeave,
		PeerTLS: sec.peerClientTLS(), ACL: o.acl, AllowedOrigins: splitList(o.allowedOrigins), BodyTimeout: o.bodyTimeout,
	})
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	// Blocking queries and watches would hold Shutdown until its timeout.
	srv.RegisterOnShutdown(handler.CloseStreams)
	if o.pprofAddr != "" {
		go servePprof(o.pprofAddr, logger)
	}
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	var resp *respapi.Server
	if respLn != nil {
		resp, err = respapi.New(node, respapi.Config{
			ACL: o.acl, Redirect: o.respRedirect, ForwardWrites: o.forwardWrites, PeerTLS: sec.peerClientTLS(),
			MaxBulk: int64(o.maxBody), MaxArgs: o.maxBatch, MaxPipeline: o.respMaxPipeline,
			IdleTimeout: o.respIdleTimeout, ReadTimeout: o.bodyTimeout, Logger: logger,
		})
		if err != nil {
			_ = node.Shutdown()
			return err
		}
		go func() {
			if err := resp.Serve(respLn); err != nil {
				serveErr <- fmt.Errorf("resp: %w", err)
			}
		}()
	}
	logger.Info("countd started", "node", cfg.NodeID, "cluster", cfg.ClusterName, "http", cfg.HTTPAddr,
		"resp", cfg.RESPAddr, "raft", node.RaftAddr(), "gossip", node.GossipAddr(), "log_store", node.LogStore(), "dev", o.dev,
		"tls", sec.tls(), "gossip_encrypted", len(sec.gossipKeys) > 0, "acl", o.acl)
	go reloadOnHangup(sec.keyPair, logger)
	if o.insecure {
		logger.Warn("running with -insecure: anyone who can reach a non-loopback address of this node may be able to read, change or stop the cluster",
			"tls", sec.tls(), "gossip_encrypted", len(sec.gossipKeys) > 0, "acl", o.acl)
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case sig := <-sigs:
		logger.Info("shutting down", "signal", sig.String())
		go func() {
			<-sigs
			logger.Warn("second signal: exiting without a graceful shutdown")
			os.Exit(1)
		}()
		if o.leaveOnTerminate && !o.dev {
			leaveCluster(node, logger)
		}
	case <-left:
		logger.Info("left the cluster; shutting down")
	case err := <-serveErr:
		if resp != nil {
			_ = resp.Close()
		}
		_ = node.Shutdown()
		return fmt.Errorf("serving clients: %w", err)
	}
	stopWatchdog := shutdownWatchdog(logger, shutdownLimit)
	defer stopWatchdog()
	node.PrepareShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("http shutdown", "error", err)
	}
	if resp != nil {
		_ = resp.Close()
	}
	return node.Shutdown()
}

// reloadOnHangup re-reads the node's certificate and key on every SIGHUP:
// new connections use the renewed pair, established ones keep theirs. A
// pair that does not load is refused and the old one stays in use. Without
// TLS (kp nil) a SIGHUP is only logged: its default action would stop the
// process, and `systemctl reload` sends one.
func reloadOnHangup(kp *tlsutil.KeyPair, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	for range hup {
		if kp == nil {
			logger.Info("SIGHUP: no TLS certificate to reload")
			continue
		}
		if err := kp.Reload(); err != nil {
			logger.Error("SIGHUP: keeping the certificate in use", "error", err)
			continue
		}
		leaf := kp.Certificate().Leaf
		logger.Info("SIGHUP: reloaded the TLS certificate", "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter)
	}
}

// shutdownLimit bounds the stop after a signal or a leave. Everything
// acknowledged is on disk long before, so a stop that hangs (a Raft
// goroutine stuck in a network call to a paused peer, say) only keeps an
// operator or a supervisor waiting.
const shutdownLimit = 20 * time.Second

// shutdownWatchdog exits the process with status 1 if the shutdown has not
// finished within limit, after writing every goroutine's stack to stderr so
// the hang can be diagnosed. The returned func disarms it.
func shutdownWatchdog(logger *slog.Logger, limit time.Duration) func() {
	t := time.AfterFunc(limit, func() {
		logger.Error("shutdown did not finish in time; exiting with a goroutine dump", "limit", limit)
		_ = rpprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
		os.Exit(1)
	})
	return func() { t.Stop() }
}

// leaveCluster leaves gracefully on a signal: the node is removed from the
// Raft configuration, so the remaining nodes' quorum no longer counts it.
func leaveCluster(node *cluster.Node, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := node.Leave(ctx)
	switch {
	case err != nil:
		logger.Warn("could not leave the cluster gracefully; stopping anyway", "error", err)
	case !res.Removed:
		logger.Warn("left gossip, but the leader has not confirmed the removal yet; it will remove this node")
	}
}

// newRegistry holds what GET /metrics reports besides the HTTP metrics the
// API adds itself: the node's Raft and state machine metrics, and the Go
// runtime and process metrics a standalone daemon is expected to expose
// (an embedding program decides those for itself).
func newRegistry(node *cluster.Node) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		node.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// servePprof exposes Go's profiler on its own listener, never on the API
// address, so it is only reachable where the operator chose.
func servePprof(addr string, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	logger.Info("serving pprof", "addr", addr)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		logger.Warn("pprof server stopped", "error", err)
	}
}

func nodeConfig(o *options, logger *slog.Logger) cluster.Config {
	cfg := cluster.Config{
		NodeID:             o.nodeID,
		ClusterName:        o.clusterName,
		DataDir:            o.dataDir,
		LogStore:           o.logStore,
		HTTPAddr:           o.httpAddr,
		RaftAddr:           o.raftAddr,
		GossipAddr:         o.gossipAddr,
		Join:               o.joinList(),
		BootstrapExpect:    o.bootstrapExpect,
		HeartbeatTimeout:   o.heartbeatTimeout,
		ElectionTimeout:    o.electionTimeout,
		LeaderLeaseTimeout: o.leaderLeaseTimeout,
		IdempotencyWindow:  o.idempotencyWindow,
		WatchHistory:       o.watchHistory,
		WatchHistoryBytes:  int64(o.watchHistoryBytes),
		MaxDocSize:         int64(o.maxDocSize),
		MaxWatchers:        o.maxWatchers,
		DeadNodeGrace:      o.deadNodeGrace,
		PromoteAfter:       o.promoteAfter,
		Logger:             logger,
	}
	if o.dev {
		// One in-memory node: no data dir, no gossip, bootstraps itself.
		cfg.NodeID, cfg.InMemory, cfg.DataDir, cfg.RaftAddr = "dev", true, "", "inmem"
		cfg.GossipAddr, cfg.Join, cfg.BootstrapExpect = "", nil, 0
	}
	return cfg
}
