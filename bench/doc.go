// Package bench measures countd end to end: TestMain builds bin countd,
// starts a real 3-node cluster on 127.0.0.1 (raft-wal storage, fsync on)
// and the benchmarks mint IDs over raw HTTP against the leader, the way
// etcd's benchmark tool drives etcd. BenchmarkMint also drives an
// in-memory HTTP server with the same client (the ceiling) and a cached
// counter, and the summary gives every figure as a ratio to the ceiling
// at the same client count.
//
//	go test -run '^$' -bench . -benchtime 5s -timeout 30m ./bench/
//
// BenchmarkRESP mints the same way with INCR over the Redis protocol
// (RESP2) to the leader's RESP address, from go-redis with one connection
// per client goroutine: dense and cached at the same client counts, one
// command per round trip, and at 64 clients also pipelined, 16 INCRs per
// round trip (its latencies are per round trip). BenchmarkRedisBenchmark
// runs redis-benchmark (Debian's redis-tools), `-t incr -c 64` and `-c 64
// -P 16 INCR <cached counter>`, and reports the throughput and latencies it
// prints; it skips without redis-benchmark unless COUNTD_REQUIRE_REDIS=1
// (make bench sets it and installs redis-tools). The summary gives each
// RESP figure as a ratio to the ceiling and to HTTP next of the same kind
// and client count, and says whether the Redis protocol's aims are met:
// dense INCR at least as fast as HTTP next, cached pipelined INCR at
// least 1.5× cached HTTP next.
//
// Every benchmark reports ids/s, p50-ms and p99-ms; ns/op is the wall time
// divided by requests across all client goroutines and means little. Runs
// against countd also report the CPU time a request cost the leader
// (leader-cpu-us/op), the other nodes together (followers-cpu-us/op) and
// this process, the load generator (client-cpu-us/op; for the ceiling, its
// server too), read from /proc/<pid>/stat and getrusage around the run:
// these machines' throughput moves with whatever else the host runs, the
// CPU a request costs much less, so two builds are compared by it. After
// the benchmarks a markdown summary table is printed to stdout.
//
// The benchmark process shares the machine's CPUs with the three nodes, so
// on a small machine the client's own HTTP and JSON work is part of what is
// measured.
//
// COUNTD_BENCH_NODE_FLAGS adds countd flags to every node (for example
// relaxed Raft timeouts on a busy machine); unset, nodes run with defaults.
// COUNTD_BENCH_KEEP=1 keeps the nodes' data dirs and logs (n1.log …) in the
// temporary directory for a look afterwards. COUNTD_BENCH_PPROF=1 serves
// each node's pprof on 127.0.0.1:6060+i (the secured cluster's on 6070+i).
//
// COUNTD_BENCH_PEERS=1 (make bench-peers) adds to BenchmarkMint, right
// after countd at each client count (so that both share the machine's
// mood), the same load against a 3-server ZooKeeper ensemble (sequential znodes, one
// session per client goroutine) and a 3-member etcd cluster (puts through
// its JSON gateway to the leader), both on 127.0.0.1 with free ports and
// fsync on, started on first use and stopped at the end. The summary then
// gives countd's dense and cached IDs/s as ratios to theirs at each client
// count. It needs the Debian packages zookeeper and etcd-server (make
// bench-peers installs etcd-server if missing).
//
//	COUNTD_BENCH_PEERS=1 go test -run '^$' -bench 'BenchmarkMint' -benchtime 5s -timeout 30m ./bench/
//
// Without -bench (as `make test` runs it) no cluster is started and only
// the helpers' unit tests run.
package bench
