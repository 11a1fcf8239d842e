package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/countd/countd/api"
)

// theCluster is the cluster the benchmarks run against; nil when no
// benchmark was selected.
var theCluster *testCluster

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
	c, err := startCluster(3)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: starting the cluster:", err)
		if c != nil {
			c.printLogTails(os.Stderr, 40)
			c.stop()
			c.cleanup()
		}
		return 1
	}
	theCluster = c
	code := m.Run()
	printSummary(os.Stdout)
	if err := c.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "bench: stopping the cluster:", err)
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
	return code
}

// testCluster is a set of countd processes on loopback.
type testCluster struct {
	dir    string
	nodes  []*node
	leader string // leader's HTTP base URL, "http://host:port"
}

type node struct {
	id         string
	httpAddr   string
	raftAddr   string
	gossipAddr string
	dataDir    string
	logPath    string
	logFile    *os.File
	cmd        *exec.Cmd
	done       chan struct{} // closed when the process has exited
	waitErr    error
}

// startCluster builds countd and starts n nodes that bootstrap together. On
// error the partly started cluster is returned so its logs can be shown.
func startCluster(n int) (*testCluster, error) {
	dir, err := os.MkdirTemp("", "countd-bench-*")
	if err != nil {
		return nil, err
	}
	c := &testCluster{dir: dir}
	bin := filepath.Join(dir, "countd")
	goTool, err := exec.LookPath("go")
	if err != nil {
		return c, fmt.Errorf("go tool not found: %w", err)
	}
	build := exec.Command(goTool, "build", "-o", bin, "github.com/countd/countd/cmd/countd")
	if out, err := build.CombinedOutput(); err != nil {
		return c, fmt.Errorf("go build countd: %w\n%s", err, out)
	}

	ports, err := freePorts(3 * n)
	if err != nil {
		return c, err
	}
	var gossip []string
	for i := 0; i < n; i++ {
		nd := &node{
			id:         fmt.Sprintf("n%d", i+1),
			httpAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			raftAddr:   fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			gossipAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]),
		}
		nd.dataDir = filepath.Join(dir, nd.id)
		nd.logPath = filepath.Join(dir, nd.id+".log")
		c.nodes = append(c.nodes, nd)
		gossip = append(gossip, nd.gossipAddr)
	}
	for _, nd := range c.nodes {
		if err := nd.start(bin, strings.Join(gossip, ","), n); err != nil {
			return c, err
		}
	}
	leader, err := c.waitForLeader(60 * time.Second)
	if err != nil {
		return c, err
	}
	c.leader = leader
	extra := ""
	if f := os.Getenv("COUNTD_BENCH_NODE_FLAGS"); f != "" {
		extra = " with extra node flags " + f
	}
	fmt.Fprintf(os.Stderr, "bench: %d-node cluster up%s, leader %s (data dirs and logs in %s)\n", n, extra, leader, dir)
	return c, nil
}

func (nd *node) start(bin, join string, expect int) error {
	f, err := os.Create(nd.logPath)
	if err != nil {
		return err
	}
	nd.logFile = f
	nd.cmd = exec.Command(bin,
		"-node-id", nd.id,
		"-data-dir", nd.dataDir,
		"-http-addr", nd.httpAddr,
		"-raft-addr", nd.raftAddr,
		"-gossip-addr", nd.gossipAddr,
		"-join", join,
		"-bootstrap-expect", fmt.Sprint(expect),
		"-log-level", "info",
	)
	// COUNTD_BENCH_NODE_FLAGS adds flags to every node, e.g. relaxed Raft
	// timeouts on a busy machine: "-heartbeat-timeout 1s -election-timeout 1s
	// -leader-lease-timeout 500ms". Unset, the nodes run with the defaults.
	nd.cmd.Args = append(nd.cmd.Args, strings.Fields(os.Getenv("COUNTD_BENCH_NODE_FLAGS"))...)
	nd.cmd.Stdout, nd.cmd.Stderr = f, f
	// Environment variables must not change what is measured.
	nd.cmd.Env = withoutCountdEnv(os.Environ())
	if err := nd.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", nd.id, err)
	}
	nd.done = make(chan struct{})
	go func() {
		nd.waitErr = nd.cmd.Wait()
		close(nd.done)
	}()
	return nil
}

func withoutCountdEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "COUNTD_") {
			out = append(out, kv)
		}
	}
	return out
}

func (nd *node) exited() bool {
	select {
	case <-nd.done:
		return true
	default:
		return false
	}
}

