package bench

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/internal/harness"
)

// BenchmarkMint mints one ID per request: b.N requests spread over the
// given number of client goroutines, each sending back to back so many
// requests are in flight and Raft can batch them. At each client count it
// measures, one right after the other so that they share the machine's
// mood: the ceiling (an in-memory HTTP server answering next from an
// atomic counter, ceiling_test.go: what HTTP with this client carries
// here), a dense counter (one log entry per ID) and a cached one (cache
// 1,000,000: minted from the leader's memory). The summary gives each as a
// ratio to the ceiling. With COUNTD_BENCH_PEERS=1 (make bench-peers), a
// ZooKeeper ensemble and an etcd cluster follow at each client count
// (peers_test.go).
func BenchmarkMint(b *testing.B) {
	for _, clients := range clientCounts {
		for _, kind := range []struct {
			name string
			load load
		}{
			{"ceiling", load{clients: clients, count: 1, ceiling: true}},
			{"dense", load{clients: clients, count: 1}},
			{"cached", load{clients: clients, count: 1, cache: cacheBlock}},
		} {
			b.Run(fmt.Sprintf("clients=%d/%s", clients, kind.name), func(b *testing.B) { runLoad(b, kind.load) })
		}
		// The peers right after countd at the same client count, so that
		// the ratios compare runs that shared the machine's mood too.
		if peersWanted() {
			b.Run(fmt.Sprintf("clients=%d/zookeeper", clients), func(b *testing.B) { runZooKeeper(b, clients) })
			b.Run(fmt.Sprintf("clients=%d/etcd", clients), func(b *testing.B) { runEtcd(b, clients) })
		}
	}
}

// BenchmarkNextRange mints 1000 IDs per request (?count=1000). A range
// costs the cluster what a single ID costs, so IDs/s follows requests/s:
// a dense counter's range is one log entry, a cached counter's (cache
// 1,000,000) comes from the leader's memory.
func BenchmarkNextRange(b *testing.B) {
	for _, clients := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			runLoad(b, load{clients: clients, count: 1000})
		})
		b.Run(fmt.Sprintf("clients=%d/cached", clients), func(b *testing.B) {
			runLoad(b, load{clients: clients, count: 1000, cache: cacheBlock})
		})
	}
}

// BenchmarkNextWithIdempotencyKey is BenchmarkMint's dense case at 64 clients with a
// fresh random Idempotency-Key on every request, to show what remembering
// keys in the idempotency window costs.
func BenchmarkNextWithIdempotencyKey(b *testing.B) {
	b.Run("clients=64", func(b *testing.B) {
		runLoad(b, load{clients: 64, count: 1, idempotencyKey: true})
	})
}

// BenchmarkNextSecure is BenchmarkMint's dense case at 64 clients against a second
// cluster in the production configuration (mutual TLS between nodes, HTTPS
// to the client, an encrypted gossip, ACLs with a token on every request):
// the summary gives its throughput as a ratio to the plain one's, the cost
// of security measured in the same run.
func BenchmarkNextSecure(b *testing.B) {
	b.Run("clients=64", func(b *testing.B) {
		runLoad(b, load{clients: 64, count: 1, secure: true})
	})
}

// cacheBlock is the cache of the cached counters: one log entry reserves
// a million values, which the leader then mints from memory.
const cacheBlock = 1_000_000

// clientCounts are the numbers of client goroutines BenchmarkMint,
// BenchmarkRESP and the peers measure at, the same for all so the
// summary can compare them.
var clientCounts = []int{1, 16, 64, 256}

// load describes one benchmark's traffic.
type load struct {
	clients        int
	count          int   // IDs per request (?count=)
	idempotencyKey bool  // send a fresh random Idempotency-Key per request
	secure         bool  // against the secured cluster
	cache          int64 // make the counter cached with blocks of this size
	ceiling        bool  // against the in-memory ceiling server, not countd
	// pipeline is the INCRs a RESP client sends per round trip (0 or 1:
	// one command, then its answer).
	pipeline int
}

// result is what the summary keeps of a run of l.
func (l load) result(name string) result {
	return result{
		name:     name,
		clients:  l.clients,
		count:    l.count,
		idem:     l.idempotencyKey,
		secure:   l.secure,
		cached:   l.cache > 0,
		ceiling:  l.ceiling,
		pipeline: l.pipeline,
	}
}

// newHTTPClient talks to the leader with keep-alive HTTP/1.1 (over TLS
// with tc). It never follows redirects: a 307 means leadership moved
// mid-run, which is reported rather than hidden.
func newHTTPClient(tc *tls.Config) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tc,
			MaxIdleConns:        0, // no overall limit
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       60 * time.Second,
	}
}

var keySeq atomic.Int64

// mint is one successful response: IDs first, first+step, … (count of them).
type mint struct {
	first int64
	count int64
}

type worker struct {
	lat   []time.Duration
	mints []mint
}

