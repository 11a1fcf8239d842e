package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/harness"
)

const (
	forwardCounter = "fwd"
	forwardWorkers = 6
	// forwardPerPhase is how many IDs every worker must mint before the
	// leader stops, and again after.
	forwardPerPhase = 25
	// forwardKeyDeadline is how long one mint may keep being retried: a
	// key that never succeeds means the cluster stopped serving.
	forwardKeyDeadline = 30 * time.Second
)

// forwardClient is what the -forward-writes users are: a plain net/http
// client that never follows redirects.
var forwardClient = harness.NoRedirects(10 * time.Second)

// mintResult is one acknowledged mint.
type mintResult struct {
	key  string
	mint api.Mint
}

// forwardWorker mints through every node in turn, retrying each mint with
// the same Idempotency-Key on the next node after anything but a 200.
type forwardWorker struct {
	idx   int
	nodes []*harness.Process

	mu        sync.Mutex
	acked     []mintResult
	answers   map[int]int // status → count; 0 is a connection error
	lastError string
}

func (w *forwardWorker) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *forwardWorker) note(status int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answers[status]++
	if err != nil {
		w.lastError = err.Error()
	}
}

// run mints until stop is closed.
func (w *forwardWorker) run(t *testing.T, stop <-chan struct{}) {
	for seq, turn := 0, w.idx; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		key := fmt.Sprintf("fw-%d-%d", w.idx, seq)
		deadline := time.Now().Add(forwardKeyDeadline)
		for {
			n := w.nodes[turn%len(w.nodes)]
			turn++
			m, status, err := postNext(n, key)
			w.note(status, err)
			if status == http.StatusOK {
				w.mu.Lock()
				w.acked = append(w.acked, mintResult{key, m})
				w.mu.Unlock()
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("worker %d: key %s not acknowledged within %v (last: HTTP %d, %v)", w.idx, key, forwardKeyDeadline, status, err)
				return
			}
			select {
			case <-stop:
				return // an unacknowledged key is at worst a gap
			case <-time.After(20 * time.Millisecond): // back off before the retry
			}
		}
	}
}

// postNext mints one ID through n; status 0 means no HTTP answer.
func postNext(n *harness.Process, key string) (api.Mint, int, error) {
	req, err := http.NewRequest(http.MethodPost, n.URL()+"/v1/counters/"+forwardCounter+"/next", nil)
	if err != nil {
		return api.Mint{}, 0, err
	}
	req.Header.Set(api.HeaderIdempotencyKey, key)
	resp, err := forwardClient.Do(req)
	if err != nil {
		return api.Mint{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return api.Mint{}, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return api.Mint{}, resp.StatusCode, fmt.Errorf("%s: HTTP %d %s", n.ID, resp.StatusCode, body)
	}
	var m api.Mint
	if err := json.Unmarshal(body, &m); err != nil {
		return api.Mint{}, 0, fmt.Errorf("%s: decode %s: %w", n.ID, body, err)
	}
	return m, resp.StatusCode, nil
}

// waitAcked waits until every worker has at least need acknowledged mints.
func waitAcked(t *testing.T, ws []*forwardWorker, need int, timeout time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done := true
		for _, w := range ws {
			done = done && w.count() >= need
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			var counts []int
			for _, w := range ws {
				counts = append(counts, w.count())
			}
			t.Fatalf("%s: not every worker minted %d IDs within %v (counts %v)", what, need, timeout, counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestForwardWritesThroughEveryNode runs every node with -forward-writes and
// mints through all of them with a client that cannot follow redirects,
// while the leader shuts down gracefully and another takes over. Every
// answer in steady state is a 200 (followers proxy, never redirect), and no
// ID is ever handed out twice.
func TestForwardWritesThroughEveryNode(t *testing.T) {
	c := newCluster(t, 3, true, "-forward-writes")
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)

	ws := make([]*forwardWorker, forwardWorkers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range ws {
		ws[i] = &forwardWorker{idx: i, nodes: c.Nodes, answers: map[int]int{}}
		wg.Add(1)
		go func() { defer wg.Done(); ws[i].run(t, stop) }()
	}
	stopWorkers := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopWorkers()

	waitAcked(t, ws, forwardPerPhase, 60*time.Second, "before the leader stops")
	for _, w := range ws {
		w.mu.Lock()
		if len(w.answers) != 1 || w.answers[http.StatusOK] == 0 {
			t.Errorf("worker %d: answers before any fault %v, want only 200s (last error: %s)", w.idx, w.answers, w.lastError)
		}
		w.mu.Unlock()
	}

	leader := c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	code, took, exited := leader.Terminate(15 * time.Second)
	if !exited || code != 0 {
		t.Errorf("leader %s after SIGTERM: exited %v, code %d, after %v", leader.ID, exited, code, took)
	}
	waitAcked(t, ws, 2*forwardPerPhase, 60*time.Second, fmt.Sprintf("after leader %s stopped", leader.ID))
	stopWorkers()

	owner := map[int64]string{}
	var maxID int64
	total := 0
	for _, w := range ws {
		w.mu.Lock()
		t.Logf("worker %d: %d mints acknowledged; answers by status (0: no answer) %v", w.idx, len(w.acked), w.answers)
		for _, r := range w.acked {
			if r.mint.Count != 1 || r.mint.First != r.mint.Value {
				t.Errorf("key %s: mint %+v, want one ID", r.key, r.mint)
			}
			if k, dup := owner[r.mint.Value]; dup {
				t.Errorf("DUPLICATE ID %d: keys %s and %s", r.mint.Value, k, r.key)
			}
			owner[r.mint.Value] = r.key
			maxID = max(maxID, r.mint.Value)
			total++
		}
		w.mu.Unlock()
	}
	var ctr *api.Counter
	var err error
	for _, n := range c.Others(leader) {
		if ctr, err = counter(n, forwardCounter, false); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("read %s through the survivors: %v", forwardCounter, err)
	}
	if ctr.Value < maxID {
		t.Errorf("LOST WRITE: counter reads %d but ID %d was acknowledged", ctr.Value, maxID)
	}
	t.Logf("%d distinct IDs acknowledged, counter at %d", total, ctr.Value)
}
