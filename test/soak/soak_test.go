// Package soak runs a three-node cluster of real countd processes under
// mixed traffic, part of it hostile, and checks that each node's memory
// stays under a stated ceiling and that nothing acknowledged is lost (SPEC
// §12). `make soak` runs it for ten minutes; `make test` runs it for a few
// seconds so that it cannot rot.
//
// Each traffic class comes from its own loopback source address, because
// the per-client connection cap is per IP: the flood must hit the cap, the
// well-behaved clients must not.
package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countd/countd/api"
	"github.com/countd/countd/client"
	"github.com/countd/countd/internal/harness"
)

// Settings; `make soak` sets the duration.
const (
	defaultDuration = 20 * time.Second
	// defaultCeilingMiB is the resident memory (RSS) no node may exceed:
	// countd's default -memory-limit (512 MiB, soft, and never below twice
	// the live heap; this traffic's live heap is some 120-250 MiB, most of
	// it the 64 MiB of document history and the requests in flight), plus
	// the runtime's stacks and slack. The wal log store reads with pread,
	// so no memory-mapped log pages count here.
	defaultCeilingMiB = 768
	bodyTimeout       = 5 * time.Second
	maxConnsPerClient = 200
	docSize           = 600 << 10 // near the 1 MiB limit, many keys
)

// Source addresses of the traffic classes.
var (
	wellBehaved = net.IPv4(127, 0, 0, 1)
	flooder     = net.IPv4(127, 0, 0, 2)
	trickler    = net.IPv4(127, 0, 0, 3)
	waiter      = net.IPv4(127, 0, 0, 4)
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.RemoveBuilds()
	os.Exit(code)
}

// stats are the run's counts, reported at the end.
type stats struct {
	minted, docWrites, docRefused, watchEvents, watchesOpened atomic.Int64
	blockingQueries, itemsAdded, slowRefused, floodRefused    atomic.Int64
	floodDialed, errors                                       atomic.Int64
}

func TestSoak(t *testing.T) {
	duration := envDuration(t, "COUNTD_SOAK_DURATION", defaultDuration)
	ceiling := int64(envInt(t, "COUNTD_SOAK_RSS_CEILING_MIB", defaultCeilingMiB)) << 20
	bin, err := harness.Countd()
	if err != nil {
		t.Fatal(err)
	}
	c := harness.NewTestProcessCluster(t, harness.ProcessSpec{
		Size: 3, Bin: bin, Dir: t.TempDir(), Expect: true,
		Flags: []string{"-body-timeout", bodyTimeout.String(), "-max-conns-per-client", strconv.Itoa(maxConnsPerClient)},
	})
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	c.MustWaitConverged(t, c.Nodes, 3, 30*time.Second)
	cl := newClient(t, c.URLs(), wellBehaved)

	var st stats
	mem := &sampler{nodes: c.Nodes}
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var wg sync.WaitGroup
	run := func(n int, f func(ctx context.Context, i int)) {
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); f(ctx, i) }()
		}
	}
	start := time.Now()
	mints := make([][]int64, 8)
	acked := make([]uint64, 2) // last acknowledged version of big-0, big-1
	added := make([]int64, 2)  // acknowledged items per tenant
	run(1, func(ctx context.Context, _ int) { mem.run(ctx, time.Second) })
	run(len(mints), func(ctx context.Context, i int) { mints[i] = mint(ctx, t, cl, &st) })
	run(len(acked), func(ctx context.Context, i int) { acked[i] = writeDocs(ctx, t, cl, i, &st) })
	run(1, func(ctx context.Context, _ int) { patchSmall(ctx, cl, &st) })
	run(12, func(ctx context.Context, i int) { watch(ctx, cl, i, &st) })
	run(1, func(ctx context.Context, _ int) { refusedDocs(ctx, t, cl, &st) })
	run(100, func(ctx context.Context, i int) { block(ctx, c.URLs(), i, &st) })
	run(4, func(ctx context.Context, i int) { trickle(ctx, t, c.URLs()[i%3], &st) })
	run(1, func(ctx context.Context, _ int) { flood(ctx, c.URLs(), &st) })
	run(len(added), func(ctx context.Context, i int) { added[i] = addItems(ctx, t, cl, i, &st) })
	wg.Wait()
	elapsed := time.Since(start)

	// Nothing acknowledged is lost.
	check, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var all []int64
	for _, m := range mints {
		all = append(all, m...)
	}
	slices.Sort(all)
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("DUPLICATE: ID %d minted twice", all[i])
		}
	}
	if len(all) > 0 {
		ctr, err := cl.Counter(check, "soak")
		if err != nil {
			t.Fatal(err)
		}
		if ctr.Value < all[len(all)-1] {
			t.Fatalf("LOST: counter soak reads %d, but %d was acknowledged", ctr.Value, all[len(all)-1])
		}
	}
	for i, v := range acked {
		d, err := cl.Doc(check, fmt.Sprintf("big-%d", i))
		if v > 0 && (err != nil || d.Version < v) {
			t.Fatalf("LOST: big-%d: %v, version %v; version %d was acknowledged", i, err, d, v)
		}
	}
	for i, n := range added {
		got, err := cl.ItemCount(check, fmt.Sprintf("tenant-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if got.Count < n {
			t.Fatalf("LOST: tenant-%d counts %d items, %d were acknowledged", i, got.Count, n)
		}
	}

	peak := mem.report(t)
	t.Logf("soak: %s on 3 nodes; %d IDs minted, %d large document writes (%d KiB each) and %d refused (413/400), "+
		"%d watch streams opened with %d events, %d blocking queries on distinct keys, %d items added, "+
		"%d slow bodies cut off with 408, %d of %d flood connections refused, %d client errors",
		elapsed.Round(time.Second), len(all), st.docWrites.Load(), docSize>>10, st.docRefused.Load(),
		st.watchesOpened.Load(), st.watchEvents.Load(), st.blockingQueries.Load(), st.itemsAdded.Load(),
		st.slowRefused.Load(), st.floodRefused.Load(), st.floodDialed.Load(), st.errors.Load())
	if peak > ceiling {
		t.Fatalf("a node's resident memory peaked at %d MiB, over the %d MiB ceiling", peak>>20, ceiling>>20)
	}
	if len(all) == 0 || st.docWrites.Load() == 0 || st.blockingQueries.Load() == 0 || st.slowRefused.Load() == 0 || st.floodRefused.Load() == 0 {
		t.Fatal("some traffic class never ran: the soak proved nothing about it")
	}
}