// failures counts failed requests and keeps a few examples as evidence.
type failures struct {
	mu       sync.Mutex
	n        int
	byKind   map[string]int
	examples []string
}

func (f *failures) add(kind, detail string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byKind == nil {
		f.byKind = map[string]int{}
	}
	f.n++
	f.byKind[kind]++
	if len(f.examples) < 5 {
		f.examples = append(f.examples, detail)
	}
}

func (f *failures) String() string {
	kinds := make([]string, 0, len(f.byKind))
	for k, n := range f.byKind {
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d failed requests (%s); first: %s", f.n, strings.Join(kinds, ", "), strings.Join(f.examples, " | "))
}

// runLoad mints from countd (or the ceiling server) over HTTP as l
// describes.
func runLoad(b *testing.B, l load) {
	c, leader, key := target(b, l)
	var base string
	if l.ceiling {
		s, err := theCeiling()
		if err != nil {
			b.Fatal(err)
		}
		base = s.url
	} else {
		base = leader.URL()
	}
	url := base + "/v1/counters/" + key + "/next"
	if l.count != 1 {
		url += fmt.Sprintf("?count=%d", l.count)
	}
	// A fresh counter for every run, so a run's IDs must be exactly
	// 1…N×count.
	measure(b, l.result(b.Name()), one(func(int) (mint, string, error) { return doNext(c, url, l) }),
		verify{what: key, complete: true, dead: c.Exited, cpu: newCPUProbe(c, leader, l.ceiling)})
}

// target is what a run of l mints from: the cluster, its current leader
// (nil for the ceiling) and a fresh counter, made cached first when l asks
// for it.
func target(b *testing.B, l load) (c *testCluster, leader *harness.Process, key string) {
	c = theCluster
	if l.secure {
		c = theSecureCluster
	}
	if c == nil {
		b.Skip("no cluster (TestMain starts one only when -bench is given)")
	}
	key = runKey(b)
	if l.ceiling {
		return c, nil, key
	}
	leader, err := c.currentLeader(10 * time.Second)
	if err != nil {
		recordFailure(b.Name())
		b.Fatal(err)
	}
	if leader.URL() != c.leader {
		b.Logf("leader moved from %s to %s since the last run", c.leader, leader.URL())
		c.leader = leader.URL()
	}
	if l.cache > 0 {
		if err := c.setCache(c.leader, key, l.cache); err != nil {
			recordFailure(b.Name())
			b.Fatal(err)
		}
	}
	return c, leader, key
}

// runKey names what one run mints into (a counter, a znode parent, a key
// prefix): fresh for every run, since the framework runs a benchmark
// several times with growing b.N.
func runKey(b *testing.B) string {
	return fmt.Sprintf("bench-%s-%d", strings.NewReplacer("/", "-", "=", "").Replace(b.Name()), keySeq.Add(1))
}

// request sends one request for client goroutine client (0…clients-1, so
// it can use that goroutine's own session or pipeline) and returns got
// with the IDs it got appended, also those of the commands of a pipeline
// that succeeded when others failed; kind classifies a failure for the
// summary.
type request func(client int, got []mint) (_ []mint, kind string, err error)

// one is a request that gets one range of IDs per round trip.
func one(do func(client int) (mint, string, error)) request {
	return func(client int, got []mint) ([]mint, string, error) {
		m, kind, err := do(client)
		if err != nil {
			return got, kind, err
		}
		return append(got, m), "", nil
	}
}

// verify is how measure judges a run's IDs and explains its failures.
type verify struct {
	what string // what the run mints into, named in failures
	// complete: when every request succeeds the IDs are exactly
	// 1…N×count (a fresh counter, a fresh znode parent), not merely
	// unique (etcd's revisions).
	complete bool
	dead     func() []string // the servers that have exited, named when requests fail
	// cpu, when not nil, measures the CPU the run cost each countd
	// process and this one.
	cpu *cpuProbe
}

// measure sends b.N requests with do, spread over r.clients goroutines
// each sending back to back, checks the IDs they got, and reports and
// records r with its throughput and latencies (per request: per round
// trip, a whole pipeline's). Everything that differs between countd over
// HTTP or RESP, the ceiling and the peers is in do and v, so all are
// measured by the same loop.
func measure(b *testing.B, r result, do request, v verify) {
	workers := make([]worker, r.clients)
	per := b.N/r.clients + 1
	for i := range workers {
		workers[i].lat = make([]time.Duration, 0, per)
		workers[i].mints = make([]mint, 0, per*max(r.pipeline, 1))
	}
	var (
		next  atomic.Int64
		fails failures
		wg    sync.WaitGroup
	)
	b.ResetTimer()
	cpu0 := v.cpu.sample()
	start := time.Now()
	for i := range workers {
		wg.Add(1)
		go func(client int, w *worker) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				got, kind, err := do(client, w.mints)
				d := time.Since(t0)
				w.mints = got
				if err != nil {
					fails.add(kind, err.Error())
					continue
				}
				w.lat = append(w.lat, d)
			}
		}(i, &workers[i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := v.cpu.sample()
	b.StopTimer()

	var (
		lat   []time.Duration
		mints []mint
	)
	for i := range workers {
		lat = append(lat, workers[i].lat...)
		mints = append(mints, workers[i].mints...)
	}
	if fails.n > 0 {
		recordFailure(b.Name())
		if dead := v.dead(); len(dead) > 0 {
			b.Errorf("servers died: %s", strings.Join(dead, ", "))
		}
		// A failed request may or may not have minted (gaps are expected),
		// but the IDs that were returned must still be unique.
		dupCheck := "no duplicates among them"
		if err := checkMints(mints, int64(r.count), false); err != nil {
			dupCheck = err.Error()
		}
		b.Fatalf("%s: %s; %d requests succeeded: %s", v.what, fails.String(), len(mints), dupCheck)
	}
	if err := checkMints(mints, int64(r.count), v.complete); err != nil {
		recordFailure(b.Name())
		b.Fatalf("%s: %v", v.what, err)
	}

	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.n = b.N
	r.idsPS = float64(b.N) * float64(r.idsPerRequest()) / elapsed.Seconds()
	r.reqPS = float64(b.N) / elapsed.Seconds()
	r.p50 = ms(percentile(lat, 0.50))
	r.p99 = ms(percentile(lat, 0.99))
	r.max = ms(percentile(lat, 1))
	r.cpuLeader, r.cpuFollowers, r.cpuClient, r.cpuOK = perRequest(cpu0, cpu1, b.N)
	report(b, r)
}

// report reports r's figures as the benchmark's metrics and records r for
// the summary.
func report(b *testing.B, r result) {
	b.ReportMetric(r.idsPS, "ids/s")
	if r.idsPerRequest() != 1 {
		b.ReportMetric(r.reqPS, "req/s")
	}
	b.ReportMetric(r.p50, "p50-ms")
	b.ReportMetric(r.p99, "p99-ms")
	if r.cpuOK && !r.ceiling {
		b.ReportMetric(r.cpuLeader, "leader-cpu-us/op")
		b.ReportMetric(r.cpuFollowers, "followers-cpu-us/op")
	}
	if r.cpuOK {
		b.ReportMetric(r.cpuClient, "client-cpu-us/op")
	}
	record(r)
}

// doNext sends one POST …/next and checks the answer. kind classifies a
// failure for the summary.
func doNext(c *testCluster, url string, l load) (m mint, kind string, err error) {
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		return m, "request", err
	}
	if l.idempotencyKey {
		req.Header.Set(api.HeaderIdempotencyKey, rand.Text())
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return m, "transport", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return m, "read body", err
	}
	if resp.StatusCode != http.StatusOK {
		return m, resp.Status, fmt.Errorf("%s: %s (leader header %q): %s", url, resp.Status, resp.Header.Get(api.HeaderLeader), strings.TrimSpace(string(body)))
	}
	if resp.Header.Get(api.HeaderReplayed) != "" {
		return m, "replayed", fmt.Errorf("%s: response marked %s for a fresh key: %s", url, api.HeaderReplayed, body)
	}
	var res api.Mint
	if err := json.Unmarshal(body, &res); err != nil {
		return m, "bad json", fmt.Errorf("%s: %v: %s", url, err, body)
	}
	if res.Count != int64(l.count) || res.Step != 1 || res.Value != res.First+(res.Count-1)*res.Step {
		return m, "bad mint", fmt.Errorf("%s: asked for %d IDs with step 1, got %s", url, l.count, body)
	}
	return mint{first: res.First, count: res.Count}, "", nil
}

// checkMints verifies that the minted ranges (all of the same size, step 1)
// never overlap and, when complete is set (every request succeeded; each run
// uses a fresh counter and nothing is retried), that together they cover
// exactly 1…len(mints)×count.
func checkMints(mints []mint, count int64, complete bool) error {
	sort.Slice(mints, func(i, j int) bool { return mints[i].first < mints[j].first })
	var (
		dups     int
		gaps     int
		examples []string
	)
	want := int64(1)
	for _, m := range mints {
		switch {
		case m.first < want:
			dups++
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("duplicate: range starting at %d overlaps IDs below %d", m.first, want))
			}
		case m.first > want && complete:
			gaps++
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("gap: IDs %d…%d never returned", want, m.first-1))
			}
		}
		if end := m.first + m.count; end > want {
			want = end
		}
	}
	if dups > 0 || gaps > 0 {
		return fmt.Errorf("%d responses, %d duplicated ranges, %d gaps: %s", len(mints), dups, gaps, strings.Join(examples, "; "))
	}
	if got, exp := want-1, int64(len(mints))*count; complete && got != exp {
		return fmt.Errorf("highest ID %d, want %d", got, exp)
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(float64(len(sorted))*p)) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
