// Package workload is the clients of a jepsen-lite campaign: concurrent
// workers that drive countd through the project's Go client with a seeded
// mix of counter, queue, item and document operations, recording each
// invocation and outcome in the history, and the final reads taken once
// every fault is healed.
package workload

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
	"github.com/countd/countd/test/jepsen-lite/history"
)

// Config tunes the workload.
type Config struct {
	// Addrs are the nodes' HTTP base URLs.
	Addrs []string
	// Token and TLS are what the clients present to a secured cluster.
	Token string
	TLS   *tls.Config
	// Workers is the number of concurrent clients (default 8).
	Workers int
	// Seed makes each worker's choice of operations reproducible.
	Seed uint64
	// OpTimeout bounds one operation, retries included (default 1.5s),
	// except for the impatient tenth of them. An operation still
	// unanswered then has an unknown outcome.
	OpTimeout time.Duration
	// KeyEpoch is how long the workers use one set of counter, queue and
	// document keys before moving to fresh ones (default 15s), which keeps
	// each key's history small enough for porcupine.
	KeyEpoch time.Duration
	// Rate caps the operations all workers start per second together
	// (default 200): enough for hundreds of operations per key, few enough
	// to leave the cluster CPU and keep a long history small.
	Rate int
	// StaleReads makes counter reads ?consistency=stale reads from a node
	// picked at random: a deliberately non-linearizable client, to show
	// that the checker notices.
	StaleReads bool
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = 1500 * time.Millisecond
	}
	if c.Rate <= 0 {
		c.Rate = 200
	}
	if c.KeyEpoch <= 0 {
		c.KeyEpoch = 15 * time.Second
	}
}

// Workload runs the workers and remembers every key they touched.
type Workload struct {
	cfg   Config
	hist  *history.Writer
	start time.Time

	mu   sync.Mutex
	keys map[history.F]map[string]bool // read function → keys to read at the end
}

// New prepares a workload recording into hist.
func New(cfg Config, hist *history.Writer) *Workload {
	cfg.setDefaults()
	return &Workload{cfg: cfg, hist: hist, keys: map[history.F]map[string]bool{}}
}

// Processes is the number of history processes the workload uses: one per
// worker and one for the final reads.
func (wl *Workload) Processes() int { return wl.cfg.Workers + 1 }

// newClient returns a project client for addrs: each attempt is bounded so
// a dead or paused node is left quickly for another.
func (wl *Workload) newClient(addrs []string) (*client.Client, error) {
	c, err := client.New(client.Config{Addrs: addrs, AttemptTimeout: time.Second, Token: wl.cfg.Token, TLS: wl.cfg.TLS})
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	return c, nil
}

// Run runs the workers until ctx ends, then waits for their operations in
// flight to finish (each is bounded by OpTimeout).
func (wl *Workload) Run(ctx context.Context) error {
	wl.start = time.Now()
	var wg sync.WaitGroup
	errs := make([]error, wl.cfg.Workers)
	for i := range wl.cfg.Workers {
		w, err := wl.newWorker(i)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = w.run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (wl *Workload) register(readF history.F, key string) {
	wl.mu.Lock()
	defer wl.mu.Unlock()
	if wl.keys[readF] == nil {
		wl.keys[readF] = map[string]bool{}
	}
	wl.keys[readF][key] = true
}

// epoch is the number of the current key set.
func (wl *Workload) epoch() int { return int(time.Since(wl.start) / wl.cfg.KeyEpoch) }

// FinalReads reads every key the workers touched with linearizable reads,
// recorded as final. A key whose read fails is tried a few times: the
// checker reports a key with acknowledged writes and no final read.
func (wl *Workload) FinalReads(ctx context.Context) error {
	c, err := wl.newClient(wl.cfg.Addrs)
	if err != nil {
		return err
	}
	w := &worker{wl: wl, id: wl.cfg.Workers, cl: c, final: true, counters: map[string]int64{}, docs: map[string]uint64{}}
	wl.mu.Lock()
	type read struct {
		f   history.F
		key string
	}
	var reads []read
	for f, keys := range wl.keys {
		for k := range keys {
			reads = append(reads, read{f, k})
		}
	}
	wl.mu.Unlock()
	sort.Slice(reads, func(i, j int) bool {
		if reads[i].f != reads[j].f {
			return reads[i].f < reads[j].f
		}
		return reads[i].key < reads[j].key
	})
	var failed []string
	for _, r := range reads {
		ok := false
		for try := 0; try < 3 && !ok && ctx.Err() == nil; try++ {
			ok = w.read(ctx, r.f, r.key, history.Input{Final: true})
		}
		if !ok {
			failed = append(failed, fmt.Sprintf("%s %s", r.f, r.key))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("final reads failed: %v", failed)
	}
	return nil
}

// outcome classifies a client error. Only an answer from countd that
// refuses the request (4xx) proves it did not take effect; a timeout, a
// lost connection or a 5xx leaves it unknown.
func outcome(err error) (history.Outcome, *client.Error) {
	var ce *client.Error
	if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 {
		return history.Failed, ce
	}
	return history.Unknown, nil
}

// record completes p from err (which is not nil).
func record(p *history.Pending, err error, out *history.Output) {
	oc, ce := outcome(err)
	if oc == history.Unknown {
		p.Info(err)
		return
	}
	p.Fail(out, fmt.Errorf("%s: %s", ce.Code, ce.Message))
}

// isCode reports whether err is a countd answer with code.
func isCode(err error, code api.Code) bool { return client.IsCode(err, code) }

func seeded(seed uint64, worker int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(worker)+1))
}
