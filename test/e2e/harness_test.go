// Package e2e runs real countd and countctl processes on loopback and checks
// the guarantees users rely on: one cluster from a simultaneous start, no
// duplicate IDs through leader failover, crashes and graceful shutdowns.
//
// TestMain builds both binaries (without -race) into a temporary directory,
// so `go test -race ./test/e2e/` works on a clean checkout.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
)

// Paths of the binaries TestMain builds.
var (
	countdBin   string
	countctlBin string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "countd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the go tool is not on PATH:", err)
		return 1
	}
	for _, b := range []struct {
		name, pkg string
		dst       *string
	}{
		{"countd", "github.com/countd/countd/cmd/countd", &countdBin},
		{"countctl", "github.com/countd/countd/cmd/countctl", &countctlBin},
	} {
		out := filepath.Join(dir, b.name)
		cmd := exec.Command(goTool, "build", "-o", out, b.pkg)
		cmd.Env = buildEnv()
		if msg, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", b.pkg, err, msg)
			return 1
		}
		*b.dst = out
	}
	return m.Run()
}

// buildEnv is the environment for go build, without a -race that GOFLAGS
// may carry: the binaries under test are built without the race detector.
func buildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			var keep []string
			for _, f := range strings.Fields(v) {
				if f != "-race" && f != "--race" && f != "-race=true" {
					keep = append(keep, f)
				}
			}
			kv = "GOFLAGS=" + strings.Join(keep, " ")
		}
		env = append(env, kv)
	}
	return env
}

// ---------------------------------------------------------------------------
// Ports

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// freePort returns a loopback port that is free for both TCP and UDP (gossip
// binds both) and was not handed out before in this process. It prefers
// ports below the kernel's ephemeral range, so the many outgoing
// connections of a test cannot take a killed node's port before it restarts.
func freePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	lo, hi := 20000, 32767
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if start, err := strconv.Atoi(f[0]); err == nil {
				hi = start - 1
				lo = max(1024, hi-12000)
			}
		}
	}
	if hi-lo >= 1000 {
		for range 2000 {
			p := lo + rand.IntN(hi-lo+1)
			if !usedPorts[p] && portFree(p) {
				usedPorts[p] = true
				return p
			}
		}
	}
	// Fall back to kernel-chosen ports.
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen on a free port: %v", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !usedPorts[p] && portFree(p) {
			usedPorts[p] = true
			return p
		}
	}
	t.Fatal("no free loopback port for TCP and UDP")
	return 0
}

