package bench

// The Redis protocol: the same minting as BenchmarkMint, as INCR over
// RESP2 to the leader's RESP address, by go-redis (measured by the same
// loop, every value checked) and by redis-benchmark, the Redis world's own
// tool (its figures as it reports them, the counter checked afterwards).
// The summary gives both as ratios to the HTTP figures of the same run.

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// respPipeline is the INCRs a pipelined client sends per round trip.
const respPipeline = 16

// respPipelineClients is the client count the pipelined runs use.
const respPipelineClients = 64

// BenchmarkRESP mints with INCR over RESP2 from go-redis, one connection
// per client goroutine, at BenchmarkMint's client counts: dense and cached
// (the same cache as BenchmarkMint's), one command per round trip; at 64
// clients also pipelined, 16 INCRs per round trip (latencies are then per
// pipeline). Every run uses a fresh counter and checks that the values
// are exactly 1…N, none twice.
func BenchmarkRESP(b *testing.B) {
	for _, clients := range clientCounts {
		pipelines := []int{0}
		if clients == respPipelineClients {
			pipelines = append(pipelines, respPipeline)
		}
		for _, pipeline := range pipelines {
			for _, cached := range []bool{false, true} {
				l, name := load{clients: clients, count: 1, pipeline: pipeline}, "dense"
				if cached {
					l.cache, name = cacheBlock, "cached"
				}
				if pipeline > 1 {
					name += "-pipelined"
				}
				b.Run(fmt.Sprintf("clients=%d/%s", clients, name), func(b *testing.B) { runRESP(b, l) })
			}
		}
	}
}

// runRESP sends INCRs to the leader's RESP address as l describes.
func runRESP(b *testing.B, l load) {
	c, leader, key := target(b, l)
	rdb := c.redisClient(leader.RESPAddr)
	ctx := context.Background()
	var do request
	if l.pipeline <= 1 {
		do = one(func(int) (mint, string, error) {
			v, err := rdb.Incr(ctx, key).Result()
			if err != nil {
				return mint{}, respKind(err), fmt.Errorf("INCR %s: %w", key, err)
			}
			return mint{first: v, count: 1}, "", nil
		})
	} else {
		// Each client goroutine reuses its own pipeline and commands.
		pipes := make([]redis.Pipeliner, l.clients)
		cmds := make([][]*redis.IntCmd, l.clients)
		for i := range pipes {
			pipes[i] = rdb.Pipeline()
			cmds[i] = make([]*redis.IntCmd, l.pipeline)
		}
		do = func(client int, got []mint) ([]mint, string, error) {
			p, cs := pipes[client], cmds[client]
			for i := range cs {
				cs[i] = p.Incr(ctx, key)
			}
			_, err := p.Exec(ctx)
			for _, cmd := range cs {
				if v, err := cmd.Result(); err == nil {
					got = append(got, mint{first: v, count: 1})
				}
			}
			if err != nil {
				return got, respKind(err), fmt.Errorf("pipeline of %d INCR %s: %w", len(cs), key, err)
			}
			return got, "", nil
		}
	}
	r := l.result(b.Name())
	r.resp = "go-redis"
	// No retries (MaxRetries -1), so with every command answered the
	// values of the fresh counter are exactly 1…N.
	measure(b, r, do, verify{what: key, complete: true, dead: c.Exited, cpu: newCPUProbe(c, leader, false)})
}

// respKind classifies a failed command: the error's code (TRY, ERR, …)
// for an answer of the server, else transport.
func respKind(err error) string {
	var rerr redis.Error
	if errors.As(err, &rerr) {
		if f := strings.Fields(rerr.Error()); len(f) > 0 {
			return f[0]
		}
	}
	return "transport"
}