// freePorts finds n distinct ports that are free for TCP on 127.0.0.1 (and
// for UDP too, which gossip needs). They are released before returning, so
// another process could take one; a failed start shows up in the logs.
func freePorts(n int) ([]int, error) {
	var (
		ports   []int
		closers []io.Closer
	)
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for attempts := 0; len(ports) < n; attempts++ {
		if attempts > 100*n {
			return nil, errors.New("could not find enough free ports")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		closers = append(closers, ln)
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // UDP side taken; the TCP listener stays open so we skip it
		}
		closers = append(closers, pc)
		ports = append(ports, port)
	}
	return ports, nil
}

// waitForLeader polls /v1/cluster on every node until all agree on one
// leader that sees every node as a voter.
func (c *testCluster) waitForLeader(timeout time.Duration) (string, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		for _, nd := range c.nodes {
			if nd.exited() {
				return "", fmt.Errorf("node %s exited during start-up: %v", nd.id, nd.waitErr)
			}
		}
		leader, why := c.agreedLeader(client)
		if why == "" {
			return leader, nil
		}
		last = why
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("no agreed leader after %s: %s", timeout, last)
}

func (c *testCluster) agreedLeader(client *http.Client) (leaderHTTP, why string) {
	var leaderID string
	for _, nd := range c.nodes {
		st, err := getCluster(client, "http://"+nd.httpAddr)
		if err != nil {
			return "", fmt.Sprintf("%s: %v", nd.id, err)
		}
		if st.Leader == "" || st.LeaderHTTP == "" {
			return "", fmt.Sprintf("%s: no leader yet (state %s)", nd.id, st.State)
		}
		if leaderID == "" {
			leaderID, leaderHTTP = st.Leader, st.LeaderHTTP
		} else if st.Leader != leaderID || st.LeaderHTTP != leaderHTTP {
			return "", fmt.Sprintf("%s sees leader %s (%s), others %s (%s)", nd.id, st.Leader, st.LeaderHTTP, leaderID, leaderHTTP)
		}
		if st.Leader == nd.id {
			voters := 0
			for _, m := range st.Members {
				if m.Suffrage == "voter" {
					voters++
				}
			}
			if voters != len(c.nodes) {
				return "", fmt.Sprintf("leader %s has %d voters, want %d", nd.id, voters, len(c.nodes))
			}
		}
	}
	return leaderHTTP, ""
}

func getCluster(client *http.Client, base string) (*api.Cluster, error) {
	resp, err := client.Get(base + "/v1/cluster")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/cluster: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var st api.Cluster
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("GET /v1/cluster: %w", err)
	}
	return &st, nil
}

// stop sends SIGTERM to every node and waits for them to exit (SIGKILL
// after a grace period). It reports nodes that exited with an error.
func (c *testCluster) stop() error {
	var errs []error
	for _, nd := range c.nodes {
		if nd.cmd != nil && nd.cmd.Process != nil && !nd.exited() {
			_ = nd.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, nd := range c.nodes {
		if nd.cmd == nil || nd.done == nil {
			continue
		}
		select {
		case <-nd.done:
		case <-time.After(20 * time.Second):
			_ = nd.cmd.Process.Kill()
			<-nd.done
			errs = append(errs, fmt.Errorf("%s did not stop within 20s of SIGTERM; killed", nd.id))
			continue
		}
		if nd.waitErr != nil {
			errs = append(errs, fmt.Errorf("%s exited: %w", nd.id, nd.waitErr))
		}
	}
	return errors.Join(errs...)
}

// cleanup closes the log files and removes the cluster's directory, unless
// COUNTD_BENCH_KEEP is set (to read the nodes' logs afterwards).
func (c *testCluster) cleanup() {
	for _, nd := range c.nodes {
		if nd.logFile != nil {
			nd.logFile.Close()
		}
	}
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
	for _, nd := range c.nodes {
		data, err := os.ReadFile(nd.logPath)
		if err != nil {
			fmt.Fprintf(w, "--- %s log: %v\n", nd.id, err)
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
			len(kept), nd.id, nd.logPath, skipped, strings.Join(kept, "\n"))
	}
}

// currentLeader waits (up to timeout) until every node agrees on a leader
// again and returns its HTTP URL; benchmarks call it before each run so one
// run's leadership change does not break every later one.
func (c *testCluster) currentLeader(timeout time.Duration) (string, error) {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		leader, why := c.agreedLeader(client)
		if why == "" {
			return leader, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no agreed leader after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exitedNodes names nodes whose process has died, for error messages.
func (c *testCluster) exitedNodes() []string {
	var out []string
	for _, nd := range c.nodes {
		if nd.exited() {
			out = append(out, fmt.Sprintf("%s (%v)", nd.id, nd.waitErr))
		}
	}
	return out
}
