package bench

// The cluster the benchmarks run against: three countd processes from
// internal/harness, started once by TestMain when a benchmark is selected.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/countd/countd/internal/harness"
)

// theCluster is the cluster the benchmarks run against, and
// theSecureCluster the one in the production configuration; nil when no
// benchmark was selected.
var theCluster, theSecureCluster *testCluster

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		// No benchmark selected (plain `go test`, `make test`): only the
		// helpers' unit tests run and nobody pays for a cluster.
		os.Exit(m.Run())
	}
	os.Exit(runWithCluster(m))
}

func runWithCluster(m *testing.M) int {
	defer harness.RemoveBuilds()
	var clusters []*testCluster
	for _, secure := range []bool{false, true} {
		c, err := startCluster(3, secure)
		if c != nil {
			clusters = append(clusters, c)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: starting a cluster:", err)
			for _, c := range clusters {
				c.printLogTails(os.Stderr, 40)
				_ = c.KillAll()
				c.cleanup()
			}
			return 1
		}
	}
	theCluster, theSecureCluster = clusters[0], clusters[1]
	code := m.Run()
	printSummary(os.Stdout)
	if err := stopPeers(os.Stderr, code != 0); err != nil {
		fmt.Fprintln(os.Stderr, "bench: stopping ZooKeeper and etcd:", err)
		if code == 0 {
			code = 1
		}
	}
	for _, c := range clusters {
		c.closeRedis()
		if err := c.TerminateAll(20 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "bench: stopping a cluster:", err)
			c.printLogTails(os.Stderr, 40)
			if code == 0 {
				code = 1
			}
		}
		if code != 0 {
			// Keep the evidence in the output before the directory goes.
			c.printLogTails(os.Stderr, 40)
		}
		c.cleanup()
	}
	return code
}

// testCluster is the benchmarks' countd processes on loopback.
type testCluster struct {
	*harness.ProcessCluster
	dir    string
	leader string // leader's HTTP base URL, "http://host:port"
	// http sends the benchmark's requests; token is the management token
	// of a secured cluster.
	http  *http.Client
	token string
	// redis holds a go-redis client per RESP address benchmarked (a new
	// leader gets its own), kept across runs as http keeps connections.
	redisMu sync.Mutex
	redis   map[string]*redis.Client
}

// startCluster builds countd and starts n nodes that bootstrap together. On
// error the partly started cluster is returned so its logs can be shown.
func startCluster(n int, secure bool) (*testCluster, error) {
	dir, err := os.MkdirTemp("", "countd-bench-*")
	if err != nil {
		return nil, err
	}
	bin, err := harness.Countd()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// COUNTD_BENCH_NODE_FLAGS adds flags to every node, e.g. relaxed Raft
	// timeouts on a busy machine: "-heartbeat-timeout 1s -election-timeout 1s
	// -leader-lease-timeout 500ms". Unset, the nodes run with the defaults.
	// No other COUNTD_* variable reaches the nodes (the harness drops
	// them): the environment must not change what is measured.
	// The load generator is one client IP with up to 256 connections.
	flags := append([]string{"-log-level", "info", "-max-conns-per-client", "1024"}, strings.Fields(os.Getenv("COUNTD_BENCH_NODE_FLAGS"))...)
	spec := harness.ProcessSpec{Size: n, Bin: bin, Dir: dir, Expect: true, Flags: flags}
	c := &testCluster{dir: dir, http: newHTTPClient(nil)}
	if secure {
		if spec.Secure, err = harness.NewSecure(filepath.Join(dir, "pki")); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.http, c.token = newHTTPClient(spec.Secure.ClientTLS()), spec.Secure.Token
	}
	pc, err := harness.NewProcessCluster(spec)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.ProcessCluster = pc
	// COUNTD_BENCH_PPROF=1 serves each node's pprof on 127.0.0.1:6060+i
	// (plain cluster) or 6070+i (secure), to profile a run as it goes.
	if os.Getenv("COUNTD_BENCH_PPROF") != "" {
		base := 6060
		if secure {
			base = 6070
		}
		for i, nd := range pc.Nodes {
			nd.Flags = append(nd.Flags, "-pprof-addr", fmt.Sprintf("127.0.0.1:%d", base+i))
			fmt.Fprintf(os.Stderr, "bench: %s serves pprof on 127.0.0.1:%d\n", nd.ID, base+i)
		}
	}
	if err := c.StartAll(); err != nil {
		return c, err
	}
	leader, err := c.WaitConverged(context.Background(), c.Nodes, n, 60*time.Second)
	if err != nil {
		return c, err
	}
	c.leader = leader.URL()
	extra := ""
	if f := os.Getenv("COUNTD_BENCH_NODE_FLAGS"); f != "" {
		extra = " with extra node flags " + f
	}
	if secure {
		extra += " in the production configuration (TLS, gossip key, ACLs)"
	}
	fmt.Fprintf(os.Stderr, "bench: %d-node cluster up%s, leader %s (data dirs and logs in %s)\n", n, extra, c.leader, dir)
	return c, nil
}

// cleanup removes the cluster's directory, unless COUNTD_BENCH_KEEP is set
// (to read the nodes' logs afterwards).
func (c *testCluster) cleanup() {
	if os.Getenv("COUNTD_BENCH_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "bench: COUNTD_BENCH_KEEP is set; logs and data kept in %s\n", c.dir)
		return
	}
	os.RemoveAll(c.dir)
}

// printLogTails prints the end of every node's log. Per-request failure
// lines are counted rather than shown: under load there are thousands and
// they would hide the Raft events that explain them.
func (c *testCluster) printLogTails(w io.Writer, lines int) {
	for _, nd := range c.Nodes {
		data, err := os.ReadFile(nd.LogPath)
		if err != nil {
			fmt.Fprintf(w, "--- %s log: %v\n", nd.ID, err)
			continue
		}
		var kept []string
		skipped := 0
		for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
			if strings.Contains(line, `msg="request failed"`) {
				skipped++
				continue
			}
			kept = append(kept, line)
		}
		if len(kept) > lines {
			kept = kept[len(kept)-lines:]
		}
		fmt.Fprintf(w, "--- last %d lines of %s (%s; %d \"request failed\" lines left out)\n%s\n",
			len(kept), nd.ID, nd.LogPath, skipped, strings.Join(kept, "\n"))
	}
}

// currentLeader waits (up to timeout) until every node agrees on a leader
// again and returns it; benchmarks call it before each run so one run's
// leadership change does not break every later one.
func (c *testCluster) currentLeader(timeout time.Duration) (*harness.Process, error) {
	return c.WaitConverged(context.Background(), c.Nodes, len(c.Nodes), timeout)
}

// setCache makes counter id cached with blocks of cache values.
func (c *testCluster) setCache(leader, id string, cache int64) error {
	req, err := http.NewRequest(http.MethodPut, leader+"/v1/counters/"+id, strings.NewReader(fmt.Sprintf(`{"cache":%d}`, cache)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("set cache of %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("set cache of %s: %s: %s", id, resp.Status, body)
	}
	return nil
}