// redisClient is the go-redis client for the RESP address addr, created on
// first use: RESP2 without the HELLO and CLIENT SETINFO go-redis would
// otherwise open with, a connection for each of the most client
// goroutines in both its pools (commands and pipelines), no retries (a
// retried INCR could leave a gap) and HTTP's timeout.
func (c *testCluster) redisClient(addr string) *redis.Client {
	c.redisMu.Lock()
	defer c.redisMu.Unlock()
	if rdb := c.redis[addr]; rdb != nil {
		return rdb
	}
	most := slices.Max(clientCounts)
	rdb := redis.NewClient(&redis.Options{
		Addr:             addr,
		Protocol:         2,
		DisableIdentity:  true,
		PoolSize:         most,
		PipelinePoolSize: most,
		MaxRetries:       -1,
		DialTimeout:      5 * time.Second,
		ReadTimeout:      60 * time.Second,
		WriteTimeout:     60 * time.Second,
		PoolTimeout:      60 * time.Second,
	})
	if c.redis == nil {
		c.redis = map[string]*redis.Client{}
	}
	c.redis[addr] = rdb
	return rdb
}

// closeRedis closes the cluster's go-redis clients.
func (c *testCluster) closeRedis() {
	c.redisMu.Lock()
	defer c.redisMu.Unlock()
	for addr, rdb := range c.redis {
		_ = rdb.Close()
		delete(c.redis, addr)
	}
}

// goRedisVersion is the go-redis version go.mod requires (a test binary
// carries no module versions), "v9" when it cannot be read.
func goRedisVersion() string {
	data, err := os.ReadFile("../go.mod") // tests run in their package's directory
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/redis/go-redis/v9" {
				return f[1]
			}
		}
	}
	return "v9"
}

// redisBenchmarkVersion is the version of the redis-benchmark the run used
// ("redis-benchmark 7.0.15"), empty when it did not run.
var redisBenchmarkVersion string

// BenchmarkRedisBenchmark runs redis-benchmark (Debian's redis-tools)
// against the leader's RESP address with 64 connections: `-t incr` (its
// own INCR test on its key counter:__rand_int__, dense, one command per
// round trip), and INCR on a fresh cached counter with -P 16. b.N is the
// INCRs sent (rounded up to whole pipelines, as redis-benchmark sends
// them); the ids/s, p50 and p99 reported are redis-benchmark's own
// (with -P, its latency of a command is that of its pipeline). It cannot
// show the values it got, so the counter's value is read before and
// after: it must have moved by exactly the INCRs sent. Without
// redis-benchmark it skips, unless COUNTD_REQUIRE_REDIS=1 (make bench).
func BenchmarkRedisBenchmark(b *testing.B) {
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		msg := fmt.Sprintf("redis-benchmark is not installed: %v (install the Debian package redis-tools; make bench does)", err)
		if os.Getenv("COUNTD_REQUIRE_REDIS") == "1" {
			b.Fatal(msg + "; COUNTD_REQUIRE_REDIS=1 forbids skipping")
		}
		b.Skip(msg)
	}
	if out, err := exec.Command(bin, "--version").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 2 {
			redisBenchmarkVersion = f[0] + " " + f[1]
		}
	}
	b.Run("incr", func(b *testing.B) {
		runRedisBenchmark(b, bin, load{clients: respPipelineClients, count: 1})
	})
	b.Run(fmt.Sprintf("incr-cached-P%d", respPipeline), func(b *testing.B) {
		runRedisBenchmark(b, bin, load{clients: respPipelineClients, count: 1, cache: cacheBlock, pipeline: respPipeline})
	})
}

// redisBenchmarkKey is the key of redis-benchmark's own INCR test (-t
// incr): without -r it is used as written, so every run counts on from
// where the last one stopped.
const redisBenchmarkKey = "counter:__rand_int__"

