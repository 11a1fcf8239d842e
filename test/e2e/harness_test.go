// Package e2e runs real countd and countctl processes on loopback and checks
// the guarantees users rely on: one cluster from a simultaneous start, no
// duplicate IDs through leader failover, crashes and graceful shutdowns.
//
// The clusters come from internal/harness's process backend, which builds
// both binaries without -race, so `go test -race ./test/e2e/` works on a
// clean checkout. This file holds what only these tests need: countctl
// processes that mint continuously, and the measurements of their gaps.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
	"github.com/countd/countd/internal/harness"
)

// Paths of the binaries TestMain builds.
var (
	countdBin   string
	countctlBin string
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	defer harness.RemoveBuilds()
	var err error
	if countdBin, err = harness.Countd(); err == nil {
		countctlBin, err = harness.Countctl()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// newCluster prepares size countd nodes on free loopback ports, with data
// and logs under t.TempDir() and the given extra flags. With expect, every
// node gets -bootstrap-expect size and -join with all gossip addresses;
// without it, no -join (a single node then bootstraps itself). Processes
// are killed at the end, and when the test failed the tail of every node's
// log is logged.
func newCluster(t *testing.T, size int, expect bool, flags ...string) *harness.ProcessCluster {
	t.Helper()
	return harness.NewTestProcessCluster(t, harness.ProcessSpec{Size: size, Bin: countdBin, Expect: expect, Flags: flags})
}

// urls is the comma-separated list of the cluster's HTTP base URLs, for
// countctl -a.
func urls(c *harness.ProcessCluster) string { return strings.Join(c.URLs(), ",") }

// newClient returns a project client for all of the cluster's nodes.
func newClient(t *testing.T, c *harness.ProcessCluster) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{Addrs: c.URLs()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// counter reads a counter from node n only; stale reads are local.
func counter(n *harness.Process, id string, stale bool) (*api.Counter, error) {
	u := n.URL() + "/v1/counters/" + id
	if stale {
		u += "?consistency=stale"
	}
	var c api.Counter
	if err := harness.GetJSON(context.Background(), u, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// waitCaughtUp waits until n's stale read of counter id is at least the
// cluster's linearizable value read at the start of the wait.
func waitCaughtUp(t *testing.T, c *harness.ProcessCluster, n *harness.Process, id string, timeout time.Duration) (target, got int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctr, err := newClient(t, c).Counter(ctx, id)
	if err != nil {
		t.Fatalf("linearizable read of %s: %v", id, err)
	}
	target = ctr.Value
	var lastErr error
	for ctx.Err() == nil {
		s, err := counter(n, id, true)
		if err == nil && s.Value >= target {
			return target, s.Value
		}
		if err == nil {
			got = s.Value
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s's stale read of %s did not reach %d within %v (last value %d, last error %v)", n.ID, id, target, timeout, got, lastErr)
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
	cmd.SysProcAttr = harness.ProcAttr()
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
			select {
			case <-m.outDone:
				t.Fatalf("%s: client %d exited early; its stderr:\n%s", what, m.idx, m.stderrTail(20))
			default:
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