// newClient is a project client whose connections come from src.
func newClient(t *testing.T, urls []string, src net.IP) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{Addrs: urls, HTTPClient: &http.Client{Transport: transportFrom(src)}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func transportFrom(src net.IP) *http.Transport {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: 5 * time.Second}
	return &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}
}

func done(ctx context.Context) bool { return ctx.Err() != nil }

// failed counts an error unless the run is ending.
func failed(ctx context.Context, st *stats, err error) bool {
	if err == nil {
		return false
	}
	if !done(ctx) {
		st.errors.Add(1)
	}
	return true
}

// mint takes single IDs as fast as it can.
func mint(ctx context.Context, t *testing.T, cl *client.Client, st *stats) []int64 {
	var out []int64
	for !done(ctx) {
		m, err := cl.Next(ctx, "soak", 1)
		if failed(ctx, st, err) {
			continue
		}
		out = append(out, m.First)
		st.minted.Add(1)
	}
	return out
}

// bigDoc is a docSize document of many keys, all changed by each version.
func bigDoc(version int) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for k := 0; b.Len() < docSize; k++ {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"key-%05d":"%d-%s"`, k, version, strings.Repeat("v", 16))
	}
	b.WriteByte('}')
	return b.Bytes()
}

// writeDocs replaces a large document about twice a second and returns the
// last version acknowledged.
func writeDocs(ctx context.Context, t *testing.T, cl *client.Client, i int, st *stats) uint64 {
	var last uint64
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for v := 0; ; v++ {
		d, err := cl.PutDoc(ctx, fmt.Sprintf("big-%d", i), bigDoc(v))
		if !failed(ctx, st, err) {
			last = d.Version
			st.docWrites.Add(1)
		}
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
	}
}

// patchSmall changes one key of a small document many times a second.
func patchSmall(ctx context.Context, cl *client.Client, st *stats) {
	for i := 0; !done(ctx); i++ {
		_, err := cl.PatchDoc(ctx, "small", json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)))
		failed(ctx, st, err)
	}
}

// watch follows a document for a few seconds at a time, then stops and
// starts again: what a watch holds must go when it ends.
func watch(ctx context.Context, cl *client.Client, i int, st *stats) {
	names := []string{"small", "small", "big-0", "big-1"}
	for round := 0; !done(ctx); round++ {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(2+(i+round)%5)*time.Second)
		st.watchesOpened.Add(1)
		err := cl.WatchDoc(wctx, names[i%len(names)], nil, func(client.DocEvent) error {
			st.watchEvents.Add(1)
			return nil
		})
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			failed(ctx, st, err)
		}
	}
}

// refusedDocs sends documents over the size and depth limits; each must be
// refused and change nothing.
func refusedDocs(ctx context.Context, t *testing.T, cl *client.Client, st *stats) {
	huge := bytes.Repeat([]byte("x"), 2<<20)
	huge = append(append([]byte(`{"a":"`), huge...), `"}`...)
	deep := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !done(ctx) {
		for _, body := range []json.RawMessage{huge, json.RawMessage(deep)} {
			_, err := cl.PutDoc(ctx, "refused", body)
			var apiErr *client.Error
			if errors.As(err, &apiErr) && (apiErr.Code == api.CodeTooLarge || apiErr.Code == api.CodeBadRequest) {
				st.docRefused.Add(1)
			} else if err == nil {
				t.Errorf("a document over the limits was accepted")
			} else {
				failed(ctx, st, err)
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// block runs blocking queries, each on a queue key never used before, on
// any node.
func block(ctx context.Context, urls []string, i int, st *stats) {
	hc := &http.Client{Transport: transportFrom(waiter)}
	for round := 0; !done(ctx); round++ {
		u := fmt.Sprintf("%s/v1/queues/bq-%d-%d?index=1&wait=1s&consistency=stale", urls[(i+round)%len(urls)], i, round)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := hc.Do(req)
		if failed(ctx, st, err) {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			st.blockingQueries.Add(1)
		} else {
			failed(ctx, st, fmt.Errorf("blocking query: HTTP %d", resp.StatusCode))
		}
	}
}

// trickle sends a body one byte every half second; the node must answer
// 408 once -body-timeout has passed, and close the connection.
func trickle(ctx context.Context, t *testing.T, base string, st *stats) {
	addr := strings.TrimPrefix(base, "http://")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: trickler}}
	for !done(ctx) {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if failed(ctx, st, err) {
			continue
		}
		began := time.Now()
		fmt.Fprintf(conn, "PUT /v1/docs/slow HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", addr)
		answered := make(chan string, 1)
		go func() {
			buf := make([]byte, 512)
			n, _ := io.ReadAtLeast(conn, buf, 12)
			answered <- string(buf[:n])
		}()
	drip:
		for {
			select {
			case got := <-answered:
				if strings.HasPrefix(got, "HTTP/1.1 408") {
					st.slowRefused.Add(1)
				} else if !done(ctx) {
					t.Errorf("a slow body got %q, want a 408", got)
				}
				if took := time.Since(began); took > 3*bodyTimeout {
					t.Errorf("a slow body was held %s, the body timeout is %s", took, bodyTimeout)
				}
				break drip
			case <-ctx.Done():
				break drip
			case <-time.After(500 * time.Millisecond):
				_, _ = conn.Write([]byte(" "))
			}
		}
		conn.Close()
	}
}

// flood opens twice the per-client cap of idle connections to one node
// every few seconds, holds them a moment and drops them.
func flood(ctx context.Context, urls []string, st *stats) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: flooder}, Timeout: 2 * time.Second}
	for round := 0; !done(ctx); round++ {
		addr := strings.TrimPrefix(urls[round%len(urls)], "http://")
		var conns []net.Conn
		for range 2 * maxConnsPerClient {
			c, err := d.DialContext(ctx, "tcp", addr)
			if err != nil {
				break
			}
			st.floodDialed.Add(1)
			conns = append(conns, c)
		}
		// A refused connection is closed by the node at once: a read sees
		// EOF (or a reset) before its deadline.
		for _, c := range conns {
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				st.floodRefused.Add(1)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
		for _, c := range conns {
			c.Close()
		}
	}
}

// addItems adds batches of new items to one tenant and returns how many
// were acknowledged as added.
func addItems(ctx context.Context, t *testing.T, cl *client.Client, i int, st *stats) int64 {
	var n int64
	tenant := fmt.Sprintf("tenant-%d", i)
	for batch := 0; !done(ctx); batch++ {
		items := make([]api.Item, 100)
		for k := range items {
			items[k] = api.Item{Tenant: tenant, ID: fmt.Sprintf("item-%d-%d", batch, k)}
		}
		r, err := cl.AddItems(ctx, items)
		if failed(ctx, st, err) {
			continue
		}
		n += r.Added
		st.itemsAdded.Add(r.Added)
	}
	return n
}

// sampler follows the nodes' resident memory.
type sampler struct {
	nodes []*harness.Process
	mu    sync.Mutex
	peak  []harness.Memory
	last  []harness.Memory
	n     int
}

func (s *sampler) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *sampler) sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peak == nil {
		s.peak, s.last = make([]harness.Memory, len(s.nodes)), make([]harness.Memory, len(s.nodes))
	}
	s.n++
	for i, p := range s.nodes {
		m, err := p.Memory()
		if err != nil {
			continue
		}
		s.last[i] = m
		s.peak[i].RSS = max(s.peak[i].RSS, m.RSS)
		s.peak[i].Anon = max(s.peak[i].Anon, m.Anon)
	}
}

// report logs each node's peak and final memory and returns the highest
// peak RSS.
func (s *sampler) report(t *testing.T) int64 {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	var top int64
	for i, p := range s.nodes {
		t.Logf("%s: resident peak %d MiB (anonymous %d MiB), at the end %d MiB (anonymous %d MiB); %d samples",
			p.ID, s.peak[i].RSS>>20, s.peak[i].Anon>>20, s.last[i].RSS>>20, s.last[i].Anon>>20, s.n)
		top = max(top, s.peak[i].RSS)
	}
	return top
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q is not a positive duration", name, v)
	}
	return d
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}