func portFree(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

func loopback(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// ---------------------------------------------------------------------------
// countd processes

// node is one countd process: its flags stay fixed, so a restart uses the
// same identity, addresses and data dir.
type node struct {
	id         string
	httpAddr   string
	raftAddr   string
	gossipAddr string
	dataDir    string
	join       []string
	expect     int
	logPath    string
	flags      []string // extra countd flags, e.g. -forward-writes

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	starts int
}

func (n *node) args() []string {
	a := []string{
		"-node-id", n.id,
		"-data-dir", n.dataDir,
		"-http-addr", n.httpAddr,
		"-raft-addr", n.raftAddr,
		"-gossip-addr", n.gossipAddr,
	}
	if len(n.join) > 0 {
		a = append(a, "-join", strings.Join(n.join, ","))
	}
	if n.expect > 0 {
		a = append(a, "-bootstrap-expect", strconv.Itoa(n.expect))
	}
	return append(a, n.flags...)
}

func (n *node) url() string { return "http://" + n.httpAddr }

// launch starts the process; it does not touch a *testing.T, so several
// nodes can be launched from goroutines at the same moment.
func (n *node) launch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && !closed(n.done) {
		return fmt.Errorf("%s is already running (pid %d)", n.id, n.cmd.Process.Pid)
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	n.starts++
	fmt.Fprintf(f, "=== e2e: start #%d at %s: countd %s\n", n.starts, time.Now().Format(time.StampMicro), strings.Join(n.args(), " "))
	cmd := exec.Command(countdBin, n.args()...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	done := make(chan struct{})
	n.cmd, n.done = cmd, done
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

func (n *node) start(t testing.TB) {
	t.Helper()
	if err := n.launch(); err != nil {
		t.Fatal(err)
	}
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (n *node) proc() (*exec.Cmd, chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd, n.done
}

// exitState describes how the last process ended ("" while it runs).
func (n *node) exitState() string {
	cmd, done := n.proc()
	if cmd == nil || !closed(done) {
		return ""
	}
	return cmd.ProcessState.String()
}

func (n *node) note(format string, args ...any) {
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== e2e: %s: %s\n", time.Now().Format(time.StampMicro), fmt.Sprintf(format, args...))
}

// kill sends SIGKILL and waits for the process to be gone.
func (n *node) kill(t testing.TB) {
	t.Helper()
	if err := n.killErr(); err != nil {
		t.Fatal(err)
	}
}

func (n *node) killErr() error {
	cmd, done := n.proc()
	if cmd == nil || closed(done) {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) still running 10s after SIGKILL", n.id, cmd.Process.Pid)
	}
	n.note("killed with SIGKILL")
	return nil
}

// terminate sends SIGTERM and waits up to timeout for the process to exit.
// It returns the exit code and how long the exit took; on timeout the
// process is killed and exited is false.
func (n *node) terminate(timeout time.Duration) (code int, took time.Duration, exited bool) {
	cmd, done := n.proc()
	if cmd == nil || closed(done) {
		return -1, 0, false
	}
	n.note("sending SIGTERM")
	start := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		took = time.Since(start)
		n.note("exited after SIGTERM in %v: %s", took, cmd.ProcessState)
		return cmd.ProcessState.ExitCode(), took, true
	case <-time.After(timeout):
		took = time.Since(start)
		n.note("still running %v after SIGTERM; killing", took)
		_ = n.killErr()
		return -1, took, false
	}
}

// logTail returns the last lines of the node's log.
func (n *node) logTail(lines int) string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// cluster is a set of countd nodes owned by one test.
type cluster struct {
	t     *testing.T
	dir   string
	nodes []*node
}

// newCluster prepares size nodes with distinct loopback ports and data dirs
// under t.TempDir(). With expect, every node gets -bootstrap-expect size and
// -join with all gossip addresses; without it, no -join (a single node then
// bootstraps itself). Processes are killed in t.Cleanup, and when the test
// failed the tail of every node's log is logged.
func newCluster(t *testing.T, size int, expect bool) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	var gossip []string
	for i := range size {
		id := fmt.Sprintf("n%d", i+1)
		n := &node{
			id:         id,
			httpAddr:   loopback(t),
			raftAddr:   loopback(t),
			gossipAddr: loopback(t),
			dataDir:    filepath.Join(c.dir, id, "data"),
			logPath:    filepath.Join(c.dir, id+".log"),
		}
		gossip = append(gossip, n.gossipAddr)
		c.nodes = append(c.nodes, n)
	}
	if expect {
		for _, n := range c.nodes {
			n.join = slices.Clone(gossip)
			n.expect = size
		}
	}
	t.Cleanup(c.cleanup)
	return c
}

func (c *cluster) cleanup() {
	for _, n := range c.nodes {
		if err := n.killErr(); err != nil {
			c.t.Error(err)
		}
	}
	if c.t.Failed() {
		for _, n := range c.nodes {
			c.t.Logf("--- last lines of %s's log (%s) ---\n%s", n.id, n.logPath, n.logTail(60))
		}
	}
}

// startAll launches every node at the same moment.
func (c *cluster) startAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			errs[i] = n.launch()
		}()
	}
	close(gate)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) stopAll() {
	c.t.Helper()
	for _, n := range c.nodes {
		n.kill(c.t)
	}
}

// urls is the comma-separated list of HTTP base URLs, for countctl -a.
func (c *cluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.url())
	}
	return strings.Join(u, ",")
}

func (c *cluster) urlList() []string { return strings.Split(c.urls(), ",") }