// runRedisBenchmark runs redis-benchmark once with b.N INCRs as l
// describes: -t incr for a dense load, INCR on the fresh cached counter
// otherwise.
func runRedisBenchmark(b *testing.B, bin string, l load) {
	c, leader, key := target(b, l)
	host, port, err := net.SplitHostPort(leader.RESPAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		b.Fatalf("leader's RESP address %q is not a loopback host:port", leader.RESPAddr)
	}
	pipe := max(l.pipeline, 1)
	n := (b.N + pipe - 1) / pipe * pipe // what redis-benchmark sends
	args := []string{"-h", host, "-p", port, "-c", strconv.Itoa(l.clients), "-n", strconv.Itoa(n), "--csv"}
	if l.pipeline > 1 {
		args = append(args, "-P", strconv.Itoa(l.pipeline))
	}
	if l.cache > 0 {
		args = append(args, "INCR", key)
	} else {
		key = redisBenchmarkKey
		args = append(args, "-t", "incr")
	}
	rdb := c.redisClient(leader.RESPAddr)
	before, err := counterValue(rdb, key)
	if err != nil {
		recordFailure(b.Name())
		b.Fatal(err)
	}
	// redis-benchmark waits forever for a server that does not answer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	b.ResetTimer()
	err = cmd.Run()
	b.StopTimer()
	if err != nil {
		recordFailure(b.Name())
		if dead := c.Exited(); len(dead) > 0 {
			b.Errorf("servers died: %s", strings.Join(dead, ", "))
		}
		b.Fatalf("redis-benchmark %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	rb, err := parseRedisBenchmarkCSV(stdout.Bytes())
	if err != nil {
		recordFailure(b.Name())
		b.Fatalf("redis-benchmark %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr.String())
	}
	after, err := counterValue(rdb, key)
	if err != nil {
		recordFailure(b.Name())
		b.Fatal(err)
	}
	if after-before != int64(n) {
		recordFailure(b.Name())
		b.Fatalf("%s: redis-benchmark sent %d INCRs without an error, but the counter went from %d to %d (%+d)", key, n, before, after, after-before-int64(n))
	}
	r := l.result(b.Name())
	r.resp = "redis-benchmark"
	r.n = n / pipe
	r.idsPS, r.reqPS = rb.rps, rb.rps/float64(pipe)
	r.p50, r.p99, r.max = rb.p50, rb.p99, rb.max
	report(b, r)
}

// counterValue reads a counter over RESP: 0 for one never written.
func counterValue(rdb *redis.Client, key string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := rdb.Get(ctx, key).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", key, err)
	}
	return v, nil
}

// redisBenchmarkFigures are what redis-benchmark --csv reports of its one
// test: commands per second and latencies in ms.
type redisBenchmarkFigures struct {
	rps, p50, p99, max float64
}

// parseRedisBenchmarkCSV reads redis-benchmark's --csv output (7.0: a
// header row "test","rps","avg_latency_ms",…,"p99_latency_ms",
// "max_latency_ms", then a row per test), which must hold one test.
func parseRedisBenchmarkCSV(out []byte) (redisBenchmarkFigures, error) {
	var f redisBenchmarkFigures
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		return f, fmt.Errorf("reading its CSV output %q: %w", out, err)
	}
	if len(rows) != 2 {
		return f, fmt.Errorf("want a header and one test in its CSV output, got %d rows: %q", len(rows), out)
	}
	for _, col := range []struct {
		name string
		into *float64
	}{{"rps", &f.rps}, {"p50_latency_ms", &f.p50}, {"p99_latency_ms", &f.p99}, {"max_latency_ms", &f.max}} {
		i := slices.Index(rows[0], col.name)
		if i < 0 || i >= len(rows[1]) {
			return f, fmt.Errorf("no column %q in its CSV output %q", col.name, out)
		}
		v, err := strconv.ParseFloat(rows[1][i], 64)
		if err != nil {
			return f, fmt.Errorf("column %q of its CSV output: %w", col.name, err)
		}
		*col.into = v
	}
	if f.rps <= 0 {
		return f, fmt.Errorf("no requests per second in its CSV output %q", out)
	}
	return f, nil
}