// others is every node of the cluster except skip.
func (c *cluster) others(skip *node) []*node {
	var out []*node
	for _, n := range c.nodes {
		if n != skip {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) byID(id string) *node {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// HTTP probes (plain net/http: each call goes to exactly one node)

var probe = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func getJSON(url string, out any) error {
	resp, err := probe.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.Unmarshal(b, out)
}

func (n *node) status() (*api.Cluster, error) {
	var st api.Cluster
	if err := getJSON(n.url()+"/v1/cluster", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// counter reads a counter from this node only; stale reads are local.
func (n *node) counter(id string, stale bool) (*api.Counter, error) {
	u := n.url() + "/v1/counters/" + id
	if stale {
		u += "?consistency=stale"
	}
	var c api.Counter
	if err := getJSON(u, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

func voters(st *api.Cluster) int {
	v := 0
	for _, m := range st.Members {
		if m.Suffrage == "voter" {
			v++
		}
	}
	return v
}

func describe(st *api.Cluster) string {
	var ms []string
	for _, m := range st.Members {
		ms = append(ms, fmt.Sprintf("%s/%s/%s", m.ID, m.Suffrage, m.Status))
	}
	return fmt.Sprintf("state=%s leader=%q term=%d commit=%d applied=%d members=[%s]",
		st.State, st.Leader, st.Term, st.CommitIndex, st.AppliedIndex, strings.Join(ms, " "))
}

// poll asks every node for /v1/cluster.
func poll(nodes []*node) ([]*api.Cluster, []error) {
	sts := make([]*api.Cluster, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sts[i], errs[i] = n.status()
		}()
	}
	wg.Wait()
	return sts, errs
}

func summary(nodes []*node, sts []*api.Cluster, errs []error) string {
	var b strings.Builder
	for i, n := range nodes {
		if errs[i] != nil {
			fmt.Fprintf(&b, "\n  %s: error: %v", n.id, errs[i])
			if st := n.exitState(); st != "" {
				fmt.Fprintf(&b, " (process exited: %s)", st)
			}
			continue
		}
		fmt.Fprintf(&b, "\n  %s: %s", n.id, describe(sts[i]))
	}
	return b.String()
}

// converged reports whether every node answers, all name the same leader
// and term, exactly that one node says Leader, and every node's Raft
// configuration lists wantVoters voters.
func converged(nodes []*node, sts []*api.Cluster, errs []error, wantVoters int) (string, bool) {
	leader, term, leaders := "", uint64(0), 0
	for i := range nodes {
		if errs[i] != nil {
			return "", false
		}
		st := sts[i]
		if st.Leader == "" || voters(st) != wantVoters {
			return "", false
		}
		if i == 0 {
			leader, term = st.Leader, st.Term
		}
		if st.Leader != leader || st.Term != term {
			return "", false
		}
		if st.State == "Leader" {
			leaders++
			if st.NodeID != leader {
				return "", false
			}
		}
	}
	return leader, leaders == 1
}

// waitConverged polls until the nodes agree on one leader (see converged)
// and returns it. It fails the test at the deadline, or at once when a node
// process has exited.
func (c *cluster) waitConverged(nodes []*node, wantVoters int, timeout time.Duration) *node {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sts, errs := poll(nodes)
		if id, ok := converged(nodes, sts, errs, wantVoters); ok {
			return c.byID(id)
		}
		for _, n := range nodes {
			if st := n.exitState(); st != "" {
				c.t.Fatalf("%s exited (%s) while waiting for the cluster to converge:%s", n.id, st, summary(nodes, sts, errs))
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nodes did not agree on one leader with %d voters within %v:%s", wantVoters, timeout, summary(nodes, sts, errs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newClient returns a project client for all of the cluster's nodes.
func (c *cluster) newClient() *client.Client {
	c.t.Helper()
	cl, err := client.New(client.Config{Addrs: c.urlList()})
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// waitCaughtUp waits until n's stale read of counter id is at least the
// cluster's linearizable value read at the start of the wait.
func (c *cluster) waitCaughtUp(n *node, id string, timeout time.Duration) (target, got int64) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctr, err := c.newClient().Counter(ctx, id)
	if err != nil {
		c.t.Fatalf("linearizable read of %s: %v", id, err)
	}
	target = ctr.Value
	var lastErr error
	for ctx.Err() == nil {
		s, err := n.counter(id, true)
		if err == nil && s.Value >= target {
			return target, s.Value
		}
		if err == nil {
			got = s.Value
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("%s's stale read of %s did not reach %d within %v (last value %d, last error %v)", n.id, id, target, timeout, got, lastErr)
	return
}

// ---------------------------------------------------------------------------
// countctl processes

type stamped struct {
	at time.Time
	v  int64
}

type textLine struct {
	at   time.Time
	text string
}

// minter is one `countctl counter next --continuous` process. Every stdout
// line is recorded with the time it was read.
type minter struct {
	idx     int
	cmd     *exec.Cmd
	started time.Time

	mu     sync.Mutex
	ids    []stamped  // integers printed on stdout, in order
	junk   []string   // stdout lines that are not integers
	stderr []textLine // everything on stderr

	outDone chan struct{}
	errDone chan struct{}

	stopped  bool
	exitCode int
}

func startMinter(t *testing.T, idx int, addrs, counter string, extra ...string) *minter {
	t.Helper()
	args := append([]string{"-a", addrs, "-i", counter, "counter", "next", "--continuous"}, extra...)
	cmd := exec.Command(countctlBin, args...)
	cmd.SysProcAttr = procAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	m := &minter{idx: idx, cmd: cmd, outDone: make(chan struct{}), errDone: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start countctl: %v", err)
	}
	m.started = time.Now()
	go func() {
		defer close(m.outDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			now := time.Now()
			line := sc.Text()
			v, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
			m.mu.Lock()
			if err != nil {
				m.junk = append(m.junk, line)
			} else {
				m.ids = append(m.ids, stamped{now, v})
			}
			m.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		defer close(m.errDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			now := time.Now()
			m.mu.Lock()
			m.stderr = append(m.stderr, textLine{now, sc.Text()})
			m.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		if !m.isStopped() {
			_ = cmd.Process.Kill()
			<-m.outDone
			<-m.errDone
			_ = cmd.Wait()
		}
	})
	return m
}

func (m *minter) isStopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped
}

// snapshot returns copies of what the process printed so far.
func (m *minter) snapshot() ([]stamped, []textLine) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.ids), slices.Clone(m.stderr)
}

// countSince is the number of integers read at or after since, and the time
// of the last one (or the process start when there is none).
func (m *minter) countSince(since time.Time) (int, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.ids), func(i int) bool { return !m.ids[i].at.Before(since) })
	last := m.started
	if len(m.ids) > 0 {
		last = m.ids[len(m.ids)-1].at
	}
	return len(m.ids) - i, last
}

func (m *minter) stderrTail(n int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	lines := m.stderr
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var out []string
	for _, l := range lines {
		out = append(out, l.at.Format("15:04:05.000")+" "+l.text)
	}
	return strings.Join(out, "\n")
}

// stop interrupts the process (SIGINT), drains its output and reaps it.
func (m *minter) stop(t *testing.T) {
	t.Helper()
	if m.isStopped() {
		return
	}
	_ = m.cmd.Process.Signal(os.Interrupt)
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for _, ch := range []chan struct{}{m.outDone, m.errDone} {
		select {
		case <-ch:
		case <-timer.C:
			t.Errorf("client %d still running 10s after SIGINT; killing it", m.idx)
			_ = m.cmd.Process.Kill()
			<-ch
		}
	}
	_ = m.cmd.Wait()
	m.mu.Lock()
	m.stopped = true
	m.exitCode = m.cmd.ProcessState.ExitCode()
	m.mu.Unlock()
}

// stallLimit is how long any client may go without minting before the test
// fails: a client that never resumes is a bug.
const stallLimit = 15 * time.Second

// waitMinted waits until every minter has printed at least need integers
// at or after since. It fails if a client exits, stalls for stallLimit, or
// the deadline passes.
func waitMinted(t *testing.T, ms []*minter, since time.Time, need int, timeout time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done := true
		var counts []string
		for _, m := range ms {
			n, last := m.countSince(since)
			counts = append(counts, strconv.Itoa(n))
			if n < need {
				done = false
				if stall := time.Since(last); stall > stallLimit {
					t.Fatalf("%s: client %d made no progress for %v (last ID at %s; %d of %d IDs); its stderr:\n%s",
						what, m.idx, stall.Round(time.Millisecond), last.Format("15:04:05.000"), n, need, m.stderrTail(20))
				}
			}
			if closed(m.outDone) {
				t.Fatalf("%s: client %d exited early; its stderr:\n%s", what, m.idx, m.stderrTail(20))
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not every client printed %d IDs within %v (counts: %s)", what, need, timeout, strings.Join(counts, " "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkMinted asserts the uniqueness and ordering guarantees on everything
// the minters printed, and returns the largest ID.
func checkMinted(t *testing.T, ms []*minter) (total int, maxID int64) {
	t.Helper()
	owner := make(map[int64]int)
	dups := 0
	for _, m := range ms {
		ids, _ := m.snapshot()
		m.mu.Lock()
		junk := slices.Clone(m.junk)
		m.mu.Unlock()
		if len(junk) > 0 {
			t.Errorf("client %d printed non-integer lines on stdout: %q", m.idx, junk)
		}
		for i, s := range ids {
			if i > 0 && s.v <= ids[i-1].v {
				t.Errorf("client %d: ID %d at %s is not greater than its previous ID %d at %s",
					m.idx, s.v, s.at.Format("15:04:05.000000"), ids[i-1].v, ids[i-1].at.Format("15:04:05.000000"))
			}
			if o, ok := owner[s.v]; ok {
				dups++
				if dups <= 20 {
					t.Errorf("DUPLICATE ID %d: printed by client %d and client %d (second at %s)", s.v, o, m.idx, s.at.Format("15:04:05.000000"))
				}
			}
			owner[s.v] = m.idx
			maxID = max(maxID, s.v)
		}
		total += len(ids)
	}
	if dups > 0 {
		t.Errorf("%d duplicate IDs in total", dups)
	}
	return total, maxID
}

// ---------------------------------------------------------------------------
// Gap measurement

// longestGap is the longest time without an entry in the sorted times
// within [from, to], counting from the last entry before from (or from
// itself when there is none) and up to to.
func longestGap(times []time.Time, from, to time.Time) (gap time.Duration, start time.Time) {
	i := sort.Search(len(times), func(i int) bool { return !times[i].Before(from) })
	prev := from
	if i > 0 {
		prev = times[i-1]
	}
	for ; i < len(times) && !times[i].After(to); i++ {
		if d := times[i].Sub(prev); d > gap {
			gap, start = d, prev
		}
		prev = times[i]
	}
	if d := to.Sub(prev); d > gap {
		gap, start = d, prev
	}
	return gap, start
}

func times(ids []stamped) []time.Time {
	out := make([]time.Time, len(ids))
	for i, s := range ids {
		out[i] = s.at
	}
	return out
}

// reportGaps logs, for the window [from, to] after a failover event, when
// the first ID after the event was printed, the longest gap in the merged
// timeline of all clients, and each client's own longest gap.
func reportGaps(t *testing.T, label string, ms []*minter, from, to time.Time) {
	t.Helper()
	var merged []time.Time
	var per []string
	var worst time.Duration
	for _, m := range ms {
		ids, _ := m.snapshot()
		ts := times(ids)
		merged = append(merged, ts...)
		g, _ := longestGap(ts, from, to)
		worst = max(worst, g)
		per = append(per, fmt.Sprintf("c%d=%v", m.idx, g.Round(time.Millisecond)))
	}
	slices.SortFunc(merged, func(a, b time.Time) int { return a.Compare(b) })
	first := time.Duration(-1)
	if i := sort.Search(len(merged), func(i int) bool { return !merged[i].Before(from) }); i < len(merged) {
		first = merged[i].Sub(from)
	}
	g, at := longestGap(merged, from, to)
	t.Logf("%s: first ID read after the event +%v; longest gap with no mint by any client %v (from %s); per-client longest gaps: %s (worst %v); window %v",
		label, first.Round(time.Millisecond), g.Round(time.Millisecond), at.Format("15:04:05.000"),
		strings.Join(per, " "), worst.Round(time.Millisecond), to.Sub(from).Round(time.Millisecond))
}

// reportClients logs totals and retry notes, and checks that no client ever
// went stallLimit without minting while it ran.
func reportClients(t *testing.T, ms []*minter) {
	t.Helper()
	var total, retries int
	var per []string
	for _, m := range ms {
		ids, errs := m.snapshot()
		r := 0
		for _, l := range errs {
			if strings.Contains(l.text, "retrying") {
				r++
			}
		}
		total += len(ids)
		retries += r
		g := time.Duration(0)
		if len(ids) > 0 {
			g, _ = longestGap(times(ids), ids[0].at, ids[len(ids)-1].at)
		}
		per = append(per, fmt.Sprintf("c%d: %d IDs, %d retry lines, longest gap %v, exit %d", m.idx, len(ids), r, g.Round(time.Millisecond), m.exitCode))
		if g > stallLimit {
			t.Errorf("client %d went %v without minting", m.idx, g)
		}
		if m.exitCode != 0 {
			t.Errorf("client %d exited with code %d after SIGINT; stderr tail:\n%s", m.idx, m.exitCode, m.stderrTail(5))
		}
	}
	t.Logf("clients: %d IDs in total, %d retry lines on stderr\n  %s", total, retries, strings.Join(per, "\n  "))
}
